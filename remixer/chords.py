"""Chord sources and their chroma on MusicGen Chord's conditioning grid.

MusicGen Chord's conditioner reads one multi-hot chroma ``[235, 12]`` per 30 s generation window
(an STFT hop of 4096 samples at 32 kHz gives ``1 + 960000 // 4096 = 235`` frames). Two sources
fill it: chords read from audio afresh for every window (:class:`WindowChords`, built by
:func:`read_window_chords`), and a typed progression with a tempo and time signature
(:class:`TextChords`, :func:`text_chords_to_chroma`). Each source gives the chroma of any window
of the output (``source.chroma(start=..., duration=...)``), so a generator asks for window after
window without knowing which kind it holds.

Audio chords, as the published conditioner read them
    The published ``ChordExtractor`` ran BTC on each window's own 30 s of audio (the song looped,
    ``positions % wav_length``, past its end), one reading per 30 s clip, as in training. So does
    :func:`read_window_chords`, on the stems the pipeline already has: BTC's 10 s chunks and its
    context restart at every window start. One reading becomes chroma by the published rule
    (:func:`reading_chroma`): a chord from ``s`` to ``e`` seconds fills frames
    ``round(s / (30/235))`` to ``round(e / (30/235))`` (times to the millisecond, as its text
    lines had them), ``X`` is -1 in every pitch class and ``N`` 0, and the 7-frame majority vote
    pads the reading's edges with zeros. A reading shorter than the window (an output of at most
    one window, read from a shorter source) is tiled, as ``match_len_on_eval`` did
    (:func:`fit_to_window`).

Text chords on the audio grid
    The reference put text chords on ``32000 / 4096 = 7.8125`` frames per second, yet fed them into
    the same 235-frame window, so text progressions ran 0.3 % slow against the audio they
    conditioned. Here they use one absolute grid of :data:`AUDIO_FRAME_RATE`: frame ``j`` spans
    ``[j, j + 1) / rate`` seconds and shows the chord sounding at its centre ``(j + 0.5) / rate``.
    That is the grid the model was trained on (audio chords), a window holds exactly 235 frames
    per 30 s, and the 18 s extension stride is exactly 141 frames, so the chroma of window ``k``
    (``start = 18 * k``) is bit for bit frames ``141 * k ...`` of one long grid.
    :data:`TEXT_FRAME_RATE` can be passed as ``frame_rate`` to reproduce the reference's text grid.

Exact chord times
    Every text chord boundary is computed directly from its bar index, ``(bar + i / n) *
    bar_seconds``, and every frame is looked up independently from its centre time, so nothing
    accumulates: no rounding carry, no drift over long progressions, no frame count that can reach
    zero and stall.

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

import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np

from btc.features import FRAME_SECONDS
from btc.labels import ChordSegment, label_to_chroma, parse_chord_text
from btc.recognizer import ChordRecognizer, frame_segments
from remixer.requests import InputError, is_number, parse_time_signature, validate_bpm
from remixer.transform import Transform, transform_chords

__all__ = [
    "AUDIO_FRAME_RATE",
    "Chords",
    "CHROMA_FRAMES",
    "DENOISE_FRAMES",
    "TEXT_FRAME_RATE",
    "WINDOW_SECONDS",
    "ChordTimeline",
    "TextChords",
    "WindowChords",
    "WindowReading",
    "fit_to_window",
    "frame_times",
    "null_chroma",
    "read_window_chords",
    "reading_chroma",
    "text_chords_to_chroma",
]

logger = logging.getLogger(__name__)

CHROMA_FRAMES = 235
WINDOW_SECONDS = 30.0
AUDIO_FRAME_RATE = CHROMA_FRAMES / WINDOW_SECONDS
TEXT_FRAME_RATE = 32000 / 4096
# A pitch class stays on when its 7-frame mean exceeds 0.5 (the published post-filter): on in at
# least 4 of the 7 frames around it, an X frame (-1) counting against.
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
        all zero (a typed ``X`` reaches the model as the audio chords' ``X`` did in training:
        their denoising never lets -1 through).

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


def reading_chroma(segments: Sequence[ChordSegment], duration: float) -> np.ndarray:
    """The chroma the published conditioner made of one reading, for a window of ``duration`` s.

    The published ``ChordExtractor.forward`` (``sakemin/cog-musicgen-remixer``,
    ``audiocraft/modules/chord_chroma.py`` lines 130-167) wrote its chords as ``%.3f`` text lines
    and filled frames ``round(start / timebin)`` to ``round(end / timebin)`` of each, with
    ``timebin = duration / frames``, up to a window's frames; ``X`` is -1 in every pitch class,
    ``N`` 0; then per pitch class the 7-frame mean, zero padded at both edges, must exceed 0.5.

    Parameters
    ----------
    segments : sequence of ChordSegment
        One reading's chords, consecutive from 0 (seconds from the reading's start); the last
        ends where the reading ends.
    duration : float
        The window's seconds (30 for 235 frames).

    Returns
    -------
    chroma : np.ndarray [shape=(frames, 12), dtype=float32], values 0/1
        As many frames as the reading fills, at most the window's and at least one.

    Raises
    ------
    ValueError
        No segments, segments that are not consecutive from 0, an invalid duration or an
        unreadable label (:class:`btc.labels.ChordSyntaxError`).
    """
    _, window = _window_frames(duration, 0.0, AUDIO_FRAME_RATE)
    if not segments:
        raise ValueError("a chord reading needs at least one segment")
    if segments[0].start != 0 or any(a.end != b.start for a, b in zip(segments, segments[1:])) \
            or not all(is_number(s.end) and s.end >= s.start for s in segments):
        raise ValueError("a chord reading's segments must be consecutive from 0 s")
    timebin = duration / window
    ends = [min(round(round(s.end, 3) / timebin), window) for s in segments]
    rows = np.zeros((max(ends[-1], 1), 12), dtype=np.int8)
    first = 0
    for segment, end in zip(segments, ends):
        rows[first:end] = label_to_chroma(segment.label)
        first = max(first, end)
    if ends[-1] == 0:  # a reading shorter than half a frame still fills the one frame a window needs
        rows[0] = label_to_chroma(segments[0].label)
    padded = np.pad(rows, ((DENOISE_FRAMES // 2, DENOISE_FRAMES // 2), (0, 0)))
    votes = np.lib.stride_tricks.sliding_window_view(padded, DENOISE_FRAMES, axis=0).sum(axis=-1)
    return (votes > DENOISE_FRAMES / 2).astype(np.float32)


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
class WindowReading:
    """The chords read for one generation window.

    Attributes
    ----------
    start : float
        The window's start on the output timeline (s).
    source_start, source_end : float
        The seconds of the chord source that were read (past the source's end it looped).
    segments : tuple of ChordSegment
        The chords from the window's start, in output seconds (moved like the remix's timeline and
        key); the last ends where the reading ends.
    """

    start: float
    source_start: float
    source_end: float
    segments: tuple[ChordSegment, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view: what was read, and the chords on the output timeline (ms)."""
        return {"read_from": [round(self.source_start, 3), round(self.source_end, 3)],
                "chords": [{"start": round(self.start + s.start, 3), "end": round(self.start + s.end, 3),
                            "label": s.label} for s in self.segments]}


