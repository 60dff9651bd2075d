"""Speed of the beat stages: madmom analysis and WSOLA beat-sync, in seconds per minute of audio.

Synthesises a song (120 BPM, 44.1 kHz stereo) and a "generated" take drifting 119 -> 121 BPM
(32 kHz stereo) of ``--minutes`` each, then times, ``--runs`` times each, side by side:

* madmom analysis of the song: features + network with madmom's own ``RNNDownBeatProcessor``
  and with the batched ensemble ``MadmomAnalyzer`` uses (same weights and output), their ratio,
  then DBN decoding and the whole ``analyze`` call;
* ``beat_sync`` of the generated take onto the song's downbeats, and bare ``pytsmod.wsola`` on
  the same anchors (the floor: what the original Remixer ran), with their ratio;
* ``beat_sync`` as the pipeline calls it (both sides' beats, the song's harmony: bass + other),
  and, with ``--baseline REV``, the same call to ``remixer/beatsync.py`` as it was at git
  revision REV (loaded from git into a module of its own), side by side, with their ratio.

Usage: ``python bench/sync.py [--minutes 3] [--runs 3] [--baseline main] [--sync-only]``. Runs are interleaved round-robin so
machine load hits every variant alike; prints medians and paired ratios; writes nothing.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import pytsmod  # noqa: E402

from fixtures.music import synth_drifting_song, synth_song  # noqa: E402
from madmom.audio.signal import Signal  # noqa: E402
from madmom.features.downbeats import RNNDownBeatProcessor  # noqa: E402

from remixer.analysis.madmom import MADMOM_FPS, MadmomAnalyzer  # noqa: E402
from remixer.beats import beats_from_activations  # noqa: E402
from remixer.beatsync import beat_sync, default_threshold  # noqa: E402

OUTPUT_RATE = 32_000


def interleaved(fns: dict[str, tp.Callable[[], tp.Any]], runs: int) -> tuple[dict, dict, dict]:
    """Time ``fns`` round-robin (rotating the order each run, so load swings hit all alike).

    Returns each name's median seconds, last result, and per-run times (for paired ratios).
    """
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    results: dict[str, tp.Any] = {}
    for run in range(runs):
        for name in names[run % len(names):] + names[:run % len(names)]:
            start = time.perf_counter()
            results[name] = fns[name]()
            times[name].append(time.perf_counter() - start)
    return {n: statistics.median(t) for n, t in times.items()}, results, times


def paired_ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """Median over runs of the time ratio ``slow / fast`` within the same run."""
    return statistics.median(a / b for a, b in zip(times[slow], times[fast]))


def baseline_beat_sync(revision: str) -> tp.Callable[..., tp.Any]:
    """``beat_sync`` of ``remixer/beatsync.py`` at git ``revision``, in a module of its own."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:remixer/beatsync.py"],
                            capture_output=True, text=True, check=True).stdout
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("baseline", None))
    sys.modules["baseline"] = module  # dataclasses look their module up there
    exec(compile(source, f"{revision}:remixer/beatsync.py", "exec"), module.__dict__)
    return module.beat_sync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="git revision to time beat_sync against")
    parser.add_argument("--sync-only", action="store_true", help="skip the analysis timings")
    args = parser.parse_args()
    seconds = args.minutes * 60
    song = synth_song(120, 4, duration=seconds)
    generated = synth_drifting_song(119, 121, 4, duration=seconds, sample_rate=OUTPUT_RATE)
    out_length = int(seconds * OUTPUT_RATE)
    analyzer = MadmomAnalyzer()
    if not args.sync_only:
        original = RNNDownBeatProcessor()
        mono = Signal(song.audio.mean(axis=0), sample_rate=song.sample_rate)
        act = analyzer.activations(song.audio, song.sample_rate)

    analysis, results, analysis_runs = interleaved({
        "original": lambda: original(mono),
        "batched": lambda: analyzer.activations(song.audio, song.sample_rate),
        "dbn": lambda: beats_from_activations(act, MADMOM_FPS, backend="madmom"),
        "analyze": lambda: analyzer.analyze(song.audio, song.sample_rate),
    } if not args.sync_only else {"analyze": lambda: analyzer.analyze(song.audio, song.sample_rate)},
        1 if args.sync_only else args.runs)
    beats = results["analyze"]

    threshold = default_threshold(beats.bpm)
    probe = beat_sync(generated.audio, OUTPUT_RATE, generated.downbeats, beats.downbeats,
                      out_length, threshold=threshold)
    pad = max(0, -int(probe.anchors[0, 0]))
    padded = np.pad(generated.audio, ((0, 0), (pad, max(0, int(probe.anchors[0, -1]) + 1
                                                        - generated.audio.shape[1]))))
    anchors = probe.anchors + np.array([[pad], [0]])
    product = dict(threshold=threshold, generated_beats=generated.beats,
                   reference_beats=beats.beats,
                   reference_audio=(song.stems["bass"] + song.stems["other"], song.sample_rate))
    variants = {
        "beat_sync": lambda: beat_sync(generated.audio, OUTPUT_RATE, generated.downbeats,
                                       beats.downbeats, out_length, threshold=threshold),
        "wsola": lambda: pytsmod.wsola(padded, anchors),
        "product": lambda: beat_sync(generated.audio, OUTPUT_RATE, generated.downbeats,
                                     beats.downbeats, out_length, **product),
    }
    if args.baseline:
        old = baseline_beat_sync(args.baseline)
        variants["baseline"] = lambda: old(generated.audio, OUTPUT_RATE, generated.downbeats,
                                           beats.downbeats, out_length, **product)
    sync, sync_results, sync_runs = interleaved(variants, args.runs)

    minutes = args.minutes
    print(f"{minutes:g} min of audio, median of {args.runs} interleaved runs, "
          f"seconds per minute of audio")
    if not args.sync_only:
        print(f"  madmom RNNDownBeatProcessor (original)   {analysis['original'] / minutes:7.3f}")
        print(f"  MadmomAnalyzer.activations (batched)     {analysis['batched'] / minutes:7.3f}"
              f"   (original / batched {paired_ratio(analysis_runs, 'original', 'batched'):.2f}x)")
        print(f"  madmom DBN decoding                      {analysis['dbn'] / minutes:7.3f}")
        print(f"  MadmomAnalyzer.analyze total             {analysis['analyze'] / minutes:7.3f}"
              f"   (bpm {beats.bpm:.2f}, {beats.downbeats.size} downbeats)")
    print(f"  beat_sync (32 kHz stereo)                {sync['beat_sync'] / minutes:7.3f}"
          f"   ({probe.n_matched}/{generated.downbeats.size} downbeats matched)")
    print(f"  bare pytsmod.wsola, same anchors         {sync['wsola'] / minutes:7.3f}"
          f"   (beat_sync / bare {paired_ratio(sync_runs, 'beat_sync', 'wsola'):.2f}x)")
    print(f"  beat_sync as the pipeline calls it       {sync['product'] / minutes:7.3f}"
          f"   ({sync_results['product'].reason[:60]}...)")
    if args.baseline:
        print(f"  the same at {args.baseline:<28} {sync['baseline'] / minutes:7.3f}"
              f"   (this tree / {args.baseline} {paired_ratio(sync_runs, 'product', 'baseline'):.2f}x)")


if __name__ == "__main__":
    main()
