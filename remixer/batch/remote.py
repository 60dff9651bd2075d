"""Remote batches: jobs sent to Cog HTTP servers, N predictions in flight, none lost.

Each job is one synchronous ``PUT /predictions/<id>`` (its input files as data URIs) from one of
``in_flight`` worker threads, to the least busy of the endpoints (one server, several, or a load
balancer in front of many). Why synchronous requests, not ``Prefer: respond-async`` and a
webhook receiver: coglet 0.23.1 answers 405 to ``GET /predictions/<id>``, so an asynchronous
client learns the result only from a webhook, and that needs every server to reach back to the
client (not the case for a laptop behind NAT sending to a cloud deployment). A synchronous
request's response *is* the result, on the connection the client opened, through any proxy; and
coglet cancels a synchronous prediction whose connection drops, so a client that dies leaves
nothing running. The cost is a thread and an open connection per prediction in flight.

What comes back decides what happens next:

* ``succeeded``: the outputs (data URIs, or URLs when the server uploads them) are decoded and
  written under the names local mode gives them (:func:`output_names`), with the seed (drawn
  here when the job has none, so the record knows it) and the stage timings from the log;
* ``failed`` or 422: the job failed with the server's message; not retried in this run;
* 409 (every slot busy) or 503 (setup not finished): that server rests for a backoff (409: 0.5 s
  doubling to 5 s; 503: 1 s to 30 s, jittered) and the job goes to another or waits, at no cost
  to the job;
* a dropped connection or a 5xx after sending: the server rests (1 s doubling to 30 s) and the
  job is sent again as a new prediction, at most ``retries`` times; a refused connection (nothing
  sent) costs the job no retry while another endpoint answers. A killed server's jobs thus move
  to the others, and a server that comes back gets work again;
* no answer within ``timeout`` seconds: the prediction is cancelled and the job failed.

Ctrl-C (:meth:`RemoteRunner.run` gets ``KeyboardInterrupt``): no new job starts, every prediction
in flight is cancelled on its server (``POST /predictions/<id>/cancel``), and their answers
(``canceled``) are awaited for up to ``grace`` seconds; connections still open then are closed,
which makes coglet cancel what they carried. Prediction ids are ``<job key>-<run>-<n>``.
"""
from __future__ import annotations

import base64
import http.client
import json
import logging
import mimetypes
import random
import re
import secrets
import socket
import threading
import time
import typing as tp
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from remixer.batch.jobs import FILE_INPUTS, Job
from remixer.batch.progress import Progress
from remixer.batch.results import CANCELED, FAILED, SUCCEEDED, Record, Results
from remixer.requests import SEED_LIMIT, GenerateRequest, RemixRequest

__all__ = ["Endpoint", "RemoteRunner", "output_names", "EndpointError"]

logger = logging.getLogger(__name__)

# The order of the predictor's outputs (README, "Replicate's HTTP API") and the stems' names.
STEM_NAMES = ("drums", "bass", "other", "vocals")
# A stage's end in the predictor's log (remixer.pipeline's timer).
_STAGE_DONE = re.compile(r"remixer\.pipeline: (.+?) done in ([0-9.]+) s(?: \([^)]*\))?$", re.M)
# What coglet 0.23.1 puts before an async predictor's error message.
_COGLET_PREFIX = re.compile(r"^(Prediction failed: )?(Async prediction failed: )?")
# Rest of an endpoint after each outcome: (first, longest) seconds, doubling in between.
_RESTS = {"busy": (0.5, 5.0), "starting": (1.0, 30.0), "failed": (1.0, 30.0)}
_CANCEL_TIMEOUT_S = 10.0
_CONNECT_TIMEOUT_S = 10.0


class EndpointError(Exception):
    """An endpoint that does not answer as a Cog server."""


def output_names(request: RemixRequest | GenerateRequest) -> list[str]:
    """The file names local mode gives the predictor's outputs for ``request``, in the order
    the predictor returns them: the remix (or the generation), then as requested the
    instrumental, the four stems, ``analysis.json``, ``analysis.png`` and ``analysis.html``."""
    fmt = request.output.format
    if isinstance(request, GenerateRequest):
        return [f"generated.{fmt}"]
    names = [f"remix.{fmt}"]
    if request.return_instrumental:
        names.append(f"instrumental.{fmt}")
    if request.return_stems:
        names += [f"stem-{stem}.{fmt}" for stem in STEM_NAMES]
    if request.return_analysis:
        names += ["analysis.json", "analysis.png", "analysis.html"]
    return names


