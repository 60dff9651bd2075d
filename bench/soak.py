"""Memory over many predictions through the real Cog server (coglet), tiny weights: a leak or not?

``--predictions`` (200) sequential predictions of mixed kinds, in a fixed rotation: remixes (stereo
and mono songs, mono and stereo models, a new tempo and key, every extra output, mp3), generations
(text chords, chords of an input audio, a continuation), requests refused before any model runs, a
song longer than the limit, and a generation cancelled midway. After each one the resident memory
(``VmRSS``) of the predictor's worker process and of the whole server (coglet's process and the
worker) is read from ``/proc``. The curve is printed every ``--every`` predictions, and the last
value against the one after ``--baseline`` (20) predictions: a leak grows with the count, while
caches, allocator arenas and lazily loaded code settle within the first predictions.

Then ``--big-uri`` MB (70) of audio as a data URI: the worker's peak memory (``VmHWM``, reset
through ``/proc/<pid>/clear_refs`` before the request) above its resident memory before it.

The models are TINY and RANDOM (``devtools/tiny/cache.py``): the figures are the pipeline's and
the server's own memory, not the real models'. The server runs torch on one thread
(``OMP_NUM_THREADS=1``: tiny models are latency-bound, see ``bench/README.md``). About 5 minutes
on 2 quiet cores.

Usage::

    python bench/soak.py [--predictions 200] [--every 10] [--baseline 20] [--big-uri 70]
"""
from __future__ import annotations

import argparse
import base64
import io
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.cog_server import CogServer, tiny_server  # noqa: E402
from fixtures.music import synth_song  # noqa: E402

KEEP_S = 1.0
MAX_DURATION_S = 20


