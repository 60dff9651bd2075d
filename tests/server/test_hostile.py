"""The predictor as a hostile or careless client sees it, through the real Cog server (coglet).

One server for the module (tiny weights, ``COG_MAX_CONCURRENCY=2``, its own TMPDIR so that every
file it writes is visible). A corpus of bad inputs must each fail in well under a second, before
any model stage, with a message naming the input and the problem, no server path in it, no new
file left anywhere, and the server still READY. Then what used to go wrong: cancelling a running
generation, per-request directories, mp3 at any song rate, surround songs.
"""
from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devtools.tiny.cache import build_tiny_weights
from fixtures.cog_server import CogServer, data_uri
from fixtures.music import synth_song

KEEP_OUTPUTS_S = 1.0
# Stage lines the pipeline logs as a model stage starts: a bad input must fail before any.
MODEL_STAGES = ("separation ...", "chords ...", "analysis (song) ...", "generation ...")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights")
    manifest = build_tiny_weights(weights)
    # Without Cog's schema every input reaches predict: our own checks are what answers here
    # (tests/server/test_cog_schema_http.py sends the corpus to a server with the schema).
    with CogServer(tmp_path_factory.mktemp("server"), weights, manifest, schema=False,
                   REMIXER_KEEP_OUTPUTS_S=str(KEEP_OUTPUTS_S)) as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory, server) -> dict[str, str]:
    """Payload values by name: songs as data URIs, and paths that exist on the server."""
    root = tmp_path_factory.mktemp("files")
    song = synth_song(180, duration=2.0, sample_rate=22_050)
    sf.write(root / "song.wav", song.audio.T, song.sample_rate, subtype="PCM_16")
    (root / "not_audio.txt").write_text("hello, I am not a song")
    sf.write(root / "long.wav", np.full((25 * 8000, 1), 0.1, dtype=np.float32), 8000)
    (root / "empty.wav").write_bytes(b"")
    # Another request's output as it would lie on the server (outside the server's own dirs).
    other = server.cwd.parent / "other-request" / "remix.wav"
    other.parent.mkdir()
    other.write_bytes((root / "song.wav").read_bytes())
    return {"SONG": data_uri(root / "song.wav"), "NOT_AUDIO": data_uri(root / "not_audio.txt", "text/plain"),
            "LONG": data_uri(root / "long.wav"), "EMPTY": data_uri(root / "empty.wav"),
            "OTHER_OUTPUT": str(other)}


def _fill(payload: dict, files: dict[str, str]) -> dict:
    return {key: files.get(value, value) if isinstance(value, str) else value for key, value in payload.items()}


def _snapshot(server: CogServer) -> set[str]:
    """Every file and directory the server could have written to."""
    return ({str(p) for p in server.tmp.rglob("*")} | {str(p) for p in server.cwd.rglob("*")})


def _prediction_log(server: CogServer, prediction_id: str) -> list[str]:
    messages = []
    for line in server.log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("fields", {}).get("prediction_id") == prediction_id:
            messages.append(record["fields"].get("message", ""))
    return messages


