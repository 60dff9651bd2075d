"""The Predictor served by the real Cog HTTP server (coglet) on 127.0.0.1, with tiny weights.

One server for the module: setup() loads the tiny models once, like production.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devtools.tiny.cache import build_tiny_weights
from fixtures.music import synth_song

ROOT = Path(__file__).resolve().parents[2]
SONG_SECONDS = 3.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(port: int, payload: dict, timeout: float = 300) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/predictions", method="POST",
                                     data=json.dumps({"input": payload}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _decode_output(uri: str) -> tuple[np.ndarray, int, str]:
    header, data = uri.split(",", 1)
    raw = base64.b64decode(data)
    wav, rate = sf.read(io.BytesIO(raw), always_2d=True)
    return wav, rate, header


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights")
    manifest = build_tiny_weights(weights)
    workdir = tmp_path_factory.mktemp("cwd")
    port = _free_port()
    env = dict(os.environ, COG_PREDICT_TYPE_STUB=f"{ROOT / 'predict.py'}:Predictor", PORT=str(port),
               COG_MAX_CONCURRENCY="2", REMIXER_WEIGHTS_DIR=str(weights),
               REMIXER_WEIGHTS_MANIFEST=str(manifest), REMIXER_OFFLINE="1",
               REMIXER_MAX_DURATION="20", PYTHONPATH=str(ROOT),
               # coglet's worker is started as `python`: it must be this interpreter.
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1"],
                               cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health-check", timeout=5) as r:
                    status = json.loads(r.read())["status"]
                if status == "READY":
                    break
                assert status != "SETUP_FAILED", (workdir / "server.log").read_text()[-3000:]
            except OSError:
                pass
            assert process.poll() is None, (workdir / "server.log").read_text()[-3000:]
            time.sleep(1)
        else:
            pytest.fail("server not ready in 240 s:\n" + (workdir / "server.log").read_text()[-3000:])
        yield port, workdir, sorted(p.name for p in workdir.iterdir())
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    synth = synth_song(120, duration=SONG_SECONDS, sample_rate=44_100)
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(path, synth.audio.T, synth.sample_rate, subtype="PCM_16")
    return path


def test_remix_returns_audio_of_the_songs_length_in_the_requested_format(server, song):
    port, workdir, files_before = server
    reply = _post(port, {"prompt": "bossa nova", "music_input": _data_uri(song, "audio/wav"),
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
    assert sorted(p.name for p in workdir.iterdir()) == files_before


def test_generation_without_music_input(server):
    port, _, _ = server
    reply = _post(port, {"prompt": "jazz trio", "text_chords": "C G A:min F", "bpm": 120,
                         "duration": 2.0, "model_version": "chord", "output_format": "mp3", "seed": 0})
    assert reply["status"] == "succeeded", reply.get("error")
    header, data = reply["output"][0].split(",", 1)
    assert "mpeg" in header or "mp3" in header
    assert base64.b64decode(data)[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")


@pytest.mark.parametrize("payload, message", [
    ({"music_input": "SONG"}, "prompt is required"),
    ({"prompt": "rock", "music_input": "NOT_AUDIO"}, "not an audio file"),
    ({"prompt": "rock", "music_input": "SONG", "top_p": 1.5}, "top_p"),
    ({"prompt": "rock", "music_input": "SONG", "multi_band_diffusion": True}, "mono models only"),
    ({"prompt": "rock", "text_chords": "C G,", "bpm": 120}, "G,"),
    ({"prompt": "rock", "text_chords": "C G", "bpm": 1000}, "bpm"),
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
    port, _, _ = server
    not_audio = tmp_path / "not_audio.txt"
    not_audio.write_text("hello, I am not a song")
    long_song = tmp_path / "long.wav"
    sf.write(long_song, np.full((25 * 8000, 1), 0.1, dtype=np.float32), 8000)
    files = {"SONG": _data_uri(song, "audio/wav"), "NOT_AUDIO": _data_uri(not_audio, "text/plain"),
             "LONG": _data_uri(long_song, "audio/wav")}
    payload = {key: files.get(value, value) if isinstance(value, str) else value
               for key, value in payload.items()}
    reply = _post(port, payload)
    assert reply["status"] == "failed"
    assert message in reply["error"], reply["error"]
    assert "Traceback" not in reply["error"]
    ok = _post(port, {"prompt": "calm", "duration": 0.5, "model_version": "chord", "seed": 1})
    assert ok["status"] == "succeeded", ok.get("error")


def test_a_failure_of_ours_is_logged_and_the_client_reads_a_short_message_without_paths(server):
    port, workdir, _ = server
    # The tiny cache has no melody model: a server-side problem, not the client's.
    reply = _post(port, {"prompt": "calm", "duration": 0.5, "model_version": "melody", "seed": 1})
    assert reply["status"] == "failed"
    assert ("internal error (MissingWeightsError): the prediction failed on the server, not because of "
            "the inputs" in reply["error"]), reply["error"]
    assert "/" not in reply["error"] and "musicgen-melody" not in reply["error"]
    log = (workdir / "server.log").read_text()
    assert "Traceback" in log and "musicgen-melody" in log  # for whoever runs the server


def test_two_parallel_requests_both_succeed_with_distinct_outputs(server):
    port, _, _ = server
    payloads = [{"prompt": "calm piano", "duration": 1.0, "model_version": "chord", "seed": seed}
                for seed in (1, 2)]
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda p: _post(port, p), payloads))
    assert [r["status"] for r in replies] == ["succeeded", "succeeded"], replies
    first, second = (_decode_output(r["output"][0])[0] for r in replies)
    assert first.shape == second.shape
    assert not np.array_equal(first, second)


def test_remix_at_a_new_tempo_and_key_returns_the_analysis_its_picture_and_its_page(server, song):
    port, _, _ = server
    reply = _post(port, {"prompt": "lofi", "music_input": _data_uri(song, "audio/wav"), "model_version": "chord",
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
    ({"prompt": "rock", "music_input": "SONG", "target_bpm": 500}, "target_bpm must be between 40 and 240"),
    ({"prompt": "rock", "music_input": "SONG", "key_shift": -13}, "key_shift must be between -12 and 12"),
    ({"prompt": "rock", "target_bpm": 90}, "target_bpm apply only to a remix: give music_input"),
])
def test_bad_tempo_or_key_fails_with_a_clear_message(server, song, payload, message):
    port, _, _ = server
    payload = {key: _data_uri(song, "audio/wav") if value == "SONG" else value for key, value in payload.items()}
    reply = _post(port, payload)
    assert reply["status"] == "failed" and message in reply["error"], reply.get("error")


def test_section_prompts_change_the_text_condition_at_the_planned_windows(server, song):
    port, _, _ = server
    reply = _post(port, {"prompt": "bossa nova", "music_input": _data_uri(song, "audio/wav"), "seed": 4,
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