@dataclass
class Answer:
    """A server's answer: the HTTP status and the JSON body."""

    status: int
    body: dict[str, tp.Any]


class Endpoint:
    """One Cog HTTP server (or a load balancer in front of several), by its base URL."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint {url!r}: give an http:// or https:// URL, e.g. http://localhost:5000")
        self.url = url.rstrip("/")
        self._parts = parts
        self._prefix = parts.path.rstrip("/")

    def __str__(self) -> str:
        return self.url

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        """An open connection (at most ``_CONNECT_TIMEOUT_S`` to open it) whose reads wait up to
        ``timeout`` seconds."""
        kind = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(self._parts.hostname, self._parts.port, timeout=_CONNECT_TIMEOUT_S)
        connection.connect()
        connection.sock.settimeout(timeout)
        return connection

    def call(self, method: str, path: str, body: dict[str, tp.Any] | None = None, *, timeout: float,
             connection: http.client.HTTPConnection | None = None) -> Answer:
        """One request; ``connection`` (from :meth:`connect`) lets another thread close it."""
        connection = connection or self.connect(timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            connection.request(method, self._prefix + path, body=data,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            parsed = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            parsed = {"error": raw[:200].decode(errors="replace")}
        return Answer(response.status, parsed if isinstance(parsed, dict) else {"output": parsed})

    def health(self, timeout: float = 10.0) -> str:
        """The server's status (``READY``, ``BUSY``, ``STARTING``, ``SETUP_FAILED``...).

        Raises
        ------
        EndpointError
            When it does not answer as a Cog server.
        """
        try:
            answer = self.call("GET", "/health-check", timeout=timeout)
        except (OSError, http.client.HTTPException) as error:
            raise EndpointError(f"{self}: {error}") from None
        if answer.status != 200 or "status" not in answer.body:
            raise EndpointError(f"{self}: /health-check answered HTTP {answer.status}, not a Cog server")
        return str(answer.body["status"])

    def cancel(self, prediction_id: str) -> bool:
        """Ask the server to cancel ``prediction_id``; False when it does not know it."""
        try:
            return self.call("POST", f"/predictions/{prediction_id}/cancel",
                             timeout=_CANCEL_TIMEOUT_S).status == 200
        except (OSError, http.client.HTTPException):
            return False


class _Endpoints:
    """The endpoints: healthy before failing, then least busy (by this client's requests), then
    in turn; one that was busy or failed rests for a backoff before it gets a job again."""

    def __init__(self, endpoints: tp.Sequence[Endpoint]) -> None:
        self.endpoints = list(endpoints)
        self._load = [0] * len(endpoints)
        self._rest_until = [0.0] * len(endpoints)
        self._busy = [0] * len(endpoints)  # busy answers in a row
        self._failures = [0] * len(endpoints)  # failures in a row
        self._turn = 0
        self._ready = threading.Condition()

    def acquire(self, stop: threading.Event) -> Endpoint | None:
        """The endpoint for the next request (None once ``stop`` is set)."""
        count = len(self.endpoints)
        with self._ready:
            while not stop.is_set():
                now = time.monotonic()
                usable = [i for i, until in enumerate(self._rest_until) if until <= now]
                if usable:
                    index = min(usable, key=lambda i: (self._failures[i] > 0, self._load[i], (i - self._turn) % count))
                    self._turn = (index + 1) % count
                    self._load[index] += 1
                    return self.endpoints[index]
                self._ready.wait(timeout=min(self._rest_until) - now)
            return None

    def release(self, endpoint: Endpoint, outcome: str) -> float:
        """Done with ``endpoint``: after ``busy``, ``starting`` or ``failed`` it rests (the
        seconds are returned; each in a row doubles it, :data:`_RESTS`); any other outcome
        (it answered) ends its runs of both."""
        with self._ready:
            index = self.endpoints.index(endpoint)
            self._load[index] -= 1
            rest = 0.0
            if outcome == "failed" and self._failures[index] == 0:
                logger.warning("%s stopped answering: its jobs go to the other endpoints, and it is "
                               "tried again now and then", endpoint)
            elif outcome not in _RESTS and self._failures[index]:
                logger.warning("%s answers again", endpoint)
            if outcome in _RESTS:
                streak = self._failures if outcome == "failed" else self._busy
                base, cap = _RESTS[outcome]
                rest = min(cap, base * 2 ** streak[index]) * random.uniform(0.5, 1.0)
                streak[index] += 1
                self._rest_until[index] = max(self._rest_until[index], time.monotonic() + rest)
            else:
                self._busy[index] = self._failures[index] = 0
            self._ready.notify_all()
            return rest

    def any_healthy(self) -> bool:
        """Whether some endpoint has not failed since it last answered."""
        with self._ready:
            return any(failures == 0 for failures in self._failures)

    def wake(self) -> None:
        with self._ready:
            self._ready.notify_all()


class _InFlight:
    """The predictions on the wire: id -> (endpoint, connection), so Ctrl-C can cancel them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[Endpoint, http.client.HTTPConnection]] = {}

    def add(self, prediction_id: str, endpoint: Endpoint, connection: http.client.HTTPConnection,
            stop: threading.Event) -> bool:
        """Register before sending; False (send nothing) once the batch is stopping."""
        with self._lock:
            if stop.is_set():
                return False
            self._items[prediction_id] = (endpoint, connection)
            return True

    def remove(self, prediction_id: str) -> None:
        with self._lock:
            self._items.pop(prediction_id, None)

    def items(self) -> list[tuple[str, Endpoint, http.client.HTTPConnection]]:
        with self._lock:
            return [(pid, endpoint, connection) for pid, (endpoint, connection) in self._items.items()]

    @staticmethod
    def disconnect(connection: http.client.HTTPConnection) -> None:
        """Close ``connection`` under its waiting thread: coglet cancels a synchronous
        prediction whose client is gone."""
        sock = connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class RemoteRunner:
    """Sends jobs to Cog endpoints, ``in_flight`` at a time.

    Parameters
    ----------
    endpoints : list of Endpoint
    in_flight : int
        Predictions sent at once (worker threads), over all endpoints.
    timeout : float
        Seconds a prediction may take, from sending it to its answer.
    retries : int
        Times a job is sent again after a transient failure (refused, dropped, 5xx).
    grace : float
        Seconds to wait, after Ctrl-C, for the servers to confirm the cancellations.
    """

    def __init__(self, endpoints: tp.Sequence[Endpoint], *, in_flight: int, timeout: float,
                 retries: int = 3, grace: float = 30.0) -> None:
        self.endpoints = _Endpoints(endpoints)
        self.in_flight = in_flight
        self.timeout = timeout
        self.retries = retries
        self.grace = grace
        self.run_id = secrets.token_hex(3)
        self._stop = threading.Event()
        self._wire = _InFlight()

    def run(self, jobs: tp.Sequence[Job], results: Results, progress: Progress) -> None:
        """Run ``jobs`` and record each as it ends.

        Raises
        ------
        KeyboardInterrupt
            After cancelling every prediction in flight and recording their jobs as canceled.
        """
        queue = deque(jobs)
        done = [threading.Event() for _ in range(min(self.in_flight, len(jobs)))]
        for index, finished in enumerate(done):
            threading.Thread(target=self._work, args=(queue, results, progress, finished), daemon=True,
                             name=f"batch-{index}").start()
        try:
            _wait(done)
        except KeyboardInterrupt:
            self._interrupt(done)
            raise

    def _interrupt(self, done: list[threading.Event]) -> None:
        self._stop.set()
        self.endpoints.wake()
        in_flight = self._wire.items()
        logger.info("interrupted: cancelling %d prediction(s) in flight", len(in_flight))
        for prediction_id, endpoint, connection in in_flight:
            cancelled = endpoint.cancel(prediction_id)
            logger.info("cancel %s on %s: %s", prediction_id, endpoint, "accepted" if cancelled else "unknown there")
            if not cancelled:
                self._wire.disconnect(connection)  # not (or no longer) known there: drop it
        try:
            _wait(done, deadline=time.monotonic() + self.grace)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: do not wait for the confirmations
        for _, _, connection in self._wire.items():
            self._wire.disconnect(connection)
        _wait(done, deadline=time.monotonic() + _CANCEL_TIMEOUT_S)

    def _work(self, queue: deque[Job], results: Results, progress: Progress, done: threading.Event) -> None:
        try:
            while not self._stop.is_set():
                try:
                    job = queue.popleft()
                except IndexError:
                    return
                record = self._run_one(job, results, progress)
                results.add(record)
                progress.finished(job, record)
        finally:
            done.set()

    def _run_one(self, job: Job, results: Results, progress: Progress) -> Record:
        start = time.perf_counter()
        seed = job.request.sampling.seed
        if seed is None:
            seed = secrets.randbelow(SEED_LIMIT)  # sent, so that the record knows it
        try:
            inputs = _payload(job, seed)
        except OSError as error:
            return Record.of(job, FAILED, seed=seed, error=f"cannot read an input file: {error}", attempts=0)
        attempts = failures = sends = 0
        while True:
            progress.stage(job, "waiting for a server")
            endpoint = self.endpoints.acquire(self._stop)
            if endpoint is None:
                return self._end(job, CANCELED, start, seed=seed, attempts=attempts, error="interrupted")
            sends += 1
            progress.stage(job, f"running on {endpoint}")
            outcome, answer, error = self._send(endpoint, f"{job.key}-{self.run_id}-{sends}", inputs)
            rest = self.endpoints.release(endpoint, "failed" if outcome == "unreachable" else outcome)
            attempts += outcome in ("answered", "failed", "timeout")
            fields = dict(seed=seed, attempts=attempts, where=str(endpoint))
            if self._stop.is_set():
                confirmed = answer is not None and answer.body.get("status") == CANCELED
                return self._end(job, CANCELED, start, **fields, error="interrupted; the server "
                                 f"{'confirmed' if confirmed else 'was asked for'} the cancellation")
            if outcome in ("busy", "starting"):  # a full or starting server is no failure of the job
                progress.stage(job, f"{endpoint} {outcome}; it rests {rest:.1f} s")
                continue
            if outcome in ("failed", "unreachable"):
                logger.info("job %s: %s", job.folder, error)
                # Nothing reached a dead server: while another one answers, that is not the job's failure.
                failures += outcome == "failed" or not self.endpoints.any_healthy()
                if failures > self.retries:
                    return self._end(job, FAILED, start, **fields, error=f"{error} ({failures} failures)")
                progress.stage(job, f"retry: {error}")
                continue
            if outcome == "timeout":
                return self._end(job, FAILED, start, **fields, error=error)
            return self._finish(job, answer, results, start, **fields)

    def _send(self, endpoint: Endpoint, prediction_id: str,
              inputs: dict[str, tp.Any]) -> tuple[str, Answer | None, str | None]:
        """PUT one prediction and wait for it: ``(outcome, answer, error)``; the outcome is
        ``answered``, ``busy`` (409), ``starting`` (503), ``unreachable`` (nothing sent),
        ``failed`` (dropped or a server error after sending) or ``timeout``."""
        try:
            connection = endpoint.connect(self.timeout)
        except OSError as error:
            return "unreachable", None, f"{endpoint}: cannot connect ({error})"
        if not self._wire.add(prediction_id, endpoint, connection, self._stop):
            connection.close()
            return "unreachable", None, "interrupted"
        try:
            answer = endpoint.call("PUT", f"/predictions/{prediction_id}", {"id": prediction_id, "input": inputs},
                                   timeout=self.timeout, connection=connection)
        except TimeoutError:
            endpoint.cancel(prediction_id)
            return "timeout", None, f"no answer from {endpoint} within {self.timeout:g} s; the prediction was cancelled"
        except (OSError, http.client.HTTPException) as error:
            endpoint.cancel(prediction_id)  # if the server lives, it must not go on with it
            return "failed", None, f"{endpoint}: {type(error).__name__}: {error}"
        finally:
            self._wire.remove(prediction_id)
        if answer.status == 409:
            return "busy", answer, None
        if answer.status == 503:
            return "starting", answer, None
        if answer.status >= 500 or answer.status == 202:
            return "failed", answer, f"{endpoint} answered HTTP {answer.status}: {answer.body.get('error', '')}"
        return "answered", answer, None

    def _finish(self, job: Job, answer: Answer, results: Results, start: float, **fields: tp.Any) -> Record:
        """The record of a prediction that ended: its outputs written, or why it failed."""
        body = answer.body
        status = body.get("status")
        if answer.status == 200 and status == SUCCEEDED:
            outputs = body.get("output")
            outputs = outputs if isinstance(outputs, list) else [outputs]
            try:
                with results.staging(job) as staging:
                    files = _write_outputs(outputs, output_names(job.request), staging)
                    written = results.commit(job, staging, files)
            except (OSError, ValueError) as error:
                return self._end(job, FAILED, start, error=f"cannot write its outputs: {error}", **fields)
            return self._end(job, SUCCEEDED, start, outputs=written, timings=stage_timings(body.get("logs") or ""),
                             **fields)
        if status == CANCELED:
            return self._end(job, FAILED, start, error="canceled on the server", **fields)
        return self._end(job, FAILED, start, error=_error_text(answer), **fields)

    @staticmethod
    def _end(job: Job, status: str, start: float, **fields: tp.Any) -> Record:
        logger.info("job %s: %s", job.folder, status)
        return Record.of(job, status, seconds=time.perf_counter() - start, **fields)


