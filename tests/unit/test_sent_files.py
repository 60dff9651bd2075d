"""remixer.sent_files against a real local HTTP server: the bytes arrive, every failure names the
input (and never a query string), the deadline, the stall limit, the size cap and a cancel hold."""
from __future__ import annotations

import asyncio
import base64
import time
import urllib.parse

import pytest

from fixtures.http_server import PayloadServer
from remixer.requests import InputError
from remixer.sent_files import FetchLimits, SentFile

SONG = bytes(range(256)) * 400  # 100 kB


@pytest.fixture(scope="module")
def web():
    with PayloadServer() as running:
        yield running


def _fetch(value: str, directory, limits: FetchLimits = FetchLimits()) -> tuple[SentFile, int]:
    sent = SentFile.of(value, "music_input", directory)
    return sent, asyncio.run(sent.fetch(limits))


def _refused(value: str, directory, limits: FetchLimits = FetchLimits()) -> str:
    with pytest.raises(InputError) as error:
        _fetch(value, directory, limits)
    return str(error.value)


def test_a_url_is_fetched_into_the_directory_under_the_inputs_name(web, tmp_path):
    sent, size = _fetch(web.add("/songs/take%201.mp3?signature=abc", SONG), tmp_path)
    assert sent.path == tmp_path / "music_input.mp3" and size == len(SONG)
    assert sent.path.read_bytes() == SONG


@pytest.mark.parametrize("header, suffix", [("audio/wav;base64", ".wav"), ("audio/mpeg;base64", ".mp3"),
                                            (";base64", ""), ("audio/flac;base64", ".flac"),
                                            ("audio/x-m4a;base64", ".m4a"), ("text/plain;base64", ".txt")])
def test_a_data_uri_is_decoded_with_its_types_suffix(tmp_path, header, suffix):
    sent, size = _fetch(f"data:{header},{base64.b64encode(SONG).decode()}", tmp_path)
    assert sent.path.name == f"music_input{suffix}" and sent.path.read_bytes() == SONG and size == len(SONG)


def test_base64_with_line_breaks_and_percent_encoded_data_uris_decode(tmp_path):
    sent, _ = _fetch("data:audio/wav;base64," + base64.encodebytes(SONG).decode(), tmp_path)
    assert sent.path.read_bytes() == SONG
    sent, _ = _fetch("data:," + urllib.parse.quote_from_bytes(SONG[:300]), tmp_path)
    assert sent.path.read_bytes() == SONG[:300]


@pytest.mark.parametrize("value, message", [
    ("data:audio/wav;base64,UklG@@@RgAA", "music_input: the data URI's base64 data is damaged"),
    ("data:audio/wav;base64", "music_input: not a data URI (data:[<type>][;base64],<data>)"),
    ("http://[::1/song.wav", "music_input: http://[::1/song.wav is not a valid URL"),
    ("http://", "music_input: could not download http://: not a valid http(s) URL"),
    ("http://127.0.0.1:9/song.wav?token=secret", "music_input: could not download http://127.0.0.1:9/song.wav: "
                                                 "cannot connect"),
    ("https://user:password@no-such-host.invalid/a.wav", "music_input: could not download "
                                                         "https://no-such-host.invalid/a.wav: cannot connect"),
])
def test_what_cannot_be_fetched_is_named_without_credentials_or_query(tmp_path, value, message):
    error = _refused(value, tmp_path)
    assert error.startswith(message), error
    assert "secret" not in error and "password" not in error and " at 0x" not in error


def test_an_http_error_is_named_with_its_status(web, tmp_path):
    error = _refused(web.base_url + "/gone.wav?signature=secret", tmp_path)
    assert error == f"music_input: {web.base_url}/gone.wav answered HTTP 404 Not Found"
    assert _refused(web.add("/busy.wav", SONG, status=503), tmp_path).endswith("answered HTTP 503 Service Unavailable")


def test_a_file_over_the_cap_is_refused_by_its_announced_length_or_its_encoded_size(web, tmp_path):
    limits = FetchLimits(max_bytes=50_000)
    assert _refused(web.add("/big.wav", SONG), tmp_path, limits) == (
        "music_input is larger than this server's limit of 0.05 MB (0.102 MB)")
    uri = "data:audio/wav;base64," + base64.b64encode(SONG).decode()
    assert _refused(uri, tmp_path, limits) == "music_input is larger than this server's limit of 0.05 MB (about 0.102 MB)"
    assert not (tmp_path / "music_input.wav").exists()  # refused before a byte was written


def test_a_trickling_sender_is_cut_off_at_the_deadline(web, tmp_path):
    url = web.add("/trickle.wav", SONG, delay_s=0.3)  # 7 pieces of 16 KiB: 1.8 s
    start = time.perf_counter()
    error = _refused(url, tmp_path, FetchLimits(timeout_s=0.8, stall_s=0.5))
    assert time.perf_counter() - start < 1.5
    assert error.startswith(f"music_input: downloading {url} took longer than 0.8 s (")


def test_a_stalled_sender_is_cut_off_after_the_stall_limit(web, tmp_path):
    url = web.add("/stall.wav", SONG, delay_s=1.0)
    error = _refused(url, tmp_path, FetchLimits(timeout_s=10, stall_s=0.3))
    assert error == f"music_input: could not download {url}: nothing received for 0.3 s (16.4 kB received)"


def test_a_broken_transfer_is_named(web, tmp_path):
    url = web.add("/cut.wav", SONG, drop_after=20_000)
    assert _refused(url, tmp_path).startswith(f"music_input: could not download {url}: the transfer broke off")


def test_a_cancel_stops_a_download_at_once(web, tmp_path):
    sent = SentFile.of(web.add("/slow.wav", SONG, delay_s=0.5), "music_input", tmp_path)  # 3 s

    async def cancel_after(seconds: float) -> float:
        task = asyncio.ensure_future(sent.fetch(FetchLimits()))
        await asyncio.sleep(seconds)
        task.cancel()
        start = time.perf_counter()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.perf_counter() - start

    assert asyncio.run(cancel_after(0.3)) < 0.2


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("REMIXER_MAX_INPUT_MB", "1.5")
    monkeypatch.setenv("REMIXER_INPUT_TIMEOUT_S", "4")
    assert FetchLimits.from_env() == FetchLimits(max_bytes=1_500_000, timeout_s=4.0, stall_s=4.0)
    monkeypatch.delenv("REMIXER_MAX_INPUT_MB")
    monkeypatch.delenv("REMIXER_INPUT_TIMEOUT_S")
    assert FetchLimits.from_env() == FetchLimits(max_bytes=256_000_000, timeout_s=120.0, stall_s=10.0)
    with pytest.raises(ValueError, match="fetch limits must be positive"):
        FetchLimits(timeout_s=0)
