"""The predictor as a hostile or careless client sees it, through the real Cog server (coglet).

One server for the module (tiny weights, ``COG_MAX_CONCURRENCY=2``, its own TMPDIR so that every
file it writes is visible, a 5 s deadline and a 1 MB cap on the files a request sends). A corpus
of bad inputs must each fail in well under a second, before any model stage, with a message
naming the input and the problem, no server path in it, no new file left anywhere, and the
server still READY. Then what used to go wrong: cancelling a running generation or a separation,
per-request directories, mp3 at any song rate, surround songs, stereo songs with mono models, a
model this server lacks, URLs that answer slowly or not at all, memory over many requests; and
what coglet 0.23.1 itself does with the ``cog.Path`` inputs we no longer use (pinned, so that an
upgrade that changes it is noticed).
"""
from __future__ import annotations

import base64
import io
import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devtools.tiny.cache import build_tiny_weights
from fixtures.cog_server import CogServer, data_uri
from fixtures.http_server import PayloadServer
from fixtures.music import synth_song

KEEP_OUTPUTS_S = 1.0
INPUT_TIMEOUT_S = 5.0
MAX_INPUT_MB = 1
# Stage lines the pipeline logs as a model stage starts: a bad input must fail before any.
MODEL_STAGES = ("separation ...", "chords ...", "analysis (song) ...", "generation ...")


def hostile_server(tmp_path_factory, *, schema: bool) -> CogServer:
    """The corpus's server: the default tiny weights only (no large or melody model, no MBD), a
    damaged model file, short input limits; ``schema`` as in :class:`CogServer`."""
    weights = tmp_path_factory.mktemp("weights")
    manifest = build_tiny_weights(weights)
    # A damaged model file: whoever runs the server must fix it, the client can do nothing about it.
    path = json.loads(manifest.read_text())["files"]
    damaged = weights / next(entry["path"] for entry in path if entry["name"] == "musicgen-stereo-chord-large")
    damaged.write_bytes(b"not a checkpoint")
    return CogServer(tmp_path_factory.mktemp("server"), weights, manifest, schema=schema,
                     REMIXER_KEEP_OUTPUTS_S=str(KEEP_OUTPUTS_S), REMIXER_INPUT_TIMEOUT_S=str(INPUT_TIMEOUT_S),
                     REMIXER_MAX_INPUT_MB=str(MAX_INPUT_MB))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Without Cog's schema every input reaches predict: our own checks are what answers here
    # (tests/server/test_cog_schema_http.py sends the corpus to a server with the schema).
    with hostile_server(tmp_path_factory, schema=False) as running:
        yield running


@pytest.fixture(scope="module")
def web():
    """Where URL inputs point: songs, a missing file, a file over the cap, a slow sender."""
    with PayloadServer() as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory, server, web) -> dict[str, str]:
    """Payload values by name: songs as data URIs and URLs, and paths that exist on the server."""
    root = tmp_path_factory.mktemp("files")
    song = synth_song(180, duration=2.0, sample_rate=22_050)
    sf.write(root / "song.wav", song.audio.T, song.sample_rate, subtype="PCM_16")
    (root / "not_audio.txt").write_text("hello, I am not a song")
    sf.write(root / "long.wav", np.full((25 * 8000, 1), 0.1, dtype=np.float32), 8000)
    sf.write(root / "over.wav", np.full((20 * 8000 + 1, 1), 0.1, dtype=np.float32), 8000)  # 1 sample over
    (root / "empty.wav").write_bytes(b"")
    (root / "noise.mp3").write_bytes(np.random.default_rng(1).bytes(900_000))
    # Another request's output as it would lie on the server (outside the server's own dirs).
    other = server.cwd.parent / "other-request" / "remix.wav"
    other.parent.mkdir()
    other.write_bytes((root / "song.wav").read_bytes())
    big = np.random.default_rng(2).bytes(int(1.5 * MAX_INPUT_MB * 1e6))
    return {"SONG": data_uri(root / "song.wav"), "NOT_AUDIO": data_uri(root / "not_audio.txt", "text/plain"),
            "LONG": data_uri(root / "long.wav"), "EMPTY": data_uri(root / "empty.wav"),
            "OVER": data_uri(root / "over.wav"), "NOISE_MP3": data_uri(root / "noise.mp3", "audio/mpeg"),
            "BIG": "data:audio/wav;base64," + base64.b64encode(big).decode(),
            "OTHER_OUTPUT": str(other),
            "SONG_URL": web.add("/song.wav", (root / "song.wav").read_bytes()),
            "BIG_URL": web.add("/big.wav?signature=secret", big),
            "MISSING_URL": web.base_url + "/missing.wav?signature=secret",
            "REFUSING_URL": "http://127.0.0.1:9/song.wav"}  # the discard port: nothing listens


