"""The Predictor served by the real Cog HTTP server (coglet) on 127.0.0.1, with tiny weights.

One server for the module: setup() loads the tiny models once, like production.
"""
from __future__ import annotations

import base64
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devtools.tiny.cache import build_tiny_weights
from fixtures.cog_server import CogServer, data_uri, refusal
from fixtures.music import synth_song

SONG_SECONDS = 3.0


def _decode_output(uri: str) -> tuple[np.ndarray, int, str]:
    header, data = uri.split(",", 1)
    raw = base64.b64decode(data)
    wav, rate = sf.read(io.BytesIO(raw), always_2d=True)
    return wav, rate, header


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The product's predictor as a built image serves it (with Cog's schema)."""
    weights = tmp_path_factory.mktemp("weights")
    manifest = build_tiny_weights(weights)
    with CogServer(tmp_path_factory.mktemp("server"), weights, manifest) as running:
        yield running, sorted(p.name for p in running.cwd.rglob("*"))


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    synth = synth_song(120, duration=SONG_SECONDS, sample_rate=44_100)
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(path, synth.audio.T, synth.sample_rate, subtype="PCM_16")
    return path


def test_remix_returns_audio_of_the_songs_length_in_the_requested_format(server, song):
    running, files_before = server
    reply = running.predict({"prompt": "bossa nova", "music_input": data_uri(song),
                         "output_format": "flac", "return_instrumental": True, "seed": 3})
    assert reply["status"] == "succeeded", reply.get("error") or reply.get("logs")
    mix, rate, header = _decode_output(reply["output"][0])
    instrumental, _, _ = _decode_output(reply["output"][1])
    assert "flac" in header
    assert rate == 44_100 and mix.shape[1] == 2
    assert abs(mix.shape[0] / rate - SONG_SECONDS) <= 1e-3
    assert instrumental.shape == mix.shape
    assert np.isfinite(mix).all() and np.abs(mix).max() > 0.01
    # Nothing was written to the server's working directory.
    assert sorted(p.name for p in running.cwd.rglob("*")) == files_before


def test_generation_without_music_input(server):
    running, _ = server
    reply = running.predict({"prompt": "jazz trio", "text_chords": "C G A:min F", "bpm": 120,
                         "duration": 2.0, "model_version": "chord", "output_format": "mp3", "seed": 0})
    assert reply["status"] == "succeeded", reply.get("error")
    header, data = reply["output"][0].split(",", 1)
    assert "mpeg" in header or "mp3" in header
    assert base64.b64decode(data)[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")


@pytest.mark.parametrize("payload, message", [
    ({"music_input": "SONG"}, "prompt is required"),
    ({"prompt": "rock", "music_input": "NOT_AUDIO"}, "not an audio file"),
    ({"prompt": "rock", "music_input": "SONG", "top_p": 1.5}, "top_p: 1.5 is greater than the maximum of 1"),
    ({"prompt": "rock", "music_input": "SONG", "multi_band_diffusion": True}, "mono models only"),
    ({"prompt": "rock", "text_chords": "C G,", "bpm": 120}, "G,"),
    ({"prompt": "rock", "text_chords": "C G", "bpm": 1000}, "bpm: 1000 is greater than the maximum of 300"),
    ({"prompt": "rock", "music_input": "LONG"}, "20"),
    ({"prompt": "rock", "music_input": "SONG", "text_chords": "C G", "bpm": 100}, "without music_input"),
    ({"prompt": "rock", "return_stems": True}, "give music_input"),
    ({"prompt": "rock", "section_prompts": "verse: a"}, "section_prompts apply only to a remix"),
    ({"prompt": "rock", "music_input": "SONG", "section_prompts": "hook: x"}, "unknown section 'hook'"),
    ({"prompt": "rock", "music_input": "SONG", "section_prompts": "chorus: horns"},
     "madmom analysis finds no sections: give time ranges instead"),
])
def test_bad_inputs_fail_with_a_clear_message_and_the_server_keeps_serving(server, song, tmp_path,
                                                                           payload, message):
    running, _ = server
    not_audio = tmp_path / "not_audio.txt"
    not_audio.write_text("hello, I am not a song")
    long_song = tmp_path / "long.wav"
    sf.write(long_song, np.full((25 * 8000, 1), 0.1, dtype=np.float32), 8000)
    files = {"SONG": data_uri(song), "NOT_AUDIO": data_uri(not_audio, "text/plain"), "LONG": data_uri(long_song)}
    payload = {key: files.get(value, value) if isinstance(value, str) else value
               for key, value in payload.items()}
    error = refusal(running.predict(payload))  # Cog's schema (422) or our checks
    assert message in error and "Traceback" not in error, error
    ok = running.predict({"prompt": "calm", "duration": 0.5, "model_version": "chord", "seed": 1})
    assert ok["status"] == "succeeded", ok.get("error")


def test_two_parallel_requests_both_succeed_with_distinct_outputs(server):
    running, _ = server
    # Peak-normalized: the tiny model's near-constant output would clip to the same -1 at -14 LUFS.
    payloads = [{"prompt": "calm piano", "duration": 1.0, "model_version": "chord", "seed": seed,
                 "normalization_strategy": "peak"} for seed in (1, 2)]
    # Each waits for a free slot: the previous test's may still be on its way back (409).
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(running.predict, payloads))
    assert [r["status"] for r in replies] == ["succeeded", "succeeded"], replies
    first, second = (_decode_output(r["output"][0])[0] for r in replies)
    assert first.shape == second.shape
    assert not np.array_equal(first, second)


def test_remix_at_a_new_tempo_and_key_returns_the_analysis_its_picture_and_its_page(server, song):
    running, _ = server
    reply = running.predict({"prompt": "lofi", "music_input": data_uri(song), "model_version": "chord",
                              "target_bpm": 150, "key_shift": 2, "return_analysis": True, "seed": 2})
    assert reply["status"] == "succeeded", reply.get("error") or reply.get("logs")
    mix, rate, _ = _decode_output(reply["output"][0])
    analysis = json.loads(base64.b64decode(reply["output"][1].split(",", 1)[1]))
    png = base64.b64decode(reply["output"][2].split(",", 1)[1])
    page = base64.b64decode(reply["output"][3].split(",", 1)[1]).decode()
    ratio = analysis["transform"]["stretch_ratio"]
    assert ratio == pytest.approx(analysis["song"]["bpm"] / 150) and analysis["transform"]["key_shift"] == 2
    assert abs(mix.shape[0] - SONG_SECONDS * rate * ratio) <= 1
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(reply["output"]) == 4
    # analysis.html: the page of the same remix, its players inline.
    assert reply["output"][3].startswith("data:text/html") and page.startswith("<!doctype html>")
    assert f'"tracks":[{{"label":"song","timescale":{ratio}}}' in page
    assert page.count('src="data:audio/mpeg;base64,') == 4
    # The log says how far the long stages are, then one line as each stage ends.
    assert re.search(r"generation: 50% \(\d+ of \d+ steps\)", reply["logs"]), reply["logs"]
    assert re.search(r"separation done in [\d.]+ s \(\d+ chunks\)", reply["logs"])
    assert "analysis files done in" in reply["logs"]


@pytest.mark.parametrize("payload, message", [
    ({"prompt": "rock", "music_input": "SONG", "target_bpm": 500}, "target_bpm: 500 is greater than the maximum of 240"),
    ({"prompt": "rock", "music_input": "SONG", "key_shift": -13}, "key_shift: -13 is less than the minimum of -12"),
    ({"prompt": "rock", "target_bpm": 90}, "target_bpm apply only to a remix: give music_input"),
])
def test_bad_tempo_or_key_fails_with_a_clear_message(server, song, payload, message):
    running, _ = server
    payload = {key: data_uri(song) if value == "SONG" else value for key, value in payload.items()}
    error = refusal(running.predict(payload))
    assert message in error, error


def test_section_prompts_change_the_text_condition_at_the_planned_windows(server, song):
    running, _ = server
    reply = running.predict({"prompt": "bossa nova", "music_input": data_uri(song), "seed": 4,
                         "section_prompts": "0:00-0:02: soft pads; 0:02-: full band", "return_analysis": True})
    assert reply["status"] == "succeeded", reply.get("error") or reply.get("logs")
    analysis = json.loads(base64.b64decode(reply["output"][1].split(",", 1)[1]))
    windows = analysis["windows"]
    # The generator logs the text condition of every window it runs, as it hands it to the LM.
    logged = re.findall(r"window \d+/\d+: ([\d.]+)-([\d.]+) s, new from ([\d.]+) s: '(.*)'", reply["logs"])
    assert [(float(start), float(end), float(new), text) for start, end, new, text in logged] == \
        [(w["start"], w["new_end"], w["new_start"], w["description"]) for w in windows]
    # The cut at 2 s moved to the song's bar line near 2.25 s; the prompt switches there.
    cut = next(w["new_start"] for w in windows if w["section"] == "0:02-")
    assert abs(cut - 2.25) < 0.05
    suffix = analysis["description"].removeprefix("bossa nova")
    assert [w["description"] for w in windows] == [
        f"soft pads{suffix}" if w["new_start"] < cut else f"full band{suffix}" for w in windows]
    mix, rate, _ = _decode_output(reply["output"][0])
    assert mix.shape[0] == SONG_SECONDS * rate
