"""Where do typed chords land in the window? Our exact bpm grid against the published text loop.

The published conditioner (``docs/reference-behaviour.md`` §5.3.3, re-stated there from the
fork's ``ChromaChordConditioner``) fills the 235 frames of a window chord by chord: each chord
of an ``n``-chord bar takes ``round(F + carry) // n`` frames, where ``F`` is a bar's length on a
``32000 / 4096 = 7.8125`` frames/s grid and ``carry`` is the previous rounding error divided by
``n``. The model reads those frames on the audio-chord grid it was trained with, ``235 / 30``
frames/s, so every chord start has a time the model sees. Ours (:mod:`remixer.chords`) looks
each frame's chord up at its centre time on that same ``235 / 30`` grid, exactly.

For each case this prints, over the first window (30 s), the largest gap in frames (and ms)
between where the published loop starts a chord and where that chord starts in time, and the
same for ours, and how far both are off at the window's end. Reimplemented from the written
specification, not copied. Usage: ``python bench/text_chord_grid.py``. Writes nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from remixer.chords import AUDIO_FRAME_RATE, CHROMA_FRAMES, ChordTimeline, frame_times  # noqa: E402

TEXT_RATE = 32000 / 4096
CASES = (("C G A:min F", 120.0, 4), ("C G A:min F", 140.0, 4), ("C,G A:min,F", 120.0, 4),
         ("C,G A:min,F", 97.0, 4), ("C,G,A:min,F G,C", 120.0, 4), ("C,E:min,A:min,F", 133.0, 4),
         ("C,G,A:min D,G,C,F", 110.0, 4), ("C,G A:min,E:min,F", 90.0, 3))


def published_starts(text: str, bpm: float, beats_per_bar: int) -> list[int]:
    """Frame index at which each chord slot starts under the published text loop (first window)."""
    frames_per_bar = 60.0 / (bpm / beats_per_bar) * TEXT_RATE
    starts, filled, carry = [], 0, 0.0
    while filled < CHROMA_FRAMES:
        for bar in text.split(" "):
            chords = bar.split(",")
            for _ in chords:
                if filled >= CHROMA_FRAMES:
                    return starts
                wanted = frames_per_bar + carry
                rounded = round(wanted)
                carry = (wanted - rounded) / len(chords)
                starts.append(filled)
                filled += rounded // len(chords)
    return starts


def exact_starts(text: str, bpm: float, beats_per_bar: int, count: int) -> np.ndarray:
    """Time-exact chord slot starts in frames of the 235/30 grid."""
    timeline = ChordTimeline.from_text(text, bpm, f"{beats_per_bar}/4")
    times = []
    bar = 0
    while len(times) < count:
        chords = timeline.bars[bar % len(timeline.bars)]
        times += [(bar + i / len(chords)) * timeline.bar_seconds for i in range(len(chords))]
        bar += 1
    return np.array(times[:count]) * AUDIO_FRAME_RATE


def ours_starts(text: str, bpm: float, beats_per_bar: int) -> np.ndarray:
    """Frames at which our chroma moves to the next chord slot (the product's own frame lookup)."""
    timeline = ChordTimeline.from_text(text, bpm, f"{beats_per_bar}/4")
    slots = timeline.index_at(frame_times(30.0))
    return np.concatenate([[0], np.flatnonzero(np.diff(slots) != 0) + 1]).astype(float)


def main() -> None:
    frame_ms = 1000 / AUDIO_FRAME_RATE
    print(f"first 30 s window, one frame = {frame_ms:.1f} ms; gaps between a chord's frame start and its true time")
    print(f"{'progression':<22} {'bpm':>5} {'meter':>5}  {'published max':>14} {'at 30 s':>8}  {'ours max':>9}")
    for text, bpm, meter in CASES:
        published = np.array(published_starts(text, bpm, meter), dtype=float)
        exact = exact_starts(text, bpm, meter, len(published))
        inside = exact < CHROMA_FRAMES
        gap = published[inside] - exact[inside]
        ours = ours_starts(text, bpm, meter)
        ours_gap = ours - exact_starts(text, bpm, meter, len(ours))
        print(f"{text:<22} {bpm:>5g} {meter:>5}  {np.abs(gap).max():>6.2f} fr {np.abs(gap).max() * frame_ms:>4.0f} ms"
              f" {gap[-1]:>+7.2f}  {np.abs(ours_gap).max():>5.2f} fr")


if __name__ == "__main__":
    main()
