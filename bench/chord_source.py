"""Which stems should chords be read from? Bass + other (ours until now) against vocals + bass +
other (the published conditioner's input, drums removed) and the full mix (what BTC was trained on).

Songs come from :func:`devtools.synth.demo_song` with their chords known exactly, in two kinds:

* ``lead``: a sung lead line on chord tones over a full pad (the voice repeats what the band plays);
* ``harmony``: ``vocal_harmony=True``, backing vocals hold each chord over a power-chord pad, so
  the third (major/minor) is in the vocal stem only.

Separation is the synth's own stems (an oracle: the offline htdemucs is random), so the figures
isolate the choice of input from separation errors. The judge is madmom's CNN+CRF chord
recogniser (its shipped pretrained model, 25 classes), scored with mir_eval ``majmin``
(time-weighted, the lead-in excluded); when verified real BTC weights are in the weights cache,
BTC (170 classes) is scored too and the agreement between inputs is reported (random BTC weights
measure nothing, so without them the BTC columns are skipped, and the script says so).

Usage: ``python bench/chord_source.py [--seconds 30] [--songs 4]``. Writes nothing; prints a
table of medians and means per song kind and input.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402

from btc.labels import ChordSegment  # noqa: E402
from devtools.synth import SynthSong, demo_song  # noqa: E402
from quality import MadmomChords, chord_majmin, real_btc  # noqa: E402

PROGRESSIONS = (("C", "G", "A:min", "F"), ("A:min", "F", "C", "G"), ("D:min", "G", "C", "A:min"),
                ("E:min", "C", "G", "D"), ("F", "D:min", "B:min", "G"), ("G", "E:min", "C", "D"))
TEMPI = (96.0, 120.0, 84.0, 108.0, 132.0, 100.0)
SOURCES: dict[str, tp.Callable[[SynthSong], np.ndarray]] = {
    "bass+other": lambda song: song.stems["bass"] + song.stems["other"],
    "vocals+bass+other": lambda song: song.stems["bass"] + song.stems["other"] + song.stems["vocals"],
    "full mix": lambda song: song.audio,
}
KINDS = {"lead": False, "harmony": True}


def songs(kind: str, count: int, seconds: float) -> list[SynthSong]:
    return [demo_song(seconds, bpm=TEMPI[i % len(TEMPI)], progression=PROGRESSIONS[i % len(PROGRESSIONS)],
                      seed=i, vocal_harmony=KINDS[kind])
            for i in range(count)]


def sung_part(song: SynthSong) -> list[ChordSegment]:
    """The truth from the first downbeat on (the silent lead-in says nothing about inputs)."""
    return [s for s in song.chords if s.label != "N" and s.end > s.start]


def clipped(segments: list[ChordSegment], start: float, end: float) -> list[ChordSegment]:
    """``segments`` cut to ``[start, end]``, empty pieces dropped (mir_eval refuses them)."""
    return [ChordSegment(max(s.start, start), min(s.end, end), s.label)
            for s in segments if min(s.end, end) > max(s.start, start)]


def agreement(a: list[ChordSegment], b: list[ChordSegment], end: float, step: float = 0.05) -> float:
    """Fraction of 50 ms samples where two segmentations give the same label."""
    def labels(segments: list[ChordSegment]) -> list[str]:
        starts = np.array([s.start for s in segments])
        return [segments[max(0, int(np.searchsorted(starts, t, side="right")) - 1)].label
                for t in np.arange(0.0, end, step)]
    return float(np.mean([x == y for x, y in zip(labels(a), labels(b))]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--songs", type=int, default=4, help="songs per kind")
    args = parser.parse_args()
    judges: dict[str, tp.Any] = {"madmom": MadmomChords()}
    btc = real_btc()
    if btc is None:
        print("BTC skipped: no verified real BTC weights in the weights cache (random ones measure nothing)")
    else:
        judges["btc"] = btc
    print(f"{args.songs} songs per kind, {args.seconds:g} s each, oracle stems; majmin accuracy "
          f"against the known chords (lead-in excluded)\n")
    print(f"{'kind':<8} {'judge':<7} " + " ".join(f"{name:>20}" for name in SOURCES))
    for kind in KINDS:
        batch = songs(kind, args.songs, args.seconds)
        for judge_name, judge in judges.items():
            scores: dict[str, list[float]] = {name: [] for name in SOURCES}
            estimates: dict[str, list[list[ChordSegment]]] = {name: [] for name in SOURCES}
            for song in batch:
                for name, source in SOURCES.items():
                    estimate = judge.recognize(source(song), song.sample_rate)
                    estimates[name].append(estimate)
                    truth = sung_part(song)
                    scores[name].append(chord_majmin(truth, clipped(estimate, truth[0].start, truth[-1].end)))
            cells = [f"{statistics.median(v):6.3f} (mean {statistics.mean(v):.3f})" for v in scores.values()]
            print(f"{kind:<8} {judge_name:<7} " + " ".join(f"{c:>20}" for c in cells))
            if judge_name == "btc":
                full = estimates["full mix"]
                for name in ("bass+other", "vocals+bass+other"):
                    agree = [agreement(e, f, s.duration) for e, f, s in zip(estimates[name], full, batch)]
                    print(f"{'':<16} BTC agreement of {name} with the full mix: "
                          f"median {statistics.median(agree):.3f}")


if __name__ == "__main__":
    main()
