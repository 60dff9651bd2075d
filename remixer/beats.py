"""The beat record every analyser returns, and the bar-aware decoder they share.

:class:`Beats` holds tempo, beats, downbeats and sections; :func:`beats_from_activations` turns
frame-wise beat/downbeat probabilities (madmom's RNN in `remixer.analysis.madmom`, All-In-One
in `remixer.analysis.allinone`) into one with madmom's bar-pointer DBN. Both backends import this
module and nothing of each other.

A :class:`TempoPrior` tells the decoder what is already known: the generated instrumental was
prompted at the song's tempo and plays in its bars, so its beats are decoded only at tempi
within ``PRIOR_TOLERANCE`` of the song's and in the song's bar length; a client's ``song_bpm``
gives the song's tempo (any bar length). A blind tracker reads sparse or half-time audio at half
(or double) tempo often enough to ruin a remix; inside the prior's range those octaves are not
states of the decoder at all.
"""
from __future__ import annotations

import typing as tp
from dataclasses import dataclass

import numpy as np

# Median beat probability at the decoded beats: madmom gives 0.73-0.88 on synthetic songs (2 s to
# 12 s, 76-150 BPM) and 0.01-0.09 on white/pink noise and a pure tone.
MIN_CONFIDENCE = 0.2
# The same with a TempoPrior: decoded at a known tempo, white/pink/brown noise and a pure tone
# score at most 0.087 (8 s, priors 70-180 BPM in 3/4 and 4/4), while a real game-music excerpt
# low-passed at 250 Hz (bass and kick only) scores 0.13: too sparse for the blind threshold,
# yet plainly the song's pulse.
PRIOR_MIN_CONFIDENCE = 0.1
_EPS = 1e-5
# madmom's DBN default tempo range, used without a prior.
MIN_BPM, MAX_BPM = 55.0, 215.0
# Half of the largest tempo error a prior accepts: MusicGen drifts a few percent off the prompt's
# tempo, and +-20 % keeps both octaves (x0.5, x2) and the 3:2 / 2:3 readings out of range.
PRIOR_TOLERANCE = 0.2


@dataclass(frozen=True)
class Section:
    """A labelled time span of the song (e.g. ``"chorus"``), in seconds."""

    start: float
    end: float
    label: str


@dataclass(frozen=True, eq=False)
class Beats:
    """Metrical structure of a piece of audio; all times in seconds from its start.

    Compared by identity (``eq=False``): field-wise ``==`` on arrays has no single truth value.

    Attributes
    ----------
    bpm : float or None
        Tempo in beats per minute, ``None`` when too few beats were found. The analysers report
        :func:`tempo_from_beats` (whole BPM, as All-In-One); a requested tempo may be fractional.
    beats : np.ndarray [shape=(n,)]
        Every beat time, downbeats included, increasing.
    downbeats : np.ndarray [shape=(m,)]
        The beats that start a bar (subset of ``beats``).
    beat_positions : np.ndarray [shape=(n,)], int
        Position of each beat inside its bar, counting from 1 (1 = downbeat).
    sections : tuple of Section
        Song sections, when the backend provides them (All-In-One); empty otherwise.
    backend : str
        Name of the analyser that produced this record.
    """

    bpm: float | None
    beats: np.ndarray
    downbeats: np.ndarray
    beat_positions: np.ndarray
    sections: tuple[Section, ...] = ()
    backend: str = ""

    @property
    def empty(self) -> bool:
        """True when no downbeat was found, so nothing can be synchronised to this audio."""
        return self.downbeats.size == 0

    def to_dict(self) -> dict[str, tp.Any]:
        """JSON-ready view (plain floats/ints/lists)."""
        return {
            "bpm": None if self.bpm is None else float(self.bpm),
            "beats": [float(t) for t in self.beats],
            "downbeats": [float(t) for t in self.downbeats],
            "beat_positions": [int(p) for p in self.beat_positions],
            "sections": [{"start": float(s.start), "end": float(s.end), "label": s.label}
                         for s in self.sections],
            "backend": self.backend,
        }