def _fill(payload: dict, files: dict[str, str]) -> dict:
    return {key: files.get(value, value) if isinstance(value, str) else value for key, value in payload.items()}


def _snapshot(server: CogServer) -> set[str]:
    """Every file and directory the server could have written to."""
    return ({str(p) for p in server.tmp.rglob("*")} | {str(p) for p in server.cwd.rglob("*")})


def _prediction_log(server: CogServer, prediction_id: str) -> list[str]:
    return [record["fields"].get("message", "") for record in _records(server, prediction_id)]


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
    ({"prompt": "rock", "music_input": "OVER"},
     ["music_input: audio is 20.0001 s long, longer than the 20 s limit"]),
    ({"prompt": "rock", "music_input": "NOISE_MP3"},
     ["music_input: not an audio file, or an unsupported or damaged format (no decodable audio in it"]),
    # Text that shows nothing, a bar of 4096 chords (its message must not echo them all).
    ({**SONG, "prompt": "\u200b\u200b\u200b"}, ["prompt holds only invisible characters (U+200B ZERO WIDTH SPACE)"]),
    ({**SONG, "prompt": "\u2060 \ufeff"}, ["prompt holds only invisible characters (U+2060 WORD JOINER, "
                                            "U+FEFF ZERO WIDTH NO-BREAK SPACE)"]),
    ({**SONG, "section_prompts": "verse: \u200b; chorus: horns"}, ["section_prompts part 'verse:", "has no prompt"]),
    # Files over the server's cap, URLs that do not deliver: named by input, without the query string.
    ({"prompt": "rock", "music_input": "BIG"}, ["music_input is larger than this server's limit of 1 MB (about 1.5 MB)"]),
    ({"prompt": "rock", "music_input": "BIG_URL"},
     ["music_input is larger than this server's limit of 1 MB (1.5 MB)"]),
    ({"prompt": "rock", "music_input": "MISSING_URL"},
     ["music_input: http://127.0.0.1:", "/missing.wav answered HTTP 404 Not Found"]),
    ({"prompt": "calm", "input_audio": "REFUSING_URL", "model_version": "chord"},
     ["input_audio: could not download http://127.0.0.1:9/song.wav: cannot connect"]),
    ({"prompt": "rock", "music_input": "http://[::1/song.wav"}, ["music_input: http://[::1/song.wav is not a valid URL"]),
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
    assert "secret" not in error and " at 0x" not in error, error  # no signed query, no Python object
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


# --- what the client reads when the server lacks a model, or fails ----------------------------------

@pytest.mark.parametrize("payload, expected", [
    ({**SONG, "model_version": "chord-large"},
     "model_version 'chord-large' is not available on this server; choose another model_version"),
    ({"prompt": "calm", "model_version": "melody", "duration": 1.0},
     "model_version 'melody' is not available on this server; choose another model_version"),
    ({"prompt": "calm", "model_version": "chord", "duration": 1.0, "multi_band_diffusion": True},
     "multi_band_diffusion is not available on this server; turn it off"),
], ids=["chord-large", "melody", "mbd"])
def test_a_model_this_server_lacks_is_named_without_paths_or_commands(server, files, payload, expected):
    before = _snapshot(server)
    reply = server.predict(_fill(payload, files))
    assert reply["status"] == "failed"
    error = reply["error"]
    assert error.endswith(expected), error
    assert not [word for word in ("/", "python", "fetch", "--dir", "REMIXER_", "weights") if word in error], error
    # The operator's log says which files are missing and how to fetch them.
    log = "\n".join(_prediction_log(server, reply["id"]))
    assert "is not available: " in log and "python -m remixer.weights fetch" in log, log[-2000:]
    assert _snapshot(server) - before == set()


def test_a_failure_of_ours_is_logged_and_the_client_reads_a_short_message_without_paths(server, files):
    reply = server.predict(_fill({**SONG, "model_version": "stereo-chord-large"}, files))  # a damaged file
    assert reply["status"] == "failed"
    assert ("internal error (ValueError): the prediction failed on the server, not because of the inputs"
            in reply["error"]), reply["error"]
    assert "/" not in reply["error"] and "stereo-chord-large" not in reply["error"]
    log = "\n".join(_prediction_log(server, reply["id"]))
    assert "Traceback" in server.log_path.read_text() and "musicgen-stereo-chord-large.th" in log