def _data_uri(wav: np.ndarray, rate: int) -> str:
    buffer = io.BytesIO()
    sf.write(buffer, wav.T, rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


def _songs() -> dict[str, str]:
    stereo = synth_song(150, duration=3.0, sample_rate=44_100)
    mono = synth_song(100, duration=3.0, sample_rate=22_050, channels=1)
    too_long = np.full((1, (MAX_DURATION_S + 5) * 8000), 0.1, dtype=np.float32)
    return {"stereo": _data_uri(stereo.audio, stereo.sample_rate), "mono": _data_uri(mono.audio, mono.sample_rate),
            "too_long": _data_uri(too_long, 8000)}


@dataclass(frozen=True)
class Kind:
    """One kind of prediction in the rotation, and the status it must end with."""

    name: str
    payload: dict
    status: str = "succeeded"
    cancel: bool = False


def _kinds(songs: dict[str, str]) -> list[Kind]:
    quick = {"model_version": "chord", "seed": 1}
    return [
        Kind("remix, stereo song, mono model", {"prompt": "rock", "music_input": songs["stereo"], **quick}),
        Kind("remix, mono song, stereo model, all outputs, mp3",
             {"prompt": "bossa nova", "music_input": songs["mono"], "model_version": "stereo-chord",
              "return_instrumental": True, "return_stems": True, "return_analysis": True,
              "output_format": "mp3", "seed": 2}),
        Kind("text chords", {"prompt": "jazz", "text_chords": "C G A:min F", "bpm": 120, "duration": 2.0, **quick}),
        # Refused by our checks, not Cog's schema (which answers a mistyped or out-of-range input
        # with a 422 before the worker sees it).
        Kind("refused: invisible prompt", {"prompt": "\u200b\u200b", "music_input": songs["stereo"]}, "failed"),
        Kind("remix at a new tempo and key",
             {"prompt": "lofi", "music_input": songs["stereo"], "target_bpm": 120, "key_shift": -2, **quick}),
        Kind("chords of an input audio", {"prompt": "calm", "input_audio": songs["mono"], "duration": 2.0, **quick}),
        Kind("refused: song too long", {"prompt": "rock", "music_input": songs["too_long"]}, "failed"),
        Kind("continuation", {"prompt": "calm", "input_audio": songs["stereo"], "continuation": True,
                              "audio_end": 1.0, "duration": 2.0, **quick}),
        Kind("generation cancelled midway", {"prompt": "calm", "duration": 120.0, **quick}, "canceled", cancel=True),
        Kind("remix, flac, instrumental",
             {"prompt": "funk", "music_input": songs["mono"], "output_format": "flac", "return_instrumental": True,
              **quick}),
    ]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _worker(server_pid: int) -> int:
    """The predictor's process: coglet's child running Python (the largest one)."""
    children = _children(server_pid)
    if not children:
        raise RuntimeError("the server has no worker process")
    return max(children, key=lambda pid: _status_kb(pid, "VmRSS"))


def _run(server: CogServer, kind: Kind, index: int) -> None:
    if not kind.cancel:
        reply = server.predict(kind.payload, timeout=600)
        if reply.get("status") != kind.status:
            raise RuntimeError(f"{kind.name}: {reply.get('status')} ({reply.get('error')})")
        return
    prediction = f"soak-{index}"
    server.start(prediction, kind.payload)
    tag = f'"prediction_id":"{prediction}"'
    deadline = time.time() + 120
    while not any(tag in line and "generation ..." in line for line in server.log_path.read_text().splitlines()):
        if time.time() > deadline:
            raise TimeoutError(f"{prediction} never reached generation")
        time.sleep(0.05)
    time.sleep(0.3)  # past coglet's submission (bench/cancel.py: a cancel there is lost)
    server.cancel(prediction)
    while not any(tag in line and "Prediction cancelled" in line for line in server.log_path.read_text().splitlines()):
        if time.time() > deadline:
            raise TimeoutError(f"{prediction} did not stop")
        time.sleep(0.05)
    while server.health() != "READY":  # the slot comes back after the response (coglet)
        time.sleep(0.05)


def _big_uri_peak(server: CogServer, worker: int, megabytes: float) -> tuple[int, int]:
    """(RSS before, peak during) in kB for a song of ``megabytes`` sent as a data URI."""
    frames = int(megabytes * 1e6 / 4)  # 16-bit stereo
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, (2, frames)).astype(np.float32)
    uri = _data_uri(noise, 44_100)
    before = _status_kb(worker, "VmRSS")
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # VmHWM := VmRSS
    reply = server.predict({"prompt": "rock", "music_input": uri}, timeout=600)
    if reply.get("status") != "failed":  # longer than the server's limit: refused after decoding the URI
        raise RuntimeError(f"the {megabytes:g} MB song was not refused: {reply.get('status')}")
    return before, _status_kb(worker, "VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=int, default=200)
    parser.add_argument("--every", type=int, default=10, help="print the curve every N predictions")
    parser.add_argument("--baseline", type=int, default=20, help="compare the end with RSS after N predictions")
    parser.add_argument("--big-uri", type=float, default=70.0, help="MB of audio in one data URI (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as root:
        print("TINY RANDOM models: the pipeline's and the server's own memory, not the real models'")
        with tiny_server(Path(root), REMIXER_KEEP_OUTPUTS_S=str(KEEP_S), REMIXER_MAX_DURATION=str(MAX_DURATION_S),
                         OMP_NUM_THREADS="1") as server:
            server_pid = server.pid
            worker = _worker(server_pid)
            kinds = _kinds(_songs())
            print(f"after setup: worker {_status_kb(worker, 'VmRSS') / 1024:.0f} MB, "
                  f"server {_status_kb(server_pid, 'VmRSS') / 1024:.0f} MB")
            print(f"{'n':>5} {'worker MB':>10} {'server MB':>10} {'s/prediction':>13}")
            curve: dict[int, int] = {}
            seconds: dict[str, list[float]] = {}
            start = time.perf_counter()
            for index, kind in zip(range(1, args.predictions + 1), itertools.cycle(kinds)):
                began = time.perf_counter()
                _run(server, kind, index)
                seconds.setdefault(kind.name, []).append(time.perf_counter() - began)
                curve[index] = _status_kb(worker, "VmRSS")
                if index % args.every == 0 or index == 1:
                    print(f"{index:>5} {curve[index] / 1024:>10.0f} {_status_kb(server_pid, 'VmRSS') / 1024:>10.0f} "
                          f"{(time.perf_counter() - start) / index:>13.2f}", flush=True)
            for name, times in seconds.items():
                print(f"  {name}: median {statistics.median(times):.2f} s")
            last, base = curve[args.predictions], curve[min(args.baseline, args.predictions)]
            print(f"worker RSS after {args.predictions}: {last / 1024:.0f} MB, after {args.baseline}: "
                  f"{base / 1024:.0f} MB: {100 * (last / base - 1):+.1f} % (target within 10 %)")
            if args.big_uri:
                before, peak = _big_uri_peak(server, worker, args.big_uri)
                print(f"{args.big_uri:g} MB song as a data URI: worker peak {peak / 1024:.0f} MB, "
                      f"{(peak - before) / 1024:+.0f} MB above its RSS before ({before / 1024:.0f} MB)")
            time.sleep(KEEP_S + 1.5)
            print(f"request directories left: {len(list(server.tmp.glob('remixer-*')))}, "
                  f"other files in the server's temp directory: "
                  f"{len([p for p in server.tmp.iterdir() if not p.name.startswith('remixer-')])}")


if __name__ == "__main__":
    main()