def _wait(done: list[threading.Event], deadline: float | None = None) -> None:
    """Wait until every worker is ``done`` (or until ``deadline``, monotonic) in short sleeps:
    Ctrl-C must reach the main thread in a sleep, never inside ``Thread.join``, which CPython
    3.11 leaves believing the thread has ended (bpo-45274's fix releases the running thread's
    lock)."""
    while not all(event.is_set() for event in done) and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.05)


def _payload(job: Job, seed: int) -> dict[str, tp.Any]:
    """The job's inputs as the server takes them: files as data URIs, the seed set."""
    inputs = {name: value for name, value in job.inputs.items() if name not in FILE_INPUTS}
    for name in FILE_INPUTS:
        if job.inputs.get(name) is not None:
            inputs[name] = data_uri(Path(job.inputs[name]))
    inputs["seed"] = seed
    return inputs


def data_uri(path: Path) -> str:
    """The file as a ``data:`` URI (the MIME type from its suffix)."""
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _write_outputs(outputs: list[tp.Any], names: list[str], folder: Path) -> list[Path]:
    """Decode (data URIs) or download (URLs) the outputs into ``folder`` under ``names``; if the
    server returned another number of files, they are named ``output-<n>`` with their type's
    suffix."""
    if len(outputs) != len(names):
        logger.warning("the server returned %d files, %d expected: named output-<n>", len(outputs), len(names))
        names = [f"output-{index}" for index in range(len(outputs))]
    paths = []
    for output, name in zip(outputs, names):
        data, mime = _fetch(output)
        if "." not in name:
            name += mimetypes.guess_extension(mime or "") or ""
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def _fetch(output: tp.Any) -> tuple[bytes, str | None]:
    if not isinstance(output, str):
        raise ValueError(f"an output is not a file: {str(output)[:80]!r}")
    if output.startswith("data:"):
        header, _, data = output.partition(",")
        mime = header[5:].split(";")[0] or None
        return (base64.b64decode(data) if header.endswith(";base64") else urllib.parse.unquote_to_bytes(data)), mime
    if output.startswith(("http://", "https://")):
        with urllib.request.urlopen(output, timeout=60) as response:
            return response.read(), response.headers.get_content_type()
    raise ValueError(f"an output is neither a data URI nor a URL: {output[:80]!r}")


def stage_timings(logs: str) -> dict[str, float]:
    """Seconds per stage, from a prediction's log (each stage's "done in" line)."""
    return {stage: float(seconds) for stage, seconds in _STAGE_DONE.findall(logs)}


def _error_text(answer: Answer) -> str:
    """The server's message: a failed prediction's error, or a 422's field messages."""
    body = answer.body
    if isinstance(body.get("detail"), list):
        return "; ".join(f"{'.'.join(map(str, item.get('loc', [])[2:])) or 'input'}: {item.get('msg')}"
                         for item in body["detail"] if isinstance(item, dict))
    error = str(body.get("error") or f"HTTP {answer.status} {json.dumps(body)[:200]}")
    return _COGLET_PREFIX.sub("", error)