# --- the song's channels --------------------------------------------------------------------------

def test_a_stereo_song_remixed_with_a_mono_model_keeps_its_stereo(server, tmp_path):
    left, right = (synth_song(180, duration=2.0, sample_rate=22_050, channels=1, seed=seed).audio[0]
                   for seed in (3, 4))
    sf.write(tmp_path / "wide.wav", np.stack([left, 0.3 * right], axis=1), 22_050, subtype="PCM_16")
    reply = server.predict({"prompt": "bossa nova", "music_input": data_uri(tmp_path / "wide.wav"),
                            "model_version": "chord", "return_instrumental": True, "seed": 6})
    assert reply["status"] == "succeeded", reply.get("error")
    remix, rate, _ = _decode(reply["output"][0])
    instrumental, _, _ = _decode(reply["output"][1])
    assert remix.shape == (round(2.0 * rate), 2) and instrumental.shape == remix.shape
    np.testing.assert_array_equal(instrumental[:, 0], instrumental[:, 1])  # the mono model's take
    assert np.abs(remix[:, 0] - remix[:, 1]).max() > 0.01  # the song's vocals, not folded to mono


# --- cancelling a separation ----------------------------------------------------------------------

def test_a_cancel_during_separation_stops_it_within_a_chunk(server, tmp_path):
    # 20 s (the server's limit) at 16 kHz: many chunks of the tiny htdemucs, a few seconds at least.
    long_song = synth_song(120, duration=20.0, sample_rate=16_000, channels=1)
    sf.write(tmp_path / "long.wav", long_song.audio.T, 16_000, subtype="PCM_16")
    before = _snapshot(server)
    server.start("separating", {"prompt": "rock", "music_input": data_uri(tmp_path / "long.wav"),
                                "model_version": "chord"})
    _wait_for_log(server, "separating", "separation ...")
    time.sleep(0.3)  # past coglet's submission (see bench/cancel.py: a cancel there is lost)
    server.cancel("separating")
    _wait_for_log(server, "separating", "Prediction cancelled", timeout=30)
    deadline = time.time() + 60
    while _snapshot(server) - before:  # its directory goes once its thread has stopped
        assert time.time() < deadline, _snapshot(server) - before
        time.sleep(0.1)
    log = _prediction_log(server, "separating")
    assert not any("separation done" in m or "chords ..." in m for m in log), log
    assert server.health() == "READY"


# --- URLs: a deadline, a cancel, no file left --------------------------------------------------------

def _slow_url(web: PayloadServer, path: str, seconds: float) -> str:
    """A WAV header, then 16 KiB every 0.5 s for ``seconds``: far slower than any real sender."""
    return web.add(path, b"RIFF" + bytes(16384 * int(2 * seconds)), delay_s=0.5)


def test_a_url_that_trickles_is_cut_off_at_the_deadline(server, web):
    url = _slow_url(web, "/trickle.wav?signature=secret", 4 * INPUT_TIMEOUT_S)
    before = _snapshot(server)
    start = time.perf_counter()
    reply = server.predict({"prompt": "rock", "music_input": url})
    elapsed = time.perf_counter() - start
    assert reply["status"] == "failed"
    # Our message: coglet 0.23.1 passes a pathlib.Path input on as the URL (see remixer/sent_files.py).
    assert (f"music_input: downloading {web.base_url}/trickle.wav took longer than {INPUT_TIMEOUT_S:g} s ("
            in reply["error"]), reply["error"]
    assert INPUT_TIMEOUT_S <= elapsed < 2 * INPUT_TIMEOUT_S, f"{elapsed:.1f} s"
    assert not any(stage in reply.get("logs", "") for stage in MODEL_STAGES)
    assert _snapshot(server) - before == set()
    assert server.health() == "READY"


def test_a_cancel_during_a_download_stops_it_at_once(server, web):
    url = _slow_url(web, "/cancelled.wav", 4 * INPUT_TIMEOUT_S)
    server.start("downloading", {"prompt": "rock", "music_input": url})
    deadline = time.time() + 30
    while not web.requests_for("/cancelled.wav"):
        assert time.time() < deadline, "the server never asked for the URL"
        time.sleep(0.05)
    time.sleep(0.3)  # past coglet's submission (see bench/cancel.py: a cancel there is lost)
    server.cancel("downloading")
    _wait_for_log(server, "downloading", "Prediction cancelled", timeout=INPUT_TIMEOUT_S)
    log = _prediction_log(server, "downloading")
    assert not any("took longer than" in m or "received in" in m for m in log), log
    time.sleep(0.2)
    assert not list(server.tmp.rglob("music_input*")) and not list(server.tmp.glob("tmp*"))


