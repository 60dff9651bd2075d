"""Chord sources and their chroma on MusicGen Chord's conditioning grid.

MusicGen Chord's conditioner reads one multi-hot chroma ``[235, 12]`` per 30 s generation window
(an STFT hop of 4096 samples at 32 kHz gives ``1 + 960000 // 4096 = 235`` frames). Two sources
fill it: chord segments recognised by BTC in the song (:class:`AudioChords`,
:func:`segments_to_chroma`), and a typed progression with a tempo and time signature
(:class:`TextChords`, :func:`text_chords_to_chroma`). Each source gives the chroma of any window
of the output (``source.chroma(start=..., duration=...)``), so a generator asks for window after
window without knowing which kind it holds.

One grid for both sources
    The reference put audio chords on ``235 / 30`` frames per second and text chords on
    ``32000 / 4096 = 7.8125``, yet fed both into the same 235-frame window, so text progressions
    ran 0.3 % slow against the audio they conditioned. Here both use one absolute grid of
    :data:`AUDIO_FRAME_RATE`: frame ``j`` spans ``[j, j + 1) / rate`` seconds and shows the chord
    sounding at its centre ``(j + 0.5) / rate``. That is the grid the model was trained on (audio
    chords), a window holds exactly 235 frames per 30 s, and the 18 s extension stride is exactly
    141 frames, so the chroma of window ``k`` (``start = 18 * k``) is bit for bit frames
    ``141 * k ...`` of one long grid. :data:`TEXT_FRAME_RATE` can be passed as ``frame_rate`` to
    reproduce the reference's text grid.

Exact chord times
    Every chord boundary is computed directly from its bar index, ``(bar + i / n) * bar_seconds``,
    and every frame is looked up independently from its centre time, so nothing accumulates: no
    rounding carry, no drift over long progressions, no frame count that can reach zero and stall.

Beat unit
    ``bpm`` counts the beats the time signature's numerator counts, so a bar lasts
    ``numerator * 60 / bpm`` seconds whatever the denominator: 4/4 at 120 bpm is 2 s, 6/8 at
    120 bpm is six eighth notes at 120 per minute, 3 s (the reference's convention). The chords of
    a bar share it evenly and the progression loops for as long as asked.

Null condition
    The unconditional (classifier-free guidance) branch is exactly zero: the conditioner must
    output a zero *embedding* for it (the reference masks it out), not project
    :func:`null_chroma` through its biased output layer. :func:`null_chroma` is the matching
    all-zero chroma for code that needs an array of the right shape.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from btc.labels import ChordSegment, label_to_chroma, parse_chord_text
from remixer.requests import InputError, is_number, parse_time_signature, validate_bpm

__all__ = [
    "AUDIO_FRAME_RATE",
    "AudioChords",
    "Chords",
    "CHROMA_FRAMES",
    "DENOISE_FRAMES",
    "TEXT_FRAME_RATE",
    "WINDOW_SECONDS",
    "ChordTimeline",
    "TextChords",
    "fit_to_window",
    "frame_times",
    "null_chroma",
    "segments_to_chroma",
    "text_chords_to_chroma",
]

CHROMA_FRAMES = 235
WINDOW_SECONDS = 30.0
AUDIO_FRAME_RATE = CHROMA_FRAMES / WINDOW_SECONDS
TEXT_FRAME_RATE = 32000 / 4096
# A pitch class stays on when it is on in at least 4 of the 7 frames around it (BTC post-filter).
DENOISE_FRAMES = 7


@dataclass(frozen=True)
class ChordTimeline:
    """A chord progression laid out in time, looping forever from ``t = 0``.

    Bar ``b`` (counting all repetitions) starts at ``b * bar_seconds``; its ``n`` chords get
    ``bar_seconds / n`` each, chord ``i`` starting at ``(b + i / n) * bar_seconds``.

    Attributes
    ----------
    bars : tuple of tuple of str
        Chord labels per bar, one loop of the progression.
    bar_seconds : float
        Length of one bar in seconds.
    """

    bars: tuple[tuple[str, ...], ...]
    bar_seconds: float

    def __post_init__(self) -> None:
        if not self.bars or not all(self.bars):
            raise ValueError(
                f"a chord timeline needs at least one bar and a chord in every bar, got {self.bars!r}"
            )
        if not is_number(self.bar_seconds) or self.bar_seconds <= 0:
            raise ValueError(f"bar length must be a positive number of seconds, got {self.bar_seconds!r}")

    @classmethod
    def from_text(cls, text: str, bpm: float, time_signature: str) -> ChordTimeline:
        """Timeline of a chord text (see :func:`btc.labels.parse_chord_text`) at a tempo.

        Parameters
        ----------
        text : str
            Bars separated by spaces, chords inside a bar by commas, e.g. ``"C G,G:7 A:min F"``.
        bpm : float
            Tempo, see :func:`remixer.requests.validate_bpm`.
        time_signature : str
            E.g. ``"4/4"``, see :func:`remixer.requests.parse_time_signature`; a bar is
            ``numerator * 60 / bpm`` seconds.

        Raises
        ------
        btc.labels.ChordSyntaxError
            If the text cannot be read (a ``ValueError`` naming the chord).
        remixer.requests.InputError
            If ``bpm`` or ``time_signature`` is invalid.
        """
        bpm = validate_bpm(bpm)
        numerator, _ = parse_time_signature(time_signature)
        bars = tuple(tuple(bar) for bar in parse_chord_text(text))
        return cls(bars, numerator * 60.0 / bpm)

    @property
    def labels(self) -> tuple[str, ...]:
        """Every chord of one loop in order; :meth:`index_at` indexes this."""
        return tuple(label for bar in self.bars for label in bar)

    @property
    def period(self) -> float:
        """Length of one loop of the progression in seconds."""
        return len(self.bars) * self.bar_seconds

    @property
    def shortest_chord(self) -> float:
        """Duration in seconds of the shortest chord (the one in the most crowded bar)."""
        return self.bar_seconds / max(len(bar) for bar in self.bars)

    def index_at(self, times: np.ndarray) -> np.ndarray:
        """Index into :attr:`labels` of the chord sounding at each time (seconds).

        A time exactly on a boundary belongs to the chord that starts there.
        """
        counts = np.array([len(bar) for bar in self.bars])
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        position = np.asarray(times, dtype=np.float64) / self.bar_seconds
        bar_number = np.floor(position)
        bar = np.mod(bar_number, len(self.bars)).astype(np.int64)
        chord = np.minimum(np.floor((position - bar_number) * counts[bar]), counts[bar] - 1)
        return first[bar] + chord.astype(np.int64)

    def segments(self, duration: float, start: float = 0.0) -> list[ChordSegment]:
        """The chords sounding in ``[start, start + duration)`` seconds, cut to that span.

        Parameters
        ----------
        duration : float
            Span length in seconds, > 0; the progression loops as often as needed.
        start : float
            Span start in seconds, >= 0.

        Returns
        -------
        segments : list of ChordSegment
            Consecutive, in time order; one per chord slot (repeated chords are not merged).
        """
        _check_span(duration, start)
        end = start + duration
        segments = []
        for bar_number in range(math.floor(start / self.bar_seconds), math.ceil(end / self.bar_seconds)):
            bar = self.bars[bar_number % len(self.bars)]
            for i, label in enumerate(bar):
                chord_start = (bar_number + i / len(bar)) * self.bar_seconds
                chord_end = (bar_number + (i + 1) / len(bar)) * self.bar_seconds
                if chord_end > start and chord_start < end:
                    segments.append(ChordSegment(max(chord_start, start), min(chord_end, end), label))
        return segments


def frame_times(duration: float, *, start: float = 0.0, frame_rate: float = AUDIO_FRAME_RATE) -> np.ndarray:
    """Centre times (seconds) of the chroma frames of the window ``[start, start + duration)``.

    The grid is absolute: the window holds frames ``round(start * frame_rate)`` onwards,
    ``round(duration * frame_rate)`` of them, so windows that start on the grid share frames
    exactly with a longer window.

    Parameters
    ----------
    duration : float
        Window length in seconds; must hold at least one frame.
    start : float
        Window start in seconds, >= 0.
    frame_rate : float
        Frames per second.

    Returns
    -------
    times : np.ndarray [shape=(frames,), dtype=float64]
    """
    first, count = _window_frames(duration, start, frame_rate)
    return _centres(first, first + count, frame_rate)


def text_chords_to_chroma(
    text: str,
    bpm: float,
    time_sig: str,
    *,
    duration: float,
    start: float = 0.0,
    frame_rate: float = AUDIO_FRAME_RATE,
) -> np.ndarray:
    """Multi-hot chroma of a looping text progression for the window ``[start, start + duration)``.

    Parameters
    ----------
    text : str
        Chord text, e.g. ``"C G A:min F"`` or ``"C G,G:7 Em,Em7 Am"``; bar 0 starts at ``t = 0``.
    bpm : float
        Tempo, 20..300.
    time_sig : str
        E.g. ``"4/4"``, ``"3/4"``, ``"6/8"``; a bar lasts ``numerator * 60 / bpm`` seconds.
    duration : float
        Window length in seconds (30 for a full MusicGen window = 235 frames).
    start : float
        Window start in seconds: window ``k`` of an extended generation passes ``k * stride``.
    frame_rate : float
        Chroma frames per second.

    Returns
    -------
    chroma : np.ndarray [shape=(round(duration * frame_rate), 12), dtype=float32]
        Each frame holds the 0/1 pitch classes of the chord at its centre; ``N`` and ``X`` are
        all zero.

    Raises
    ------
    btc.labels.ChordSyntaxError
        If the text cannot be read (a ``ValueError`` naming the chord and its bar).
    remixer.requests.InputError
        Invalid ``bpm`` or ``time_sig``, or a bar so crowded at this tempo that a chord would be
        shorter than one frame and never reach the model (what the client typed).
    ValueError
        Invalid ``duration``, ``start`` or ``frame_rate``.
    """
    timeline = ChordTimeline.from_text(text, bpm, time_sig)
    times = frame_times(duration, start=start, frame_rate=frame_rate)
    if timeline.shortest_chord * frame_rate < 1:
        crowded = max(timeline.bars, key=len)
        # The bar by its number and first chords: it may hold thousands.
        shown = " ".join(crowded[:4]) + (" ..." if len(crowded) > 4 else "")
        raise InputError(
            f"at {bpm:g} bpm in {time_sig} a bar lasts {timeline.bar_seconds:.3f} s, so the "
            f"{len(crowded)} chords of bar {timeline.bars.index(crowded) + 1} ({shown!r}) get "
            f"{timeline.shortest_chord:.2g} s each, less than one chroma frame ({1 / frame_rate:.3f} s) "
            f"and some would never reach the model; use fewer chords per bar or a lower bpm"
        )
    table = np.stack([_multi_hot(label) for label in timeline.labels])
    return table[timeline.index_at(times)]


def segments_to_chroma(
    segments: Sequence[ChordSegment],
    *,
    duration: float,
    start: float = 0.0,
    frame_rate: float = AUDIO_FRAME_RATE,
    denoise: bool = True,
    loop: float | None = None,
) -> np.ndarray:
    """Multi-hot chroma of recognised chord segments for the window ``[start, start + duration)``.

    A frame takes the pitch classes of every segment whose ``[start, end)`` holds the frame centre;
    frames no segment covers, ``N`` and ``X`` are all zero (the reference's ``X = -1`` was switched
    off by its denoising anyway). Denoising is the reference BTC post-filter: per pitch class, a
    7-frame centred moving average thresholded at 0.5, i.e. on in at least 4 of the 7 frames.
    It reads the real neighbours across window edges (zeros only before ``t = 0`` and after the
    last segment), so a window is exactly the matching slice of a longer call.

    With ``loop``, the segments describe a source of that many seconds that repeats end to end
    from ``t = 0`` (the published model loops a chord source shorter than its output,
    ``positions % wav_length``): time ``t`` shows the chord at ``t mod loop``, and denoising reads
    across each seam into the next repetition.

    Parameters
    ----------
    segments : sequence of ChordSegment
        Chords of the whole song with times in seconds, e.g. from ``btc.ChordRecognizer``.
    duration : float
        Window length in seconds (30 for a full MusicGen window = 235 frames).
    start : float
        Window start in seconds.
    frame_rate : float
        Chroma frames per second.
    denoise : bool
        Apply the 7-frame majority filter.
    loop : float, optional
        Length in seconds of the source the segments describe, to repeat it for as long as the
        window asks; None: nothing after the last segment.

    Returns
    -------
    chroma : np.ndarray [shape=(round(duration * frame_rate), 12), dtype=float32], values 0/1

    Raises
    ------
    ValueError
        Invalid window or ``loop``, a segment with non-finite or reversed times (named by index),
        or an unreadable label (:class:`btc.labels.ChordSyntaxError`).
    """
    first, count = _window_frames(duration, start, frame_rate)
    if loop is not None and (not is_number(loop) or loop <= 0):
        raise ValueError(f"loop must be a positive number of seconds, got {loop!r}")
    pad = DENOISE_FRAMES // 2 if denoise else 0
    times = _centres(first - pad, first + count + pad, frame_rate)
    active = np.zeros((len(times), 12), dtype=bool)
    pitches: dict[str, np.ndarray] = {}
    for index, segment in enumerate(segments):
        if not (is_number(segment.start) and is_number(segment.end)) or segment.end < segment.start:
            raise ValueError(
                f"chord segment {index} ({segment.label!r}) has invalid times "
                f"{segment.start!r}..{segment.end!r} s: need finite start <= end"
            )
        if segment.label not in pitches:
            pitches[segment.label] = _multi_hot(segment.label) > 0
    for offset in _repetitions(loop, times[0], times[-1]):
        for segment in segments:
            # A segment reaching past the loop's end would overlap the next repetition.
            end = segment.end if loop is None else min(segment.end, loop)
            low, high = np.searchsorted(times, (segment.start + offset, end + offset), side="left")
            active[low:high] |= pitches[segment.label]
    if denoise:
        votes = np.lib.stride_tricks.sliding_window_view(active, DENOISE_FRAMES, axis=0).sum(axis=-1)
        active = votes > DENOISE_FRAMES // 2
    return active.astype(np.float32)


def _repetitions(loop: float | None, first: float, last: float) -> list[float]:
    """Start times of the repetitions of a ``loop``-second source that reach ``[first, last]``."""
    if loop is None:
        return [0.0]
    return [k * loop for k in range(max(0, math.floor(first / loop)), math.floor(last / loop) + 1)]


def fit_to_window(chroma: np.ndarray, n_frames: int = CHROMA_FRAMES) -> np.ndarray:
    """Truncate or loop a chroma to the conditioner's window length.

    Longer input keeps its first ``n_frames``; shorter input is tiled (repeated from its first
    frame) and cut, as the reference's ``match_len_on_eval`` did, so a short chord source loops
    its progression over the window.

    Parameters
    ----------
    chroma : np.ndarray [shape=(frames, 12)]
        At least one frame.
    n_frames : int
        Window length in frames.

    Returns
    -------
    chroma : np.ndarray [shape=(n_frames, 12)], a new array of the input's dtype
    """
    chroma = np.asarray(chroma)
    if chroma.ndim != 2 or chroma.shape[1] != 12 or chroma.shape[0] == 0:
        raise ValueError(f"chroma must have shape (frames >= 1, 12), got {chroma.shape}")
    _check_frame_count(n_frames)
    repeats = -(-n_frames // chroma.shape[0])
    return np.tile(chroma, (repeats, 1))[:n_frames].copy()


def null_chroma(n_frames: int = CHROMA_FRAMES) -> np.ndarray:
    """All-zero chroma ``[n_frames, 12]`` (float32): no chord anywhere.

    For the unconditional branch the conditioner's *output* is zero as well (masked, not
    ``output_proj(null_chroma())``, which would be its bias), as in the reference.
    """
    _check_frame_count(n_frames)
    return np.zeros((n_frames, 12), dtype=np.float32)


@dataclass(frozen=True)
class TextChords:
    """A typed progression (``"C G A:min F"``; bars by spaces, chords of a bar by commas)."""

    text: str
    bpm: float
    time_sig: str = "4/4"

    def chroma(self, *, start: float, duration: float) -> np.ndarray:
        """Chroma of ``[start, start + duration)``; bar 0 starts at output time 0."""
        return text_chords_to_chroma(self.text, self.bpm, self.time_sig, duration=duration, start=start)


@dataclass(frozen=True)
class AudioChords:
    """Chord segments recognised in an audio source, times on the output's timeline.

    The source repeats end to end for as long as the output asks, as the published model loops
    its chord source (``positions % wav_length``): a 10 s clip conditions all of a 45 s output.

    Attributes
    ----------
    segments : sequence of ChordSegment
        The source's chords from its start (``btc.ChordRecognizer.recognize`` covers it whole).
    length : float, optional
        The source's seconds; default: the end of the last segment.
    """

    segments: Sequence[ChordSegment]
    length: Optional[float] = None

    def __post_init__(self) -> None:
        if not self.segments:
            raise ValueError("audio chords need at least one chord segment (N for no chord)")
        length = self.loop_length
        if not is_number(length) or length <= 0:
            raise ValueError(f"the chord source must last > 0 seconds, got {length!r}")

    @property
    def loop_length(self) -> float:
        """Seconds after which the chord source repeats."""
        return float(max(s.end for s in self.segments) if self.length is None else self.length)

    def chroma(self, *, start: float, duration: float) -> np.ndarray:
        """Chroma of ``[start, start + duration)`` of the looped source (denoised like the reference)."""
        return segments_to_chroma(self.segments, duration=duration, start=start, loop=self.loop_length)


# What a chord model can be conditioned on: a typed progression or chords read from audio.
Chords = Union[TextChords, AudioChords]


def _multi_hot(label: str) -> np.ndarray:
    """0/1 pitch classes of a label; ``X`` (all -1 in BTC's convention) becomes no chord."""
    return np.maximum(label_to_chroma(label), 0.0)


def _check_frame_count(n_frames: int) -> None:
    if isinstance(n_frames, (bool, np.bool_)) or not isinstance(n_frames, numbers.Integral) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")


def _check_span(duration: float, start: float) -> None:
    if not is_number(duration) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    if not is_number(start) or start < 0:
        raise ValueError(f"start must be a number of seconds >= 0, got {start!r}")


def _window_frames(duration: float, start: float, frame_rate: float) -> tuple[int, int]:
    """First frame index and frame count of a window on the absolute grid."""
    _check_span(duration, start)
    if not is_number(frame_rate) or frame_rate <= 0:
        raise ValueError(f"frame_rate must be a positive number of frames per second, got {frame_rate!r}")
    count = math.floor(duration * frame_rate + 0.5)
    if count < 1:
        raise ValueError(
            f"duration {duration!r} s is shorter than one chroma frame ({1 / frame_rate:.4f} s)"
        )
    return math.floor(start * frame_rate + 0.5), count


def _centres(first: int, stop: int, frame_rate: float) -> np.ndarray:
    # One formula for every caller, so the same frame index always gets the same time, bit for bit.
    return (np.arange(first, stop, dtype=np.float64) + 0.5) / frame_rate
