"""How long ``analysis.png`` takes for a long song (target: under one second for 3 minutes).

Draws the picture of a synthetic remix analysis (a stereo 44.1 kHz song, beats at 120 BPM,
sections, a chord per bar, a drifting instrumental and its warp map) into a temporary directory
and prints the median seconds of ``--runs`` draws after one warm-up (matplotlib's first figure
loads fonts). Run: ``python bench/plot.py [--minutes 3] [--runs 5]``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from btc.labels import ChordSegment  # noqa: E402
from remixer.beats import Beats, Section  # noqa: E402
from remixer.beatsync import SyncResult  # noqa: E402
from remixer.plot import AnalysisPlot, write_analysis_png  # noqa: E402

RATE, OUT_RATE = 44_100, 44_100


def synthetic_plot(minutes: float) -> AnalysisPlot:
    seconds = minutes * 60
    rng = np.random.default_rng(0)
    song = (0.2 * rng.standard_normal((2, int(seconds * RATE)))).astype(np.float32)
    beats = np.arange(0.5, seconds, 0.5)
    downbeats = beats[::4]
    sections = tuple(Section(start, min(start + 30.0, seconds), label)
                     for start, label in zip(np.arange(0.0, seconds, 30.0), ["intro", "verse", "chorus"] * 10))
    analysis = Beats(bpm=120.0, beats=beats, downbeats=downbeats,
                     beat_positions=np.tile([1, 2, 3, 4], beats.size)[:beats.size], sections=sections)
    chords = [ChordSegment(start, start + 2.0, label)
              for start, label in zip(downbeats, ["C", "G", "A:min", "F"] * len(downbeats))]
    generated = downbeats * 1.01 + 0.05
    anchors = np.round(np.stack([generated, downbeats]) * OUT_RATE).astype(np.int64)
    synced = SyncResult(audio=np.zeros((2, int(seconds * OUT_RATE)), np.float32), anchors=anchors,
                        n_matched=anchors.shape[1], warped=True, reason="")
    return AnalysisPlot.of_remix(song, RATE, analysis, chords, generated, synced, OUT_RATE,
                                 title="lofi hip hop, bpm : 120 (length x1.000, key +0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    plot = synthetic_plot(args.minutes)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "analysis.png"
        write_analysis_png(path, plot)
        seconds = []
        for _ in range(args.runs):
            start = time.perf_counter()
            write_analysis_png(path, plot)
            seconds.append(time.perf_counter() - start)
        size = path.stat().st_size
    print(f"analysis.png of a {args.minutes:g}-minute song: median {np.median(seconds):.3f} s "
          f"(min {min(seconds):.3f}, max {max(seconds):.3f}) over {args.runs} runs, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
