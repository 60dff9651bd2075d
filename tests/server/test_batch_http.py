"""`python -m remixer batch --endpoint` against two real Cog servers (coglet) on 127.0.0.1 with
tiny weights, one prediction slot each: more predictions in flight than slots, a song that is
not audio, Ctrl-C, a re-run, and a server killed mid-batch.

What the servers did is read from their logs (coglet logs every line of a prediction with its
id, and ids are ``<job key>-<run>-<n>``), so "no job lost or run twice" is checked on the
servers' side too. Nothing here depends on timing: every step waits for the event it needs,
with generous limits. The last test kills server B.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
import soundfile as sf

from devtools.tiny.cache import build_tiny_weights
from fixtures.cog_server import ROOT, CogServer
from fixtures.music import synth_song
from remixer.__main__ import main
from remixer.batch.jobs import plan, read_job_file

SECONDS = 2.0
WAIT_S = 240


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Servers A and B, one slot each, started side by side."""
    root = tmp_path_factory.mktemp("servers")
    weights = root / "weights"
    weights.mkdir()
    manifest = build_tiny_weights(weights)
    pair = [CogServer(root / name, weights, manifest, COG_MAX_CONCURRENCY="1")
            for name in ("a", "b")]
    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        started = [pool.submit(server.__enter__) for server in pair]
        for server, future in zip(pair, started):
            stack.callback(server.__exit__)
        for future in started:
            future.result()
        yield pair


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("songs")
    for name, bpm, seed in (("first", 150, 0), ("second", 160, 1)):
        song = synth_song(bpm, duration=SECONDS, sample_rate=22_050, channels=1, seed=seed)
        sf.write(folder / f"{name}.wav", song.audio.T, song.sample_rate)
    (folder / "broken.wav").write_text("a text file, not audio")
    return folder


def _job_file(folder: Path, name: str, jobs: list[dict]) -> Path:
    path = folder / name
    path.write_text("".join(json.dumps({"model_version": "chord", **job}) + "\n" for job in jobs))
    return path


