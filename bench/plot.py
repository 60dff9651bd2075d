"""How long ``analysis.png`` and ``analysis.html`` take for a long song (target for the picture:
under one second for 3 minutes).

Draws the picture of a synthetic remix analysis (a stereo 44.1 kHz song, beats at 120 BPM,
sections, a chord per bar, a drifting instrumental and its warp map) into a temporary directory
and prints the median seconds of ``--runs`` draws after one warm-up (matplotlib's first figure
loads fonts), as wall time and as the process's CPU time (what a busy shared machine does not
distort). Then the same for the page, with its four players' previews encoded from a
synthesized song (noise would be LAME's worst case, not a song's). Run:
``python bench/plot.py [--minutes 3] [--runs 5] [--no-page]``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from btc.labels import ChordSegment  # noqa: E402
from remixer.beats import Beats, Section  # noqa: E402
from remixer.beatsync import SyncResult  # noqa: E402
from devtools.synth import demo_song  # noqa: E402
from remixer.page import Track, write_analysis_page  # noqa: E402
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
                                 title="lofi hip hop, bpm : 120", song_bpm=120.0)


def _timed(write: tp.Callable[[Path], Path], path: Path, runs: int) -> tuple[list[float], list[float], int]:
    """Wall and CPU seconds of ``runs`` writes after a warm-up, and the file's size."""
    write(path)
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        write(path)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu, path.stat().st_size


def _report(name: str, minutes: float, runs: int, wall: list[float], cpu: list[float], size: int) -> None:
    print(f"{name} of a {minutes:g}-minute song: median {np.median(wall):.3f} s wall (min {min(wall):.3f}), "
          f"{np.median(cpu):.3f} s CPU over {runs} runs, {size / 1024:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-page", action="store_true", help="time the picture only")
    args = parser.parse_args()
    plot = synthetic_plot(args.minutes)
    with tempfile.TemporaryDirectory() as directory:
        _report("analysis.png", args.minutes, args.runs,
                *_timed(lambda path: write_analysis_png(path, plot), Path(directory) / "analysis.png", args.runs))
        if args.no_page:
            return
        song = demo_song(args.minutes * 60, 120.0, sample_rate=RATE, seed=0).audio
        tracks = [Track(name, song, RATE) for name in ("song", "remix", "after", "before")]
        _report("analysis.html (4 players)", args.minutes, args.runs,
                *_timed(lambda path: write_analysis_page(path, plot, tracks), Path(directory) / "analysis.html",
                        args.runs))


if __name__ == "__main__":
    main()
