"""Decode speed of our generation against audiocraft's own ``MusicGen.generate``, same model.

Builds one small random MusicGen Chord checkpoint in the real ``.th`` layout (``--dim``,
``--layers``, 2048-code cards, 4 codebooks, a ``--window`` s window) with tiny T5/EnCodec
directories, loads it once with :func:`remixer.musicgen.loaders.load_chord_model`, then times,
interleaved and in a rotating order so machine load and position effects hit all alike:

* ``ours+chords``: :meth:`remixer.generation.Generator.generate` with a text chord progression
  (the chroma is recomputed per window);
* ``ours``: the same without chords, i.e. the very conditions of the next line;
* ``audiocraft``: the stock ``MusicGen.generate`` of the same object (null chords), with the
  same sampling settings and extension stride.

for a single-window and a windowed (3 windows) duration. Speed = output codec frames (LM steps
of the output) per second, of this process's CPU time (with one thread this is what other jobs
on a shared machine disturb least) and of wall time; the ratios to audiocraft should be
>= 0.95. Also reports each path's peak Python-heap allocation (tracemalloc) and the process's
peak RSS.

Usage: ``python bench/generation.py [--runs 7] [--dim 256] [--layers 4] [--window 2] [--threads 1]``.
Writes only to a temporary directory.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from devtools.tiny import musicgen as fx  # noqa: E402
from remixer.chords import TextChords  # noqa: E402
from remixer.generation import GenerationParams, Generator  # noqa: E402
from remixer.musicgen.loaders import load_chord_model  # noqa: E402

CARD = 2048
CHORDS = TextChords("C G A:min F", bpm=120.0)


def timed(fn: tp.Callable[[], tp.Any]) -> tuple[float, float, int]:
    """CPU seconds, wall seconds and peak traced Python allocation (bytes) of one call."""
    tracemalloc.start()
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return cpu, wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 keeps a small model's timings stable on a shared CPU")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        checkpoint = fx.chord_checkpoint(root / "musicgen-chord.th", dim=args.dim, layers=args.layers,
                                         heads=8, card=CARD, window=args.window)
        model = load_chord_model(checkpoint, device="cpu", text_encoder=fx.t5_dir(root / "t5"),
                                 compression_model=fx.encodec_dir(root / "encodec", card=CARD))
    generator = Generator(model)
    print(f"model: dim {args.dim}, {args.layers} layers, 4x{CARD} codes, {args.window:g} s window, "
          f"stride {generator.extend_stride:g} s; torch threads {torch.get_num_threads()}", flush=True)
    for duration in (0.75 * args.window, 2 * args.window):
        params = GenerationParams(duration=duration, seed=0)
        model.set_generation_params(duration=duration, top_k=params.top_k, top_p=params.top_p,
                                    temperature=params.temperature, cfg_coef=params.cfg_coef,
                                    extend_stride=generator.extend_stride)
        ways = {"ours+chords": lambda: generator.generate("pop", params, chords=CHORDS),
                "ours": lambda: generator.generate("pop", params),
                "audiocraft": lambda: model.generate(["pop"])}
        for warm_up in ways.values():
            warm_up()
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        wall: dict[str, list[float]] = {name: [] for name in ways}
        peaks: dict[str, int] = {name: 0 for name in ways}
        names = list(ways)
        for run in range(args.runs):
            for name in names[run % len(names):] + names[:run % len(names)]:
                cpu_s, wall_s, peak = timed(ways[name])
                cpu[name].append(cpu_s)
                wall[name].append(wall_s)
                peaks[name] = max(peaks[name], peak)
        frames = int(duration * model.frame_rate)
        print(f"\n{duration:g} s ({frames} frames), median of {args.runs}, steps/s (ratio to audiocraft):")
        for name in ways:
            per_cpu, per_wall = (frames / statistics.median(t[name]) for t in (cpu, wall))
            ref_cpu, ref_wall = (frames / statistics.median(t["audiocraft"]) for t in (cpu, wall))
            print(f"  {name:<12} cpu {per_cpu:7.1f} ({per_cpu / ref_cpu:.3f})   wall {per_wall:7.1f} "
                  f"({per_wall / ref_wall:.3f})   peak python heap {peaks[name] / 2**20:4.1f} MiB",
                  flush=True)
    print(f"\nprocess peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