def _wait_for_log(server: CogServer, prediction_id: str, text: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not any(text in m for m in _prediction_log(server, prediction_id)):
        assert time.time() < deadline, f"no {text!r} for {prediction_id}:\n{server.log_tail()}"
        time.sleep(0.1)


def _decode(uri: str) -> tuple[np.ndarray, int, str]:
    header, data = uri.split(",", 1)
    wav, rate = sf.read(io.BytesIO(base64.b64decode(data)), always_2d=True)
    return wav, rate, header


def _request_dirs(server: CogServer) -> list[Path]:
    return sorted(server.tmp.glob("remixer-*"))


SONG = {"prompt": "rock", "music_input": "SONG"}
CORPUS = [
    # Paths on the server: refused alike whether they exist or not.
    ({"prompt": "rock", "music_input": "/etc/passwd"}, ["music_input must be a file sent with the request"]),
    ({"prompt": "rock", "music_input": "/no/such/song.wav"}, ["music_input must be a file sent with the request"]),
    ({"prompt": "rock", "music_input": "OTHER_OUTPUT"}, ["music_input must be a file sent with the request"]),
    ({"prompt": "calm", "input_audio": "/etc/passwd", "model_version": "chord"},
     ["input_audio must be a file sent with the request"]),
    # Text the T5 encoder cannot use.
    ({**SONG, "prompt": "x" * 100_000}, ["prompt is 100000 characters long", "at most 480", "512 tokens"]),
    ({"prompt": "y" * 10_000, "duration": 1.0, "model_version": "chord"}, ["prompt is 10000 characters", "480"]),
    ({"prompt": "calm", "text_chords": "C " * 50_000, "bpm": 120, "model_version": "chord"},
     ["text_chords is 100000 characters long", "at most 8192"]),
    # Numbers out of range, or of the other mode.
    ({"prompt": "calm", "duration": 0.01, "model_version": "chord"}, ["duration must be in [0.1, 600]", "0.01"]),
    ({**SONG, "duration": 20.0}, ["duration", "apply only to generation without music_input"]),
    ({**SONG, "time_sig": "3/4"}, ["time_sig", "apply only to generation without music_input"]),
    ({"prompt": "calm", "time_sig": "5/3", "model_version": "chord"}, ["time_sig", "'5/3'"]),
    ({"prompt": "calm", "audio_start": 2.0, "model_version": "chord"}, ["audio_start", "give input_audio"]),
    ({"prompt": "calm", "audio_end": 3.0, "model_version": "chord"}, ["audio_end", "give input_audio"]),
    ({"prompt": "calm", "seed": 2 ** 64 + 1, "model_version": "chord"},
     ["seed must be an integer in [0, 2**32)", "got 18446744073709551616"]),
    ({**SONG, "top_k": -1}, ["top_k must be an integer >= 0"]),
    ({**SONG, "output_format": "ogg"}, ["output_format must be one of wav, mp3, flac"]),
    ({**SONG, "model_version": "melody"}, ["model_version must be one of"]),
    ({**SONG, "model_version": "m" * 100_000}, ["model_version must be one of", "(100002 characters)"]),
    ({**SONG, "return_stems": "yes"}, ["return_stems must be true or false"]),
    ({"music_input": "SONG"}, ["prompt is required"]),
    # Files that are not songs: named as the client knows them, not by Cog's temp file.
    ({"prompt": "rock", "music_input": "NOT_AUDIO"}, ["music_input: not an audio file"]),
    ({"prompt": "rock", "music_input": "EMPTY"}, ["music_input: file is empty"]),
    ({"prompt": "rock", "music_input": "LONG"}, ["music_input: audio is 25.0 s long", "20"]),
    # A misspelt or mistyped input (with Cog's schema: dropped, or answered 422).
    ({"prompt": "rock", "music_input": "NOT_AUDIO", "duraton": 3.0}, ["unexpected keyword argument 'duraton'"]),
    ({**SONG, "top_k": "many"}, ["top_k must be an integer >= 0, got 'many'"]),
]


@pytest.mark.parametrize("payload, expected", CORPUS, ids=[f"bad{i}" for i in range(len(CORPUS))])
def test_bad_input_fails_fast_and_clearly_and_leaves_nothing(server, files, payload, expected):
    before = _snapshot(server)
    start = time.perf_counter()
    reply = server.predict(_fill(payload, files))
    elapsed = time.perf_counter() - start

    assert reply["status"] == "failed", reply
    error = reply["error"]
    for text in expected:
        assert text in error, error
    assert "Traceback" not in error and "/tmp" not in error and str(server.tmp) not in error, error
    assert len(error) < 500, error[:1000]  # a client's long text is not echoed back
    assert "e+" not in error  # no number echoed as a float
    assert not any(stage in reply.get("logs", "") for stage in MODEL_STAGES), reply["logs"]
    assert elapsed < 1.0, f"{elapsed:.2f} s to fail"
    assert server.health() == "READY"
    assert _snapshot(server) - before == set()


def test_server_paths_are_refused_alike_whether_they_exist_or_not(server, files):
    errors = {path: server.predict({"prompt": "rock", "music_input": path})["error"]
              for path in ("/etc/passwd", "/etc", "/no/such/file", files["OTHER_OUTPUT"])}
    assert len(set(errors.values())) == 1, errors
    assert "data URI" in errors["/etc/passwd"]


def test_cancel_stops_a_generation_midway_and_the_next_one_runs_at_once(server):
    quick = {"prompt": "calm", "duration": 1.0, "model_version": "chord", "seed": 1}
    start = time.perf_counter()
    assert server.predict(quick)["status"] == "succeeded"
    normal = time.perf_counter() - start

    # ~40 s of tiny-model decoding if nothing stops it.
    server.start("long-one", {"prompt": "calm", "duration": 120.0, "model_version": "chord", "seed": 2})
    _wait_for_log(server, "long-one", "generation ...")
    time.sleep(0.5)  # past coglet's submission (see bench/cancel.py: a cancel there is lost)
    server.cancel("long-one")
    start = time.perf_counter()
    reply = server.predict(quick, timeout=60)
    after_cancel = time.perf_counter() - start

    assert reply["status"] == "succeeded", reply.get("error")
    assert after_cancel < 3 * normal + 2, f"{after_cancel:.1f} s after the cancel, {normal:.1f} s before"
    _wait_for_log(server, "long-one", "Prediction cancelled", timeout=10)
    log = _prediction_log(server, "long-one")
    assert not any("generation done" in m or "export" in m for m in log), log
    time.sleep(KEEP_OUTPUTS_S + 1.5)  # the quick ones' outputs expire too
    assert list(server.tmp.rglob("generated.*")) == []
    assert server.health() == "READY"


def test_request_directories_are_removed_after_success_failure_and_cancel(server, files):
    ok = {"prompt": "calm", "duration": 0.5, "model_version": "chord"}
    for index in range(10):
        kind = ("ok", "failed", "cancelled", "ok", "failed")[index % 5]
        if kind == "ok":
            assert server.predict({**ok, "seed": index})["status"] == "succeeded"
        elif kind == "failed":  # fails in decode, after its directory was made
            dirs = _request_dirs(server)
            assert server.predict({"prompt": "rock", "music_input": files["NOT_AUDIO"]})["status"] == "failed"
            assert set(_request_dirs(server)) <= set(dirs), "a failed request left its directory"
        else:
            server.start(f"cancelled-{index}", {**ok, "duration": 120.0, "seed": index})
            _wait_for_log(server, f"cancelled-{index}", "generation ...")
            time.sleep(0.3)  # past coglet's submission (see bench/cancel.py: a cancel there is lost)
            server.cancel(f"cancelled-{index}")
            _wait_for_log(server, f"cancelled-{index}", "Prediction cancelled", timeout=10)
    # The last successes' outputs are kept for Cog to read, then removed without a new request.
    time.sleep(KEEP_OUTPUTS_S + 1.5)
    assert _request_dirs(server) == []
    assert [p for p in server.tmp.iterdir()] == [], "files left in the server's temp directory"


@pytest.mark.parametrize("song_rate, extras, rates", [
    (96_000, {"return_instrumental": True}, [48_000, 48_000]),
    (8_000, {"return_stems": True}, [32_000] + [8_000] * 4),
])
def test_mp3_is_written_at_an_mp3_rate_whatever_the_songs_rate(server, tmp_path, song_rate, extras, rates):
    song = synth_song(240, duration=1.5, sample_rate=song_rate)
    sf.write(tmp_path / "song.wav", song.audio.T, song_rate, subtype="PCM_16")
    reply = server.predict({"prompt": "bossa nova", "music_input": data_uri(tmp_path / "song.wav"),
                            "output_format": "mp3", "model_version": "chord", "seed": 4, **extras})
    assert reply["status"] == "succeeded", reply.get("error")
    decoded = [_decode(uri) for uri in reply["output"]]
    assert [rate for _, rate, _ in decoded] == rates
    assert all("mpeg" in header or "mp3" in header for _, _, header in decoded)
    assert all(abs(wav.shape[0] / rate - 1.5) < 0.06 for wav, rate, _ in decoded)


@pytest.mark.parametrize("channels", [3, 6])
def test_surround_songs_are_downmixed_to_stereo_at_load(server, tmp_path, channels):
    stereo = synth_song(240, duration=1.5, sample_rate=22_050).audio
    surround = np.vstack([stereo, np.repeat(stereo.mean(0, keepdims=True), channels - 2, axis=0) * 0.5])
    sf.write(tmp_path / "song.wav", surround.T, 22_050, subtype="PCM_16")
    song = data_uri(tmp_path / "song.wav")
    remix = server.predict({"prompt": "bossa nova", "music_input": song, "seed": 5})
    assert remix["status"] == "succeeded", remix.get("error")
    wav, rate, _ = _decode(remix["output"][0])
    assert wav.shape[1] == 2 and rate == 32_000
    assert abs(wav.shape[0] / rate - 1.5) < 1e-3
    chords = server.predict({"prompt": "calm", "input_audio": song, "model_version": "chord", "duration": 1.0,
                             "seed": 5})
    assert chords["status"] == "succeeded", chords.get("error")
