"""predict.py's own wiring, in process: whatever becomes of a request (served, refused, failed in a
stage, a model missing, cancelled), its directory goes or stays as it should, the client reads
the right message, and the request's memory is given back. A pipeline double stands in for the
models (the real pipeline behind the real server: tests/server)."""
from __future__ import annotations

import asyncio
import base64
import inspect
import threading
from pathlib import Path

import pytest

import predict
from predict import Predictor
from remixer.cancellation import CancelToken
from remixer.pipeline import ModelUnavailable, Result
from remixer.requests import InputError, RemixRequest
from remixer.sent_files import FetchLimits
from remixer.weights import MissingWeightsError
from remixer.workdirs import RequestDirs

DEFAULTS = {name: getattr(parameter.default, "default", parameter.default)
            for name, parameter in inspect.signature(Predictor.predict).parameters.items() if name != "self"}
SONG = "data:audio/wav;base64," + base64.b64encode(b"RIFF" + bytes(100)).decode()


class _Pipeline:
    """Does what the request's prompt says: write an output, fail as the client's error naming
    the song's path, find a model missing, or run until cancelled."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.songs: list[Path] = []

    def remix(self, request: RemixRequest, workdir: Path, cancel: CancelToken, progress: object = None) -> Result:
        self.songs.append(request.song)
        assert request.song.read_bytes().startswith(b"RIFF")  # fetched before the pipeline runs
        if request.prompt == "bad song":
            raise InputError(f"{request.song}: not an audio file")
        if request.prompt == "large model":
            raise ModelUnavailable("model_version 'chord-large'", "choose another model_version",
                                   MissingWeightsError("/srv/weights/chord-large.th is missing: run fetch"))
        if request.prompt == "long":
            self.started.set()
            while True:
                cancel.check()
                threading.Event().wait(0.01)
        (workdir / "remix.wav").write_bytes(b"remix")
        return Result(outputs=[workdir / "remix.wav"], seed=1, timings={})


@pytest.fixture
def predictor(tmp_path, monkeypatch):
    released = []
    monkeypatch.setattr(predict, "release_request_memory", lambda: released.append(True))
    served = Predictor()  # no setup(): no models
    served.pipeline, served.dirs, served.fetch_limits = _Pipeline(), RequestDirs(tmp_path, keep_s=60), FetchLimits()
    served.released = released
    return served


def _predict(predictor: Predictor, **inputs) -> list:
    return asyncio.run(predictor.predict(**{**DEFAULTS, "music_input": SONG, **inputs}))


def test_a_served_request_keeps_only_its_outputs_and_gives_its_memory_back(predictor, tmp_path):
    outputs = _predict(predictor, prompt="rock")
    assert [Path(output).read_bytes() for output in outputs] == [b"remix"]
    assert sorted(path.name for path in Path(outputs[0]).parent.iterdir()) == ["remix.wav"]  # the song is gone
    assert predictor.pipeline.songs == [Path(outputs[0]).parent / "music_input.wav"]
    assert predictor.released == [True]


@pytest.mark.parametrize("prompt, inputs, message", [
    ("rock", {"top_k": -1}, "top_k must be an integer >= 0, got -1"),
    ("rock", {"music_input": "/etc/passwd"},
     "music_input must be a file sent with the request (a URL or a data URI); paths on the server are not accepted"),
    ("bad song", {}, "music_input: not an audio file"),  # the path the client never saw is its input's name
    ("large model", {}, "model_version 'chord-large' is not available on this server; choose another model_version"),
])
def test_a_refused_request_leaves_nothing_and_gives_its_memory_back(predictor, tmp_path, prompt, inputs, message):
    with pytest.raises(InputError) as error:
        _predict(predictor, prompt=prompt, **inputs)
    assert str(error.value) == message  # no path on the server in it
    assert list(tmp_path.iterdir()) == []
    assert predictor.released == [True]


def test_a_cancelled_request_stops_its_work_then_leaves_nothing(predictor, tmp_path):
    async def cancel_midway() -> None:
        task = asyncio.ensure_future(predictor.predict(**{**DEFAULTS, "music_input": SONG, "prompt": "long"}))
        while not predictor.pipeline.started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    assert list(tmp_path.iterdir()) == []
    assert predictor.released == [True]
