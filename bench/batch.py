"""Batch speed: a prompt sweep in local mode against separate remixes, and remote throughput.

**Local sweep** (side by side in one run, the order rotating from run to run): one song of
``--seconds`` (60) remixed with ``--prompts`` (4) prompts, each way in a fresh process timed from
launch to exit:

* ``batch``: ``python -m remixer batch SONG -p P1 ... -p Pk``: the models load once, the song is
  separated and analysed once, then k generations;
* ``separate``: k runs of ``python -m remixer SONG -p Pi -o ...``, one after the other (what a
  user without the batch runs: each loads the models and reads the song);
* ``loop``: k ``Pipeline.remix`` calls in one process (models loaded once, the song read k
  times): what the shared analysis alone saves.

It prints each way's median wall time, ``separate / batch`` and ``loop / batch`` (target >= 2x
with tiny models), and the batch's stage seconds summed over its jobs from ``results.jsonl``.

**Remote**: a real Cog server (coglet, ``COG_MAX_CONCURRENCY=2``) on 127.0.0.1 with the same
tiny weights; ``--remote-jobs`` (6) remixes of a ``--remote-seconds`` (10) song sent by
``python -m remixer batch --endpoint`` with 1 and with 2 predictions in flight (rotating), each
into a fresh output folder; prints jobs per minute and the ratio.

The models are TINY and RANDOM (``devtools/tiny/cache.py``; the chord LM's window is 2 s, or
the real 30 s with ``--real-window``; ``--htdemucs-size``: a random htdemucs of the real size),
madmom's real pretrained model reads the beats, and every process runs one CPU thread (see
``bench/README.md``): the figures show the batch's structure, not production speed.

Usage::

    python bench/batch.py [--seconds 60] [--prompts 4] [--runs 1] [--only local|remote]
    python bench/batch.py --real-window --htdemucs-size
    python bench/batch.py --only remote --remote-jobs 6 --remote-seconds 10 --runs 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

PROMPTS = ("bossa nova", "lofi hip hop", "dark techno", "jazz trio", "surf rock", "string quartet",
           "reggae", "synthwave")
WAYS = ("batch", "separate", "loop")
TINY_VERSION, REAL_WINDOW_VERSION = "chord", "stereo-chord"
BANNER = ("TINY RANDOM models (madmom's real beat model): the batch's structure, NOT production speed; "
          "one CPU thread per process")


def _env(manifest: Path) -> dict[str, str]:
    env = dict(os.environ, REMIXER_WEIGHTS_MANIFEST=str(manifest), PYTHONPATH=str(ROOT), REMIXER_OFFLINE="1")
    # REMIXER_THREADS: the product sets torch's threads from the cores unless told (remixer.threads).
    for name in ("REMIXER_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    return env


def write_weights(directory: Path, *, real_window: bool, htdemucs_size: bool) -> tuple[Path, str]:
    """The tiny weights cache and the chord version to remix with."""
    if real_window or htdemucs_size:
        from bench.remix import VERSION, write_tiny_weights
        return write_tiny_weights(directory, with_allinone=False, htdemucs_size=htdemucs_size), (
            VERSION if real_window else TINY_VERSION)
    from devtools.tiny.cache import build_tiny_weights
    return build_tiny_weights(directory), TINY_VERSION


def write_song(seconds: float, path: Path) -> Path:
    from devtools.synth import demo_song
    from remixer.audio import export_audio
    song = demo_song(seconds)
    return export_audio(song.audio, song.sample_rate, path, strategy=None)


def _timed(commands: list[list[str]], env: dict[str, str]) -> float:
    start = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:4])} ... failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def remix_loop(song: str, prompts: list[str], weights: str, version: str, out: str) -> None:
    """k remixes in one process, the models loaded once (the ``loop`` way; run in a fresh process)."""
    from remixer.pipeline import Models, Pipeline
    from remixer.requests import RemixRequest, Sampling
    from remixer.weights import Manifest, WeightsStore
    store = WeightsStore(Path(weights), offline=True, manifest=Manifest.load(Path(os.environ["REMIXER_WEIGHTS_MANIFEST"])))
    pipeline = Pipeline(Models.load(store, analysis_backend="madmom", preload=(version,)))
    for index, prompt in enumerate(prompts):
        pipeline.remix(RemixRequest(song=Path(song), prompt=prompt, model_version=version, sampling=Sampling(seed=0)),
                       Path(out) / str(index))


def local_commands(way: str, song: Path, prompts: list[str], weights: Path, version: str,
                   out: Path) -> list[list[str]]:
    common = ["--weights-dir", str(weights), "--offline", "--analysis-backend", "madmom", "-q"]
    if way == "batch":
        return [[sys.executable, "-m", "remixer", "batch", str(song), *(x for p in prompts for x in ("-p", p)),
                 "-i", f"model_version={version}", "-i", "seed=0", "--out", str(out), *common]]
    if way == "separate":
        return [[sys.executable, "-m", "remixer", str(song), "-p", prompt, "-o", str(out / f"{index}.wav"),
                 "--model-version", version, "--seed", "0", *common] for index, prompt in enumerate(prompts)]
    code = f"from bench.batch import remix_loop; remix_loop({str(song)!r}, {prompts!r}, {str(weights)!r}, " \
           f"{version!r}, {str(out)!r})"
    return [[sys.executable, "-c", code]]


def batch_stages(out: Path) -> dict[str, float]:
    """Stage seconds summed over the batch's jobs (``results.jsonl``)."""
    total: dict[str, float] = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        for stage, seconds in json.loads(line)["timings"].items():
            total[stage] = total.get(stage, 0.0) + seconds
    return total


