"""GPU smoke run with the REAL weights: fetch, load, remix the demo song once, report speeds.

For a machine with a CUDA GPU and network access (the first run downloads the ``remix-default``
group, several GB, into ``--weights`` / ``$REMIXER_WEIGHTS_DIR`` / ``weights/``; later runs are
offline-safe). It then loads the models once, warms them up, remixes a
:func:`remixer.synth.demo_song` (100 BPM, 4/4, C-G-Am-F, with a sung line) and prints:

* time to fetch/verify the weights, to load the models and to warm them up;
* every stage of ``Result.timings`` and the total;
* generation's real-time factor (generation seconds per second of audio; < 1 is faster than
  real time) and the whole remix's;
* the song's detected tempo against the true 100 BPM, the beat-sync report, and the GPU's peak
  memory.

Usage: ``python bench/gpu_smoke.py [--duration 30] [--version stereo-chord] [--out DIR]``.
Outputs go to ``--out`` (default: a temporary directory, deleted afterwards).
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import torch  # noqa: E402

from remixer import audio as audio_io  # noqa: E402
from remixer.generation import CHORD_VERSIONS  # noqa: E402
from remixer.pipeline import Models, Pipeline  # noqa: E402
from remixer.requests import RemixRequest, Sampling  # noqa: E402
from remixer.synth import demo_song  # noqa: E402
from remixer.weights import WeightsError, WeightsStore  # noqa: E402

DEMO_BPM = 100.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="demo song length in seconds")
    parser.add_argument("--version", choices=CHORD_VERSIONS, default="stereo-chord")
    parser.add_argument("--prompt", default="bossa nova, nylon guitar, brushed drums")
    parser.add_argument("--weights", type=Path, default=None,
                        help="weights cache (default $REMIXER_WEIGHTS_DIR, else <repo>/weights)")
    parser.add_argument("--device", default=None,
                        help="default cuda; 'cpu' runs the real models on the CPU anyway (slow)")
    parser.add_argument("--out", type=Path, default=None, help="keep the outputs in this folder")
    args = parser.parse_args()
    if not args.duration > 1.0:
        parser.error(f"--duration must be over 1 s, got {args.duration}")
    device = args.device or "cuda"
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA GPU visible to torch; this smoke run is for GPU machines "
              "(use --device cpu to run the real models on the CPU)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")

    store = WeightsStore(args.weights)
    start = time.perf_counter()
    try:
        store.group_paths("remix-default")
        store.group_paths(f"musicgen-{args.version}")
    except WeightsError as error:
        print(f"error: cannot get the real weights: {error}", file=sys.stderr)
        return 2
    fetched = time.perf_counter() - start
    start = time.perf_counter()
    pipeline = Pipeline(Models.load(store, device=device, preload=(args.version,)))
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    pipeline.warmup()
    warmed = time.perf_counter() - start

    with tempfile.TemporaryDirectory(prefix="remixer-gpu-smoke-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        song = demo_song(args.duration, DEMO_BPM)
        song_path = audio_io.export_audio(song.audio, song.sample_rate, out / "demo_song.wav",
                                          strategy=None)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        request = RemixRequest(song=song_path, prompt=args.prompt, model_version=args.version,
                               sampling=Sampling(seed=0), return_analysis=True)
        result = pipeline.remix(request, out)
        outputs = [str(path) for path in result.outputs] if args.out else ["(temporary, not kept)"]

    total = sum(result.timings.values())
    analysis = result.analysis or {}
    gpu = device.startswith("cuda")
    print(f"device {device} ({torch.cuda.get_device_name() if gpu else 'CPU'}), "
          f"model {args.version}, song {args.duration:g} s")
    print(f"weights fetch/verify {fetched:.1f} s, model load {loaded:.1f} s, "
          f"warm-up {warmed:.1f} s")
    for stage, seconds in result.timings.items():
        print(f"  {stage:<26}{seconds:>8.2f} s")
    print(f"  {'total':<26}{total:>8.2f} s")
    generation = result.timings["generation"]
    print(f"generation real-time factor {generation / args.duration:.3f} "
          f"({args.duration / generation:.2f}x real time); whole remix {total / args.duration:.3f}")
    song_bpm = analysis.get("song", {}).get("bpm")
    print(f"song tempo detected {song_bpm if song_bpm is None else round(song_bpm, 2)} BPM "
          f"(true {DEMO_BPM:g}) by {analysis.get('song', {}).get('backend')}; "
          f"beat-sync: {analysis.get('beat_sync', {}).get('reason')}")
    if gpu:
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        print(f"GPU peak memory during the remix {peak:.2f} GiB")
    print("outputs: " + ", ".join(outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