def _keys(path: Path) -> list[str]:
    checked = plan(read_job_file(path, {}))
    assert checked.errors == checked.repeats == []
    return [job.key for job in checked.jobs]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _events(server: CogServer) -> list[tuple[str, str]]:
    """(prediction id, message) of every line coglet logged for a prediction."""
    events = []
    for line in server.log_path.read_text().splitlines():
        try:
            fields = json.loads(line)["fields"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        if "prediction_id" in fields:
            events.append((fields["prediction_id"], fields.get("message", "")))
    return events


def _predictions_that(servers: list[CogServer], key: str, message: str) -> list[str]:
    """Ids of the predictions of job ``key`` that logged ``message`` on any server."""
    return sorted({pid for server in servers for pid, text in _events(server)
                   if pid.startswith(key + "-") and message in text})


def _wait(condition, what: str, *, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert process is None or process.poll() is None, f"the batch ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
        time.sleep(0.05)


def _idle(server: CogServer) -> bool:
    return server.health() == "READY"


def test_a_batch_over_two_servers_with_more_in_flight_than_slots_loses_and_repeats_nothing(
        servers, songs, tmp_path, capsys):
    jobs = [{"song": f"{song}.wav", "prompt": prompt, "seed": seed}
            for song, seed in (("first", 1), ("second", 2)) for prompt in ("bossa nova", "lofi", "techno")]
    jobs[0]["return_instrumental"] = True
    jobs[1]["output_format"] = "flac"
    del jobs[2]["seed"]
    jobs.append({"song": "broken.wav", "prompt": "bossa nova"})
    path = _job_file(songs, "jobs.jsonl", jobs)
    out = tmp_path / "out"
    code = main(["batch", "--jobs", str(path), "--out", str(out), "--in-flight", "3", "--timeout", "600", "-q",
                 *(option for server in servers for option in ("--endpoint", server.url))])
    assert code == 1, capsys.readouterr()
    records = _records(out)
    keys = _keys(path)
    assert sorted(r["key"] for r in records) == sorted(keys)  # one record per job
    by_key = {r["key"]: r for r in records}
    assert [by_key[key]["status"] for key in keys] == ["succeeded"] * 6 + ["failed"]
    assert by_key[keys[6]]["error"].startswith("InputError: music_input: not an audio file")
    assert by_key[keys[6]]["outputs"] == []
    # Both servers worked, and each job ran to its end exactly once on one of them.
    assert {r["where"] for r in records} == {server.url for server in servers}
    for key in keys[:6]:
        finished = _predictions_that(servers, key, "remixer.pipeline: export done")
        assert len(finished) == 1 and by_key[key]["attempts"] == 1
        assert {"separation", "generation", "beat-sync"} <= set(by_key[key]["timings"])
    # The files are written as local mode writes them.
    assert by_key[keys[0]]["outputs"] == [f"{by_key[keys[0]]['outputs'][0].split('/')[0]}/{name}"
                                          for name in ("remix.wav", "instrumental.wav")]
    assert by_key[keys[1]]["outputs"][0].endswith("/remix.flac")
    for key in keys[:6]:
        info = sf.info(out / by_key[key]["outputs"][0])
        assert (info.samplerate, info.frames) == (32_000, SECONDS * 32_000)
    assert [by_key[key]["seed"] for key in keys[:6] if key != keys[2]] == [1, 1, 2, 2, 2]
    assert isinstance(by_key[keys[2]]["seed"], int)  # drawn by the client, sent, and recorded
    _wait(lambda: all(_idle(server) for server in servers), "idle servers")


def test_ctrl_c_cancels_the_prediction_on_the_server_and_running_again_resumes(servers, songs, tmp_path):
    server, _ = servers
    jobs = [{"prompt": "quick one", "duration": 1.0, "seed": 3},
            {"prompt": "quick two", "duration": 1.0, "seed": 3},
            {"prompt": "long one", "duration": 20.0, "seed": 4},
            {"prompt": "long two", "duration": 20.0, "seed": 5}]
    path = _job_file(songs, "interrupted.jsonl", jobs)
    keys = _keys(path)
    out = tmp_path / "out"
    command = ["--jobs", str(path), "--out", str(out), "--endpoint", server.url, "--in-flight", "1", "-q"]
    batch = subprocess.Popen([sys.executable, "-m", "remixer.batch", *command], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        _wait(lambda: _predictions_that([server], keys[2], "remixer.pipeline: generation ..."),
              "generation of the first long job", process=batch)
        batch.send_signal(signal.SIGINT)
        stdout, stderr = batch.communicate(timeout=WAIT_S)
    finally:
        batch.kill()
    assert batch.returncode == 130, stderr
    assert "interrupted: run the same command again to resume" in stderr
    records = {r["key"]: r for r in _records(out)}
    assert [records.get(key, {}).get("status") for key in keys[:3]] == ["succeeded", "succeeded", "canceled"], \
        stderr
    assert records[keys[2]]["error"] == "interrupted; the server confirmed the cancellation"
    assert keys[3] not in records  # never started
    (cancelled,) = _predictions_that([server], keys[2], "generation ...")
    _wait(lambda: (cancelled, "Prediction cancelled") in _events(server), "the cancellation in the log")
    assert not _predictions_that([server], keys[2], "export done")
    _wait(lambda: _idle(server), "idle server")  # nothing left running there

    assert main(["batch", *command]) == 0
    records = _records(out)
    assert [r["key"] for r in records[3:]] == keys[2:]  # only the interrupted and the unstarted job
    assert [r["status"] for r in records[3:]] == ["succeeded", "succeeded"]
    for key in keys[:2]:  # the finished ones were not sent again
        assert len(_predictions_that([server], key, "remixer.pipeline: generation ...")) == 1


def test_a_server_killed_mid_batch_leaves_its_job_retried_never_lost_or_run_twice(servers, songs, tmp_path):
    a, b = servers
    jobs = [{"song": song, "prompt": prompt, "seed": 6} for song, prompt in (
        ("first.wav", "one"), ("second.wav", "two"), ("first.wav", "three"))]
    path = _job_file(songs, "killed.jsonl", jobs)
    keys = _keys(path)
    out = tmp_path / "out"
    codes: list[int] = []
    batch = threading.Thread(target=lambda: codes.append(main(
        ["batch", "--jobs", str(path), "--out", str(out), "--endpoint", a.url, "--endpoint", b.url,
         "--in-flight", "2", "--timeout", "600", "-q"])))
    batch.start()
    try:
        def started_on_b() -> list[str]:
            return [pid for pid, text in _events(b) if pid.split("-")[0] in keys and "separation ..." in text]
        _wait(lambda: started_on_b() or not batch.is_alive(), "a remix started on B")
        killed = started_on_b()[0]
        b.kill()
    finally:
        batch.join(timeout=WAIT_S)
    assert codes == [0]
    records = _records(out)
    assert sorted(r["key"] for r in records) == sorted(keys) and {r["status"] for r in records} == {"succeeded"}
    retried = {r["key"]: r for r in records}[killed.split("-")[0]]
    assert retried["where"] == a.url and retried["attempts"] == 2
    for key in keys:  # each job finished once, on A (B finished none before it died)
        assert len(_predictions_that([a], key, "remixer.pipeline: export done")) == 1
    assert not _predictions_that([b], killed.split("-")[0], "export done")
    folders = sorted(p.name for p in out.iterdir())
    assert folders == sorted([*(r["outputs"][0].split("/")[0] for r in records), "batch.log", "results.jsonl"])