def local_sweep(args: argparse.Namespace, weights: Path, manifest: Path, version: str, root: Path) -> None:
    song = write_song(args.seconds, root / f"song-{args.seconds:g}s.wav")
    prompts = list(PROMPTS[:args.prompts])
    env = _env(manifest)
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    stages: list[dict[str, float]] = []
    for run in range(args.runs):
        for way in WAYS[run % 3:] + WAYS[:run % 3]:
            out = Path(tempfile.mkdtemp(prefix=f"{way}-", dir=root))
            times[way].append(_timed(local_commands(way, song, prompts, weights, version, out), env))
            if way == "batch":
                stages.append(batch_stages(out))
            print(f"  run {run + 1}: {way} {times[way][-1]:.1f} s", flush=True)
    median = {way: statistics.median(values) for way, values in times.items()}
    print(f"local sweep: {args.prompts} prompts on a {args.seconds:g} s song, model {version}, "
          f"{args.runs} run(s), wall seconds from launch to exit (medians)")
    for way, label in (("batch", "python -m remixer batch (models once, song read once)"),
                       ("separate", f"{args.prompts} x python -m remixer (each loads, each reads)"),
                       ("loop", f"{args.prompts} x Pipeline.remix in one process (models once)")):
        print(f"  {label:<62}{median[way]:>8.1f} s")
    for way in ("separate", "loop"):
        ratio = median[way] / median["batch"]
        print(f"  {way} / batch: {ratio:.2f}x (target >= 2x: {'OK' if ratio >= 2 else 'MISSED'})")
    summed = {stage: statistics.median(s.get(stage, 0.0) for s in stages) for stage in stages[0]}
    print("  batch stages summed over its jobs (s): " + ", ".join(f"{k} {v:.1f}" for k, v in summed.items()))


def remote_throughput(args: argparse.Namespace, weights: Path, manifest: Path, version: str, root: Path) -> None:
    from fixtures.cog_server import CogServer
    from remixer.batch.cli import main as batch_main
    song = write_song(args.remote_seconds, root / "remote-song.wav")
    options = [x for p in PROMPTS[:args.remote_jobs] for x in ("-p", p)]
    for name, value in _env(manifest).items():
        if name.endswith("_THREADS"):
            os.environ[name] = value  # the server's worker inherits it
    rates: dict[int, list[float]] = {1: [], 2: []}
    with CogServer(root / "server", weights, manifest, COG_MAX_CONCURRENCY="2", REMIXER_MAX_DURATION="600",
                   REMIXER_DEFAULT_VERSION=version) as server:
        for run in range(args.runs):
            for in_flight in ((1, 2) if run % 2 == 0 else (2, 1)):
                out = Path(tempfile.mkdtemp(prefix=f"remote-{in_flight}-", dir=root))
                start = time.perf_counter()
                code = batch_main([str(song), *options, "-i", f"model_version={version}", "-i", "seed=0",
                                   "--out", str(out), "--endpoint", server.url, "--in-flight", str(in_flight), "-q"])
                seconds = time.perf_counter() - start
                if code != 0:
                    raise RuntimeError(f"the remote batch failed ({code}); see {out / 'results.jsonl'}")
                rates[in_flight].append(60 * args.remote_jobs / seconds)
                print(f"  run {run + 1}: in flight {in_flight}: {seconds:.1f} s", flush=True)
    one, two = (statistics.median(rates[n]) for n in (1, 2))
    print(f"remote: {args.remote_jobs} remixes of a {args.remote_seconds:g} s song, one Cog server with 2 slots, "
          f"{args.runs} run(s) (medians)")
    print(f"  1 in flight: {one:.2f} jobs/min; 2 in flight: {two:.2f} jobs/min; 2 / 1: {two / one:.2f}x")


def main(argv: tp.Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the swept song")
    parser.add_argument("--prompts", type=int, default=4, choices=range(2, len(PROMPTS) + 1), metavar="K")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--only", choices=("local", "remote"))
    parser.add_argument("--remote-jobs", type=int, default=6, choices=range(1, len(PROMPTS) + 1), metavar="N")
    parser.add_argument("--remote-seconds", type=float, default=10.0)
    parser.add_argument("--real-window", action="store_true", help="the chord LM with its real 30 s window")
    parser.add_argument("--htdemucs-size", action="store_true", help="a random htdemucs of the real size")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print(BANNER, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as directory:
        root = Path(directory)
        (root / "weights").mkdir()
        manifest, version = write_weights(root / "weights", real_window=args.real_window,
                                          htdemucs_size=args.htdemucs_size)
        if args.only != "remote":
            local_sweep(args, root / "weights", manifest, version, root)
        if args.only != "local":
            remote_throughput(args, root / "weights", manifest, version, root)


if __name__ == "__main__":
    main()
