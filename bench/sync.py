"""Speed of the beat stages: madmom analysis and WSOLA beat-sync, in seconds per minute of audio.

Synthesises a song (120 BPM, 44.1 kHz stereo) and a "generated" take drifting 119 -> 121 BPM
(32 kHz stereo) of ``--minutes`` each, then times, ``--runs`` times each, side by side:

* madmom analysis of the song: features + network with madmom's own ``RNNDownBeatProcessor``
  and with the batched ensemble ``MadmomAnalyzer`` uses (same weights and output), their ratio,
  then DBN decoding and the whole ``analyze`` call;
* ``beat_sync`` of the generated take onto the song's downbeats, and bare ``pytsmod.wsola`` on
  the same anchors (the floor: what the original Remixer ran), with their ratio.

Usage: ``python bench/sync.py [--minutes 3] [--runs 3]``. Prints medians; writes nothing.
"""
from __future__ import annotations

import argparse
import statistics
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

from remixer.analysis import MADMOM_FPS, MadmomAnalyzer, beats_from_activations  # noqa: E402
from remixer.beatsync import beat_sync, default_threshold  # noqa: E402

OUTPUT_RATE = 32_000


def median_seconds(fn: tp.Callable[[], tp.Any], runs: int) -> tuple[float, tp.Any]:
    """Median wall time of ``runs`` calls of ``fn`` and the last call's result."""
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    seconds = args.minutes * 60
    song = synth_song(120, 4, duration=seconds)
    generated = synth_drifting_song(119, 121, 4, duration=seconds, sample_rate=OUTPUT_RATE)
    out_length = int(seconds * OUTPUT_RATE)
    analyzer = MadmomAnalyzer()

    original = RNNDownBeatProcessor()
    mono = Signal(song.audio.mean(axis=0), sample_rate=song.sample_rate)
    t_original, _ = median_seconds(lambda: original(mono), args.runs)
    t_act, act = median_seconds(
        lambda: analyzer.activations(song.audio, song.sample_rate), args.runs)
    t_dbn, beats = median_seconds(
        lambda: beats_from_activations(act, MADMOM_FPS, backend="madmom"), args.runs)
    t_analysis, _ = median_seconds(
        lambda: analyzer.analyze(song.audio, song.sample_rate), args.runs)

    threshold = default_threshold(beats.bpm)
    t_sync, result = median_seconds(
        lambda: beat_sync(generated.audio, OUTPUT_RATE, generated.downbeats, beats.downbeats,
                          out_length, threshold=threshold), args.runs)
    pad = max(0, -int(result.anchors[0, 0]))
    padded = np.pad(generated.audio, ((0, 0), (pad, max(0, int(result.anchors[0, -1]) + 1
                                                        - generated.audio.shape[1]))))
    anchors = result.anchors + np.array([[pad], [0]])
    t_wsola, _ = median_seconds(lambda: pytsmod.wsola(padded, anchors), args.runs)

    minutes = args.minutes
    print(f"{minutes:g} min of audio, median of {args.runs} runs, seconds per minute of audio")
    print(f"  madmom RNNDownBeatProcessor (original)   {t_original / minutes:7.3f}")
    print(f"  MadmomAnalyzer.activations (batched)     {t_act / minutes:7.3f}"
          f"   (original / batched {t_original / t_act:.2f}x)")
    print(f"  madmom DBN decoding                      {t_dbn / minutes:7.3f}")
    print(f"  madmom analysis total                    {t_analysis / minutes:7.3f}"
          f"   (bpm {beats.bpm:.2f}, {beats.downbeats.size} downbeats)")
    print(f"  beat_sync (32 kHz stereo)                {t_sync / minutes:7.3f}"
          f"   ({result.n_matched}/{generated.downbeats.size} downbeats matched)")
    print(f"  bare pytsmod.wsola, same anchors         {t_wsola / minutes:7.3f}")
    print(f"  beat_sync / bare wsola                   {t_sync / t_wsola:7.3f}")


if __name__ == "__main__":
    main()