@dataclass(frozen=True)
class TempoPrior:
    """The tempo and bar length a piece of audio is known to have, within ``tolerance``.

    Attributes
    ----------
    bpm : float > 0
    beats_per_bar : int >= 2, or None
        None: the bar length is not known (a client's ``song_bpm``); the analyser's candidates apply.
    tolerance : float in (0, 1)
        Beats are decoded only at tempi in ``bpm * (1 - tolerance) .. bpm * (1 + tolerance)``.
    """

    bpm: float
    beats_per_bar: int | None
    tolerance: float = PRIOR_TOLERANCE

    def __post_init__(self) -> None:
        if isinstance(self.bpm, bool) or not (np.isfinite(self.bpm) and self.bpm > 0):
            raise ValueError(f"prior bpm must be a positive number, got {self.bpm!r}")
        if self.beats_per_bar is not None and (
                isinstance(self.beats_per_bar, bool) or not isinstance(self.beats_per_bar, int)
                or self.beats_per_bar < 2):
            raise ValueError(f"prior beats_per_bar must be an integer >= 2, "
                             f"got {self.beats_per_bar!r}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"prior tolerance must be in (0, 1), got {self.tolerance!r}")

    @property
    def min_bpm(self) -> float:
        return self.bpm * (1 - self.tolerance)

    @property
    def max_bpm(self) -> float:
        return self.bpm * (1 + self.tolerance)

    @classmethod
    def of(cls, beats: Beats) -> TempoPrior | None:
        """The prior an analysis gives for music played to it: its tempo and most common bar
        length; ``None`` when it found no tempo."""
        if beats.bpm is None or beats.beat_positions.size == 0:
            return None
        # A bar's length is its last position: count the positions that end a bar. The song's
        # last bar is usually cut short, so it counts only when no bar is complete.
        positions = beats.beat_positions
        ends = positions[:-1][positions[1:] == 1]
        if ends.size == 0:
            ends = positions[-1:]
        lengths, counts = np.unique(ends[ends >= 2], return_counts=True)
        if lengths.size == 0:
            return None
        return cls(bpm=float(beats.bpm), beats_per_bar=int(lengths[counts.argmax()]))


def empty_beats(backend: str) -> Beats:
    """A :class:`Beats` with no tempo and no beats, for audio without a detectable pulse."""
    nothing = np.zeros(0, dtype=np.float64)
    return Beats(bpm=None, beats=nothing, downbeats=nothing.copy(),
                 beat_positions=np.zeros(0, dtype=np.int64), backend=backend)


def tempo_from_beats(beats: np.ndarray) -> int | None:
    """The tempo All-In-One reports for beat times: the most common per-beat tempo, in whole BPM.

    Each interval between neighbouring beats gives a tempo ``60 / interval``, rounded to an
    integer; the most frequent one wins (``allin1.postprocessing.tempo.estimate_tempo_from_beats``,
    which ``allin1.analyze`` reports as ``bpm``, the number the published Remixer put in its
    description). Both backends use it, so a 90 BPM song reads ``bpm : 90`` whichever analysed it;
    a mean interval would land a hair under (89.996) and print 89. The mode also ignores a
    missed or doubled beat, which adds one odd interval.

    Parameters
    ----------
    beats : np.ndarray [shape=(n,)]
        Increasing beat times in seconds.

    Returns
    -------
    bpm : int or None
        ``None`` with fewer than 2 beats (no interval), as All-In-One.
    """
    beats = np.asarray(beats, dtype=np.float64)
    intervals = np.diff(beats)
    if intervals.size == 0 or not np.all(intervals > 0):
        return None
    counts = np.bincount(np.round(60.0 / intervals).astype(np.int64))
    # All-In-One ranks the tempi by their share with a descending argsort; equal shares are
    # ordered as numpy's argsort leaves them, reproduced here by the same call.
    return int(np.argsort(counts / counts.sum())[-1])


def beats_from_activations(activations: np.ndarray, fps: float, *,
                           beats_per_bar: tp.Sequence[int] = (3, 4), threshold: float = 0.05,
                           min_confidence: float | None = None, prior: TempoPrior | None = None,
                           backend: str) -> Beats:
    """Decode frame-wise beat/downbeat probabilities into beats, downbeats and tempo.

    Uses madmom's ``DBNDownBeatTrackingProcessor`` (a bar-pointer HMM that picks the best of the
    given bar lengths) and :func:`tempo_from_beats`.

    Parameters
    ----------
    activations : np.ndarray [shape=(T, 2)]
        Per frame, column 0: probability of *a beat* (any beat, downbeats included), column 1:
        probability of a downbeat. Values in [0, 1]. Networks with an exclusive "beat but not
        downbeat" output (madmom's RNN) must add their downbeat column back first.
    fps : float > 0
        Frame rate of ``activations``.
    beats_per_bar : sequence of int
        Candidate bar lengths in beats.
    threshold : float
        Frames before the first / after the last frame exceeding it are ignored by the DBN.
    min_confidence : float or None
        The DBN always finds *some* pulse; when the median beat probability at the decoded beats
        is below this, there is none (noise, speech, drones) and the result is empty. ``None``:
        ``MIN_CONFIDENCE``, or ``PRIOR_MIN_CONFIDENCE`` with a ``prior``.
    prior : TempoPrior or None
        When given, replaces madmom's tempo range (``MIN_BPM`` .. ``MAX_BPM``) by its own, and
        ``beats_per_bar`` by its bar length when it has one.
    backend : str
        Recorded in the result's ``backend``.

    Returns
    -------
    beats : Beats
        Empty (see :func:`empty_beats`) when nothing exceeds ``threshold``, no beat is decoded or
        the decoded beats are below ``min_confidence``.

    Raises
    ------
    ValueError
        On a wrongly shaped, non-finite or out-of-range ``activations``, a non-positive ``fps``
        or bad ``beats_per_bar``.
    """
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor

    activations = np.asarray(activations, dtype=np.float64)
    if activations.ndim != 2 or activations.shape[1] != 2:
        raise ValueError(f"activations must be shaped (frames, 2), got {activations.shape}")
    if not np.all(np.isfinite(activations)):
        raise ValueError("activations contain NaN or infinite values")
    if activations.size and (activations.min() < 0 or activations.max() > 1):
        raise ValueError(f"activations must be probabilities in [0, 1], got values in "
                         f"[{activations.min():.3g}, {activations.max():.3g}]")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    bars = ([int(b) for b in beats_per_bar] if prior is None or prior.beats_per_bar is None
            else [prior.beats_per_bar])
    if not bars or any(b < 2 for b in bars):
        raise ValueError(f"beats_per_bar must be bar lengths of at least 2 beats, "
                         f"got {beats_per_bar}")
    if activations.shape[0] < 2:
        return empty_beats(backend)

    # The DBN's observation model wants exclusive classes (beat-only, downbeat, neither) whose
    # probabilities sum to at most 1; clipping keeps its logs finite.
    downbeat = np.clip(activations[:, 1], _EPS, 1 - _EPS)
    beat_only = np.clip(activations[:, 0] - activations[:, 1], _EPS, 1 - _EPS)
    beat_only = np.minimum(beat_only, 1 - _EPS - downbeat)
    tempo = (MIN_BPM, MAX_BPM) if prior is None else (prior.min_bpm, prior.max_bpm)
    dbn = DBNDownBeatTrackingProcessor(beats_per_bar=bars, min_bpm=tempo[0], max_bpm=tempo[1],
                                       fps=fps, threshold=threshold)
    decoded = dbn(np.stack([beat_only, downbeat], axis=1))
    if decoded.shape[0] == 0:
        return empty_beats(backend)
    times = decoded[:, 0].astype(np.float64)
    frames = np.clip(np.round(times * fps).astype(np.int64), 0, activations.shape[0] - 1)
    if min_confidence is None:
        min_confidence = MIN_CONFIDENCE if prior is None else PRIOR_MIN_CONFIDENCE
    if np.median(activations[frames, 0]) < min_confidence:
        return empty_beats(backend)
    positions = decoded[:, 1].astype(np.int64)
    bpm = tempo_from_beats(times)
    return Beats(bpm=None if bpm is None else float(bpm), beats=times, downbeats=times[positions == 1],
                 beat_positions=positions, backend=backend)
