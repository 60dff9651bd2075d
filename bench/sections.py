"""Cost of a window plan that follows the song's sections, against audiocraft's fixed stride.

Builds one random MusicGen Chord checkpoint in the real ``.th`` layout (``--dim``, ``--layers``,
2048-code cards, the real 30 s window, 18 s stride) and generates ``--seconds`` of music with text
chords, alternating (in a rotating order) between:

* ``stride``: :func:`remixer.sections.stride_plan`, audiocraft's windows every 18 s;
* ``sections``: :func:`remixer.sections.plan_windows` on intro / verse / chorus / outro parts
  (the issue's 0-12 / 12-40 / 40-70 / 70-90 s form, scaled to ``--seconds``).

Both sample the same number of tokens; the section plan runs more, shorter windows (one more
prompt pass each) whose new tokens sit later in the window. Reports the median CPU seconds of
this process per generation (one torch thread: what other jobs on a shared machine disturb
least) and their ratio.

Usage: ``python bench/sections.py [--runs 3] [--seconds 90] [--dim 256] [--layers 4]``.
Writes only to a temporary directory.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from devtools.tiny import musicgen as fx  # noqa: E402
from remixer.chords import TextChords  # noqa: E402
from remixer.generation import GenerationParams, Generator  # noqa: E402
from remixer.musicgen.loaders import load_chord_model  # noqa: E402
from remixer.sections import Part, plan_windows, stride_plan  # noqa: E402

FORM = ((0.0, "intro"), (12 / 90, "verse"), (40 / 90, "chorus"), (70 / 90, "outro"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        checkpoint = fx.chord_checkpoint(root / "musicgen-chord.th", dim=args.dim, layers=args.layers,
                                         heads=8, card=2048, window=30.0)
        generator = Generator(load_chord_model(checkpoint, device="cpu", text_encoder=fx.t5_dir(root / "t5"),
                                               compression_model=fx.encodec_dir(root / "encodec", card=2048)))
    sizes = dict(window=generator.window, stride=generator.extend_stride, frame_rate=generator.model.frame_rate)
    edges = [fraction * args.seconds for fraction, _ in FORM] + [args.seconds]
    parts = tuple(Part(start, end, label, label) for (_, label), start, end in zip(FORM, edges, edges[1:]))
    plans = {"stride": stride_plan(args.seconds, "pop", **sizes), "sections": plan_windows(parts, **sizes)}
    chords = TextChords("C G A:min F", bpm=120.0)
    print(f"model: dim {args.dim}, {args.layers} layers, 30 s window, 18 s stride; {args.seconds:g} s; "
          f"windows: " + ", ".join(f"{name} {len(plan)}" for name, plan in plans.items()), flush=True)
    seconds: dict[str, list[float]] = {name: [] for name in plans}
    names = list(plans)
    for run in range(args.runs):
        for name in names[run % 2:] + names[:run % 2]:
            start = time.process_time()
            generator.generate("pop", GenerationParams(duration=args.seconds, seed=run), chords=chords,
                               plan=plans[name])
            seconds[name].append(time.process_time() - start)
            print(f"  run {run} {name}: {seconds[name][-1]:.1f} s cpu", flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"median cpu s: stride {medians['stride']:.1f}, sections {medians['sections']:.1f}; "
          f"sections / stride = {medians['sections'] / medians['stride']:.3f}")


if __name__ == "__main__":
    main()
