"""remixer.batch.remote against a scripted Cog server: what the client does with each answer.

The server speaks coglet 0.23.1's protocol on 127.0.0.1 (``PUT /predictions/<id>`` answered when
the prediction ends, 409 when busy, 503 before setup, ``POST .../cancel``) and answers each
prediction as the test scripts it, so busy servers, dropped connections, hung predictions and
failures happen exactly when wanted. The real server is in ``tests/server/test_batch_http.py``.
"""
from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from remixer.batch.jobs import plan
from remixer.batch.progress import Progress
from remixer.batch.remote import Endpoint, RemoteRunner, output_names, stage_timings
from remixer.batch.results import FAILED, SUCCEEDED, Results
from remixer.requests import GenerateRequest, Output, RemixRequest

# As the server logs stages: long ones with their counted steps.
LOGS = "12:00:01 remixer.pipeline: separation ...\n12:00:02 remixer.pipeline: separation done in 1.25 s (3 chunks)\n" \
       "12:00:02 remixer.pipeline: generation done in 3.50 s (400 steps)\n12:00:02 remixer.pipeline: mix done in 0.01 s\n"


class ScriptedCog:
    """A Cog-like server; ``script`` lists what to do with each prediction, in order:
    ``"busy"`` (409), ``"starting"`` (503), ``"drop"`` (close without answering), ``"succeed"``,
    ``"fail"``, ``"invalid"`` (422), ``"hang"`` (answer ``canceled`` once cancelled)."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.predictions: list[tuple[str, dict]] = []
        self.cancels: list[str] = []
        self._cancelled: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(200, {"status": "READY"})

            def do_POST(self) -> None:
                prediction_id = self.path.split("/")[2]
                with server._lock:
                    server.cancels.append(prediction_id)
                    event = server._cancelled.get(prediction_id)
                if event is not None:
                    event.set()
                self._answer(200 if event is not None else 404, {})

            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prediction_id = self.path.split("/")[2]
                with server._lock:
                    server.predictions.append((prediction_id, body["input"]))
                    action = server.script.pop(0) if server.script else "succeed"
                    event = server._cancelled.setdefault(prediction_id, threading.Event())
                if action == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action == "hang":
                    event.wait(timeout=60)
                    return self._answer(200, {"id": prediction_id, "status": "canceled", "logs": ""})
                status, answer = {
                    "busy": (409, {"error": "At capacity - all prediction slots busy", "status": "failed"}),
                    "starting": (503, {"error": "Setup has not finished yet.", "status": "failed"}),
                    "fail": (200, {"status": "failed", "logs": "",
                                   "error": "Prediction failed: Async prediction failed: InputError: music_input: "
                                            "not an audio file"}),
                    "invalid": (422, {"detail": [{"loc": ["body", "input", "top_k"], "msg": "-1 is less than "
                                                  "the minimum of 0", "type": "value_error"}]}),
                    "succeed": (200, {"status": "succeeded", "logs": LOGS, "output": [
                        f"data:audio/wav;base64,{base64.b64encode(name.encode()).decode()}"
                        for name in body["input"].get("_names", ["remix.wav"])]}),
                }[action]
                self._answer(status, {"id": prediction_id, **answer})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def song(tmp_path) -> Path:
    path = tmp_path / "song.wav"
    path.write_bytes(b"RIFF the song")
    return path


def _run(tmp_path, song, scripts: list[list[str]], *, retries: int = 3, timeout: float = 60, jobs: int = 1,
         extra_endpoints: tuple[str, ...] = (), **inputs):
    servers = [ScriptedCog(script) for script in scripts]
    try:
        found = plan([(f"job {n}", {"music_input": song, "prompt": f"style {n}", "model_version": "chord",
                                    **inputs}) for n in range(jobs)]).jobs
        results = Results(tmp_path / "out")
        endpoints = [Endpoint(server.url) for server in servers] + [Endpoint(url) for url in extra_endpoints]
        runner = RemoteRunner(endpoints, in_flight=len(endpoints), timeout=timeout, retries=retries)
        with Progress(len(found), quiet=True) as progress:
            runner.run(found, results, progress)
        return found, results.load(), servers, results
    finally:
        for server in servers:
            server.close()


def test_a_busy_server_is_waited_for_and_the_outputs_are_written_under_local_names(tmp_path, song):
    (job,), records, (server,), results = _run(tmp_path, song, [["busy", "busy", "succeed"]], seed=11)
    record = records[job.key]
    assert record.status == SUCCEEDED and record.attempts == 1 and record.where == server.url
    assert record.seed == 11 and record.timings == {"separation": 1.25, "generation": 3.5, "mix": 0.01}
    assert record.outputs == [f"{job.folder}/remix.wav"]
    assert (results.out / job.folder / "remix.wav").read_bytes() == b"remix.wav"
    assert len(server.predictions) == 3 and server.cancels == []
    (first, inputs), *_ = server.predictions
    assert first == f"{job.key}-{_run_id(first)}-1"
    assert inputs["music_input"] == "data:audio/x-wav;base64," + base64.b64encode(b"RIFF the song").decode()
    assert inputs["prompt"] == "style 0" and inputs["seed"] == 11 and inputs["model_version"] == "chord"


def _run_id(prediction_id: str) -> str:
    return prediction_id.split("-")[1]


def test_a_dropped_prediction_is_cancelled_and_sent_again_with_the_same_seed(tmp_path, song):
    (job,), records, (server,), _ = _run(tmp_path, song, [["drop", "starting", "succeed"]])
    record = records[job.key]
    assert record.status == SUCCEEDED and record.attempts == 2  # a starting server is no failure
    (dropped, first), (_, second), (sent, third) = server.predictions
    assert server.cancels == [dropped] and sent.endswith("-3")
    # No seed given: one was drawn, sent every time and recorded.
    assert first["seed"] == second["seed"] == third["seed"] == record.seed
    assert isinstance(record.seed, int) and 0 <= record.seed < 2 ** 32


def test_a_job_fails_after_its_retries_with_the_last_error(tmp_path, song):
    (job,), records, (server,), _ = _run(tmp_path, song, [["drop"] * 3], retries=2)
    record = records[job.key]
    assert record.status == FAILED and record.attempts == 3 and len(server.predictions) == 3
    assert record.error.startswith(f"{server.url}: RemoteDisconnected") and record.error.endswith("(3 failures)")


@pytest.mark.parametrize("action, error", [
    ("fail", "InputError: music_input: not an audio file"),
    ("invalid", "top_k: -1 is less than the minimum of 0"),
])
def test_a_failed_prediction_is_the_jobs_failure_and_is_not_sent_again(tmp_path, song, action, error):
    (job,), records, (server,), _ = _run(tmp_path, song, [[action]])
    assert records[job.key].status == FAILED and records[job.key].error == error
    assert len(server.predictions) == 1 and records[job.key].outputs == []


def test_a_prediction_past_the_timeout_is_cancelled_on_the_server(tmp_path, song):
    (job,), records, (server,), _ = _run(tmp_path, song, [["hang"]], timeout=1.0)
    record = records[job.key]
    (prediction_id, _), = server.predictions
    assert record.status == FAILED and server.cancels == [prediction_id]
    assert record.error == f"no answer from {server.url} within 1 s; the prediction was cancelled"


def test_jobs_avoid_an_endpoint_that_refuses_connections(tmp_path, song):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
        jobs, records, (server,), _ = _run(tmp_path, song, [[]], jobs=3, extra_endpoints=(dead,))
    assert [records[job.key].status for job in jobs] == [SUCCEEDED] * 3
    assert {records[job.key].where for job in jobs} == {server.url} and len(server.predictions) == 3


def test_a_dead_endpoint_costs_no_retry_while_another_answers_even_busy(tmp_path, song):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
        (job,), records, (server,), _ = _run(tmp_path, song, [["busy"] * 3], retries=0, extra_endpoints=(dead,))
    assert records[job.key].status == SUCCEEDED and records[job.key].attempts == 1
    assert len(server.predictions) == 4


def test_the_output_names_follow_the_predictors_order(tmp_path):
    song = tmp_path / "song.wav"
    every = RemixRequest(song=song, prompt="x", output=Output(format="flac"), return_instrumental=True,
                         return_stems=True, return_analysis=True)
    assert output_names(every) == ["remix.flac", "instrumental.flac", "stem-drums.flac", "stem-bass.flac",
                                   "stem-other.flac", "stem-vocals.flac", "analysis.json", "analysis.png",
                                   "analysis.html"]
    assert output_names(RemixRequest(song=song, prompt="x", return_analysis=True)) == [
        "remix.wav", "analysis.json", "analysis.png", "analysis.html"]
    assert output_names(GenerateRequest(prompt="x", output=Output(format="mp3"))) == ["generated.mp3"]


def test_stage_timings_are_read_from_the_predictions_log():
    assert stage_timings(LOGS + "12:00:03 remixer.generation: window 1/2 done in 2 s\n") == {
        "separation": 1.25, "generation": 3.5, "mix": 0.01}


def test_an_endpoint_must_be_an_http_url():
    with pytest.raises(ValueError, match="endpoint 'localhost:5000': give an http:// or https:// URL"):
        Endpoint("localhost:5000")