def test_a_song_sent_by_url_is_remixed(server, files):
    reply = server.predict({"prompt": "rock", "music_input": files["SONG_URL"], "model_version": "chord",
                            "seed": 1})
    assert reply["status"] == "succeeded", reply.get("error")
    remix, rate, _ = _decode(reply["output"][0])
    assert remix.shape == (round(2.0 * rate), 2)
    assert any("music_input: " in line and "received in" in line for line in _prediction_log(server, reply["id"]))


# --- memory ------------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def _rss_mb(pid: int) -> float:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_what_refused_requests_sent_does_not_stay_in_memory(server, files):
    """Each refused request leaves its exception's reference cycle, which holds the request's
    frame and so the song it sent; collected after each request, they cannot pile up (the soak
    run, bench/soak.py, follows the memory over 200 predictions of every kind)."""
    worker = max(_children(server.pid), key=_rss_mb)
    song = "data:audio/wav;base64," + base64.b64encode(bytes(int(0.7 * MAX_INPUT_MB * 1e6))).decode()
    refused = {"prompt": "rock", "music_input": song, "top_k": -1}
    for _ in range(5):
        assert server.predict(refused)["status"] == "failed"
    before = _rss_mb(worker)
    for _ in range(40):
        assert server.predict(refused)["status"] == "failed"
    assert _rss_mb(worker) - before < 15, f"{before:.0f} MB -> {_rss_mb(worker):.0f} MB"


# --- coglet's own downloads of cog.Path inputs, which predict.py no longer uses (pinned) -------------

@pytest.fixture(scope="module")
def path_server(tmp_path_factory):
    """coglet serving a predictor with a ``cog.Path`` input (no models: it starts in seconds)."""
    root = tmp_path_factory.mktemp("path-server")
    predictor = Path(__file__).resolve().parents[1] / "fixtures" / "path_predictor.py"
    with CogServer(root, root / "no-weights", root / "no-manifest.json", schema=False,
                   predictor=f"{predictor}:PathPredictor") as running:
        yield running


def test_coglet_0_23_1_downloads_a_cog_path_without_naming_it_and_leaves_a_file_when_it_fails(path_server, web):
    """Why predict.py's file inputs are not ``cog.Path`` (README, "Known limits"): coglet downloads
    them before predict() runs, reports a failure in urllib3's words without the input's name, and
    leaves the empty temp file behind. A coglet that fixes this fails here: look again."""
    url = web.base_url + "/gone.wav"
    reply = path_server.predict({"song": url})
    assert reply["status"] == "failed"
    assert reply["error"] == f"Input validation error: 404 Client Error: Not Found for url: {url}"
    left = [p for p in path_server.tmp.iterdir() if p.name.endswith("gone.wav")]
    assert [p.stat().st_size for p in left] == [0]
    assert path_server.predict({"song": web.add("/here.wav", b"RIFF" * 10)})["output"] == "40 bytes"


def test_coglet_0_23_1_holds_a_cancel_during_its_download_until_the_download_ends(path_server, web):
    url = web.add("/slowly.wav", bytes(16384 * 6), delay_s=0.5)  # 6 chunks: 2.5 s
    path_server.start("slow-download", {"song": url})
    deadline = time.time() + 30
    while not web.requests_for("/slowly.wav"):
        assert time.time() < deadline, "coglet never asked for the URL"
        time.sleep(0.05)
    time.sleep(0.3)
    path_server.cancel("slow-download")
    _wait_for_log(path_server, "slow-download", "Prediction failed", timeout=30)
    records = {record["fields"]["message"]: record for record in _records(path_server, "slow-download")}
    waited = _seconds_between(records["Cancelling prediction"], records["Prediction failed"])
    assert waited > 1.0, f"the cancel took effect after {waited:.2f} s"  # the download's rest: about 2 s
    assert records["Prediction failed"]["fields"]["error"] == "Input validation error: "


def _records(server: CogServer, prediction_id: str) -> list[dict]:
    records = []
    for line in server.log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("fields", {}).get("prediction_id") == prediction_id:
            records.append(record)
    return records


def _seconds_between(first: dict, second: dict) -> float:
    start, end = (datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")) for record in (first, second))
    return (end - start).total_seconds()
