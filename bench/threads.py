"""The CLI's threads: a 3-minute remix from the command line before and after, and through the server.

Three ways to remix the same song, side by side in one run, rotating their order each round so a
busy phase of a shared machine hits all alike:

* **CLI before**: ``python -m remixer`` from the code of ``--before`` (a git revision; default the
  last one without :mod:`remixer.threads`), so torch's defaults: one intra-op thread per core,
  OpenMP threads that spin while they wait;
* **CLI after**: ``python -m remixer`` from this checkout (threads from the cores available,
  OpenMP waiting passively);
* **server**: the real Cog HTTP server on this checkout (``cog.server.http``, one remix request;
  its setup is not timed).

Each CLI figure is the whole command (imports, model loading, the remix, export), as a user waits
for it; the server's is the request. The models are TINY and RANDOM in the real formats
(``bench/remix.py``'s cache: the stereo chord LM with the real 30 s window, madmom's real beat
model), so the figures show the threading, not production speed. Prints each run, the medians,
and the ratios before/after and CLI/server.

Usage::

    python bench/threads.py [--seconds 180] [--runs 1] [--before REV]

Writes only to temporary directories.
"""
from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.remix import TINY_BANNER, VERSION, write_song, write_tiny_weights  # noqa: E402
from fixtures.cog_server import CogServer  # noqa: E402

# The last commit before the thread settings (issue 21).
BEFORE = "989835d"
PROMPT = "bossa nova"
WAYS = ("CLI before", "CLI after", "server")
# Variables that would hide the difference: each way runs with the libraries' own defaults or ours.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY",
                     "REMIXER_THREADS")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _THREAD_VARIABLES}
    return {**env, **extra}


def checkout(revision: str, directory: Path) -> Path:
    """The tree of ``revision`` under ``directory`` (``git archive``: no history, no worktree)."""
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory


def cli_seconds(tree: Path, song: Path, weights: Path, manifest: Path, out: Path) -> float:
    """Wall seconds of one ``python -m remixer`` remix run from ``tree``."""
    command = [sys.executable, "-m", "remixer", str(song), "--prompt", PROMPT, "-o", str(out),
               "--weights-dir", str(weights), "--offline", "--model-version", VERSION, "--seed", "0",
               "--analysis-backend", "madmom", "-q"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True,
                          env=_clean_env(REMIXER_WEIGHTS_MANIFEST=str(manifest), PYTHONPATH=str(tree)))
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the CLI in {tree} failed:\n{done.stderr[-3000:]}")
    return seconds


def server_seconds(server: CogServer, song: Path) -> float:
    """Wall seconds of one remix request to the running server."""
    payload = {"prompt": PROMPT, "model_version": VERSION, "seed": 0,
               "music_input": "data:audio/flac;base64," + base64.b64encode(song.read_bytes()).decode()}
    start = time.perf_counter()
    reply = server.predict(payload, timeout=7200)
    seconds = time.perf_counter() - start
    if reply.get("status") != "succeeded":
        raise RuntimeError(f"the server's remix failed: {reply.get('error')}\n{server.log_tail()}")
    return seconds


def report(times: dict[str, list[float]], seconds: float) -> str:
    medians = {way: statistics.median(values) for way, values in times.items()}
    lines = [f"{seconds:g} s song, {len(times['server'])} run(s) each, rotating; wall seconds"]
    lines += [f"  {way:<11} " + "  ".join(f"{value:7.1f}" for value in times[way])
              + f"   median {medians[way]:7.1f}" for way in WAYS]
    lines.append(f"CLI before / CLI after: {medians['CLI before'] / medians['CLI after']:.2f}x")
    ratio = medians["CLI after"] / medians["server"]
    lines.append(f"CLI after / server: {ratio:.2f}x (target <= 1.5x: {'OK' if ratio <= 1.5 else 'MISSED'})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="song length (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="rounds of the three (default: %(default)s)")
    parser.add_argument("--before", default=BEFORE, help="git revision of the CLI before (default: %(default)s)")
    args = parser.parse_args()
    for name in _THREAD_VARIABLES:  # the server inherits this process's environment
        os.environ.pop(name, None)
    print(TINY_BANNER)
    print(f"cores available: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="remixer-bench-threads-") as tmp:
        tmp = Path(tmp)
        weights = tmp / "weights"
        manifest = write_tiny_weights(weights, with_allinone=False, htdemucs_size=False)
        wav = write_song(args.seconds, tmp)
        song = tmp / "song.flac"  # a smaller upload for the server than the wav
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), str(song)], check=True)
        before = checkout(args.before, (tmp / "before").resolve())
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        with CogServer(tmp / "server", weights, manifest, REMIXER_MAX_DURATION=str(args.seconds + 60),
                       REMIXER_DEFAULT_VERSION=VERSION) as server:
            for run in range(args.runs):
                order = WAYS[run % 3:] + WAYS[:run % 3]
                for way in order:
                    if way == "server":
                        seconds = server_seconds(server, song)
                    else:
                        tree = before if way == "CLI before" else ROOT
                        seconds = cli_seconds(tree, song, weights, manifest, tmp / f"{way[4:]}.wav")
                    times[way].append(seconds)
                    print(f"  run {run + 1}: {way:<11} {seconds:7.1f} s (load average "
                          f"{os.getloadavg()[0]:.1f})", flush=True)
        print(report(times, args.seconds))
        print("(tiny random models: threading, not production speed)")


if __name__ == "__main__":
    main()
