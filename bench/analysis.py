"""Cost of separation and All-In-One analysis, in seconds per minute of audio.

Synthesises a song (120 BPM, 44.1 kHz stereo) of ``--minutes`` and times, ``--runs`` times each,
side by side:

* separation with a TINY randomly initialised HTDemucs on the CPU (real htdemucs weights cannot
  be downloaded here; the tiny model keeps the real structure at ~1/100 of its width, so this
  measures the pass's plumbing - resampling, segmenting, overlap-add - not htdemucs' own cost).
  ``--htdemucs-size`` adds a random model with HTDemucs' default hyper-parameters, i.e. the real
  model's compute (slow on a CPU);
* All-In-One analysis with 8 random folds of the real size (300,631 parameters each, same
  compute as the published weights): features from the four stems, features of a stem-less
  mix (one spectrogram instead of four), the 8-fold network, DBN + section decoding, and the
  whole ``analyze``.

Usage: ``python bench/analysis.py [--minutes 1] [--runs 3] [--htdemucs-size]``. Prints medians;
writes only to a temporary directory.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402
from demucs.htdemucs import HTDemucs  # noqa: E402

from devtools.tiny.allinone import save_random_folds  # noqa: E402
from devtools.tiny.demucs import SOURCES, tiny_htdemucs  # noqa: E402
from fixtures.music import synth_song  # noqa: E402
from remixer.analysis.allinone import AllInOneAnalyzer, beat_activations, sections_from_logits  # noqa: E402
from remixer.beats import beats_from_activations  # noqa: E402
from remixer.separation import Separator  # noqa: E402


def median_seconds(fn: tp.Callable[[], tp.Any], runs: int) -> tuple[tuple[float, float], tp.Any]:
    """Median (wall, process CPU) times of ``runs`` calls of ``fn`` and the last call's result.

    CPU time is shown beside wall time because on a shared machine wall time mostly measures the
    neighbours.
    """
    walls, cpus, result = [], [], None
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return (statistics.median(walls), statistics.median(cpus)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--htdemucs-size", action="store_true",
                        help="also time a random HTDemucs with the real model's hyper-parameters")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    song = synth_song(120, 4, duration=args.minutes * 60)
    wav, rate, minutes = song.audio, song.sample_rate, args.minutes

    separator = Separator(tiny_htdemucs())
    separator.separate(wav[:, :rate], rate)  # first call pays one-off kernel set-up
    t_sep, stems = median_seconds(lambda: separator.separate(wav, rate), args.runs)
    rows = [("separation, tiny random HTDemucs (CPU)", t_sep)]
    if args.htdemucs_size:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            full = Separator(HTDemucs(SOURCES, segment=7.8))
        t_full, _ = median_seconds(lambda: full.separate(wav, rate), args.runs)
        rows.append(("separation, htdemucs-size random HTDemucs (CPU)", t_full))

    with tempfile.TemporaryDirectory() as tmp:
        analyzer = AllInOneAnalyzer.from_checkpoints(save_random_folds(Path(tmp)))
    t_feat, features = median_seconds(lambda: analyzer.features(wav, rate, stems), args.runs)
    t_mix, _ = median_seconds(lambda: analyzer.features(wav, rate), args.runs)
    t_net, logits = median_seconds(lambda: analyzer.predict(features), args.runs)

    def decode() -> tp.Any:
        beats_from_activations(beat_activations(logits), analyzer.fps, beats_per_bar=(3, 4),
                               threshold=analyzer.threshold_downbeat, backend=analyzer.name)
        return sections_from_logits(logits, analyzer.fps, analyzer.min_hops_per_beat)

    t_dec, _ = median_seconds(decode, args.runs)
    t_all, _ = median_seconds(lambda: analyzer.analyze(wav, rate, stems), args.runs)
    rows += [("All-In-One features, 4 stems", t_feat),
             ("All-In-One features, stem-less mix", t_mix),
             ("All-In-One network, 8 real-size random folds", t_net),
             ("All-In-One DBN + sections decoding", t_dec),
             ("All-In-One analyze total (stems given)", t_all)]

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{minutes:g} min of 44.1 kHz stereo, median of {args.runs} runs, seconds per minute "
          f"of audio; torch threads {torch.get_num_threads()}, load average {load}")
    print(f"  {'':<50} {'wall':>8} {'cpu':>8}")
    for label, (wall, cpu) in rows:
        print(f"  {label:<50} {wall / minutes:8.3f} {cpu / minutes:8.3f}")
    print(f"  {'stem-less / 4-stem features':<50} {t_mix[0] / t_feat[0]:8.3f} "
          f"{t_mix[1] / t_feat[1]:8.3f}")
    print(f"  separator passes run: {separator.calls} (1 warm-up + {args.runs} timed)")


if __name__ == "__main__":
    main()