@dataclass(frozen=True)
class WindowChords:
    """Chords read from audio once per generation window (:func:`read_window_chords`)."""

    readings: tuple[WindowReading, ...]

    def __post_init__(self) -> None:
        if not self.readings:
            raise ValueError("window chords need the reading of at least one window")

    def reading(self, start: float) -> WindowReading:
        """The reading of the window that starts at ``start`` seconds."""
        for reading in self.readings:
            if math.isclose(reading.start, start, abs_tol=1e-6):
                return reading
        raise ValueError(f"no chords were read for a window at {start:g} s (read: "
                         f"{', '.join(f'{r.start:g}' for r in self.readings)} s)")

    def chroma(self, *, start: float, duration: float) -> np.ndarray:
        """Chroma of the window at ``start`` (:func:`reading_chroma`; may be shorter than the window)."""
        return reading_chroma(self.reading(start).segments, duration)


def read_window_chords(recognizer: ChordRecognizer, source: np.ndarray, sample_rate: int,
                       starts: Sequence[float], *, duration: float, window: float,
                       transform: Transform = Transform()) -> WindowChords:
    """Read the chords of every generation window from its own slice of ``source``.

    As the published model: window ``k`` at ``start`` reads ``window`` seconds of the source from
    ``start``, looping it past its end (``positions % wav_length``); an output of one window
    (``duration <= window``) reads the source's first ``window`` seconds once, without looping,
    and its chroma is tiled. BTC's reading restarts at each window's start.

    Parameters
    ----------
    recognizer : btc.ChordRecognizer
    source : np.ndarray [shape=(channels, samples)]
        The chord source (vocals + bass + other) on the song's timeline and in its key.
    sample_rate : int
    starts : sequence of float
        Window starts on the output timeline (s).
    duration : float
        The output's seconds.
    window : float
        The model's window (s).
    transform : remixer.transform.Transform
        The remix's tempo and key: window times map to ``start / ratio`` seconds of the source,
        and the chords read come back scaled by the ratio and transposed.
    """
    if np.ndim(source) != 2 or np.shape(source)[1] == 0:
        raise ValueError(f"the chord source must be shaped (channels, samples), got {np.shape(source)}")
    length = source.shape[1]
    whole = len(starts) == 1 and duration <= window
    readings = []
    for index, start in enumerate(starts):
        first = int(round(start / transform.ratio * sample_rate))
        count = int(round(window / transform.ratio * sample_rate))
        piece = source[:, :count] if whole else np.take(source, range(first, first + count), axis=1,
                                                        mode="wrap")
        labels = recognizer.read(piece, sample_rate)
        segments = transform_chords(frame_segments(labels, end=len(labels) * FRAME_SECONDS), transform)
        reading = WindowReading(start, first / sample_rate, (first + piece.shape[1]) / sample_rate,
                                tuple(segments))
        readings.append(reading)
        looped = not whole and first + count > length
        logger.info("chords of window %d/%d (from %.2f s): read %.2f-%.2f s of the %.2f s source%s: %s",
                    index + 1, len(starts), start, reading.source_start, reading.source_end,
                    length / sample_rate, " (looped past its end)" if looped else "",
                    " ".join(s.label for s in segments))
    return WindowChords(tuple(readings))


# What a chord model can be conditioned on: a typed progression or chords read from audio.
Chords = Union[TextChords, WindowChords]


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
