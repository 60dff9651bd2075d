"""A remix at another tempo or key: stretch and pitch-shift the song's parts, move its timeline.

A :class:`Transform` is a length ratio (``song_bpm / target_bpm``: 100 -> 120 BPM makes the song
0.833 times as long) and a key shift in semitones. Everything the remix keeps from the song goes
through the same transform before generation, so the generated instrumental, its chords and its
beat-sync targets all live on the *output* timeline:

* audio (the vocals, and the stems when they are returned): :func:`transform_audio`, Rubber Band
  through ``pedalboard`` (pitch kept while stretching, formants kept while shifting); the output
  length is exactly ``round(samples * ratio)``;
* beats, downbeats and sections: :func:`scale_beats` (times times the ratio, bpm divided by it);
* chords: :func:`transform_chords` (times scaled, labels transposed by :func:`transpose_label`).

Rubber Band was chosen over pytsmod's WSOLA, phase vocoder and HPTSM and librosa's phase vocoder
by ``bench/stretch.py`` (transient smear, pitch stability, speed; figures in ``bench/README.md``).
"""
from __future__ import annotations

import typing as tp
from dataclasses import dataclass, replace

import numpy as np
import pedalboard

from btc.labels import ROOTS, ChordSegment, label_to_chroma, normalize_label
from remixer.audio import check_positive_int, fit_length
from remixer.beats import Beats, Section
from remixer.requests import MAX_TEMPO_FACTOR, InputError, check_tempo_factor
from remixer.separation import STEM_NAMES, Stems

__all__ = ["Transform", "MAX_TEMPO_FACTOR", "transform_audio", "transform_stems", "scale_beats",
           "transpose_label", "transform_chords"]

@dataclass(frozen=True)
class Transform:
    """How a remix moves the song: ``ratio`` (output length / song length), ``semitones``, and
    ``bpm``, the target tempo (None: the song's).

    Build it with :meth:`for_song`, which checks the target tempo against the song's.
    """

    ratio: float = 1.0
    semitones: int = 0
    bpm: float | None = None

    @classmethod
    def for_song(cls, song_bpm: float | None, target_bpm: float | None, semitones: int = 0) -> Transform:
        """The transform that takes a song at ``song_bpm`` to ``target_bpm`` (None: same tempo).

        Raises
        ------
        remixer.requests.InputError
            When a target is given but the song has no detected tempo, or the target is more
            than :data:`MAX_TEMPO_FACTOR` times faster or slower than the song.
        """
        if target_bpm is None:
            return cls(1.0, semitones, None)
        if song_bpm is None:
            raise InputError(f"target_bpm {target_bpm:g}: no tempo was detected in the song, so it "
                             f"cannot be brought to another one; leave target_bpm unset")
        check_tempo_factor(song_bpm, target_bpm)
        return cls(song_bpm / target_bpm, semitones, target_bpm)

    @property
    def identity(self) -> bool:
        """True when nothing moves (the remix then skips every transform)."""
        return self.ratio == 1.0 and self.semitones == 0

    def length(self, samples: int) -> int:
        """Samples of ``samples`` after the stretch."""
        return int(round(samples * self.ratio))


def transform_audio(wav: np.ndarray, sample_rate: int, transform: Transform) -> np.ndarray:
    """Stretch ``wav`` by ``transform.ratio`` keeping its pitch, and shift its pitch keeping its
    formants, in one Rubber Band pass.

    Parameters
    ----------
    wav : np.ndarray [shape=(channels, samples)]
    sample_rate : int > 0
    transform : Transform

    Returns
    -------
    wav : np.ndarray [shape=(channels, transform.length(samples)), dtype=float32]
        Exactly that long (Rubber Band may be a sample off; the end is trimmed or padded).
    """
    wav = np.asarray(wav)
    if wav.ndim != 2 or wav.shape[1] == 0:
        raise ValueError(f"audio to transform must be shaped (channels, samples), got {wav.shape}")
    check_positive_int(sample_rate, "sample_rate")
    if transform.identity:
        return wav.astype(np.float32, copy=False)
    # pedalboard's stretch_factor is a speed: 2.0 halves the length.
    out = pedalboard.time_stretch(np.ascontiguousarray(wav, dtype=np.float32), float(sample_rate),
                                  stretch_factor=1.0 / transform.ratio,
                                  pitch_shift_in_semitones=float(transform.semitones),
                                  high_quality=True, preserve_formants=True)
    return fit_length(out, transform.length(wav.shape[1]))


def transform_stems(stems: Stems, transform: Transform) -> Stems:
    """All four stems through :func:`transform_audio` (what ``return_stems`` hands back)."""
    return Stems(**{name: transform_audio(getattr(stems, name), stems.sample_rate, transform)
                    for name in STEM_NAMES}, sample_rate=stems.sample_rate)


def scale_beats(beats: Beats, transform: Transform) -> Beats:
    """``beats`` on the stretched timeline: every time times the ratio, the bpm the target's
    (exactly: ``song_bpm / ratio`` may land a hair under it, and prompts print whole BPM)."""
    ratio = transform.ratio
    bpm = beats.bpm if transform.bpm is None else transform.bpm
    return replace(beats, bpm=bpm,
                   beats=beats.beats * ratio, downbeats=beats.downbeats * ratio,
                   sections=tuple(Section(s.start * ratio, s.end * ratio, s.label) for s in beats.sections))


def transpose_label(label: str, semitones: int) -> str:
    """``label`` moved by ``semitones``: the root moves (spelled as BTC's vocabularies spell it),
    the quality and the bass interval (relative to the root in Harte labels) stay.

    ``transpose_label("A:min7/b7", 2) == "B:min7/b7"``; ``N`` and ``X`` are unchanged; any spelling
    :func:`btc.labels.normalize_label` reads is accepted (``"Bbm"`` -> ``"C:min"`` for +2).
    """
    canonical = normalize_label(label)
    if canonical in ("N", "X"):
        return canonical
    root_end = len(canonical) if not set(":/") & set(canonical) else min(
        i for i, c in enumerate(canonical) if c in ":/")
    root = canonical[:root_end]
    # The "1" quality is the root alone, so its chroma's one bit is the root's pitch class.
    pitch_class = int(np.argmax(label_to_chroma(f"{root}:1")))
    return ROOTS[(pitch_class + semitones) % 12] + canonical[root_end:]


def transform_chords(segments: tp.Sequence[ChordSegment], transform: Transform) -> list[ChordSegment]:
    """Chord segments on the output timeline, transposed by ``transform.semitones``."""
    return [ChordSegment(s.start * transform.ratio, s.end * transform.ratio,
                         transpose_label(s.label, transform.semitones)) for s in segments]
