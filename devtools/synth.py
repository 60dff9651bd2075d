"""Synthesized songs whose beats, downbeats, chords and stems are known exactly.

A song is a *score* written in beats, rendered on a beat grid:

* drums: a kick on every downbeat, a snare on the other beats, a hi-hat on every eighth;
* bass: the chord root (octave 2) on every beat;
* other: a sustained pad of the bar's chord, one per bar (htdemucs' ``other`` stem);
* vocals: a sung-like line on chord tones — a voiced source with a pitch scoop into each note,
  vibrato, and the formants of a vowel — in 4-bar phrases that breathe at their ends;
* with ``vocal_harmony``, backing vocals hold the bar's whole chord while the pad plays only its
  root and fifth (a power chord), so the chord's quality (third, seventh) is carried by the
  voices alone, as in songs where the band plays open chords under sung harmonies.

:func:`demo_song` renders the score on a metronomic grid. :func:`retimed` renders the *same* score
on the grid of a tempo curve: beat ``k`` of one is beat ``k`` of the other, so it is the original
pushed through a known time warp (a stand-in for a generated take that drifts off the tempo).
The four stems are returned beside the mix and sum to it exactly, so separation, chord
recognition, beat tracking, beat-sync and mixing can all be checked against the truth.

Used by the README's example remix, the benchmarks (``bench/``) and the quality harness.
"""
from __future__ import annotations

import math
import re
import typing as tp
from dataclasses import dataclass

import numpy as np

from btc.labels import ChordSegment, label_to_chroma, normalize_label
from remixer.requests import validate_bpm

__all__ = ["SynthSong", "STEM_NAMES", "DEMO_PROGRESSION", "demo_song", "retimed", "beat_grid"]

# The stems htdemucs separates, by the same names (remixer.separation.STEM_NAMES).
STEM_NAMES: tuple[str, ...] = ("drums", "bass", "other", "vocals")
DEMO_PROGRESSION: tuple[str, ...] = ("C", "G", "A:min", "F")
FIRST_DOWNBEAT = 0.5
# Mix peak ceiling: synthesized parts sum to more than full scale on loud bars otherwise.
PEAK = 0.9
# Part gains against their unit-peak sounds: vocals sit ~2 dB under the accompaniment (RMS).
_GAINS = {"kick": 0.55, "snare": 0.3, "hat": 0.07, "bass": 0.3, "pad": 0.05, "vocal": 0.16}
# Left/right gains of the pad (the other stem) in stereo (everything else is centred, the vocals above all).
_PAD_PAN = (0.8, 1.0)
_VOWELS = {  # (frequency, bandwidth) in Hz of the first three formants
    "a": ((800, 80), (1150, 90), (2900, 120)),
    "e": ((400, 60), (1700, 100), (2600, 120)),
    "i": ((300, 50), (2200, 120), (3000, 150)),
    "o": ((450, 70), (800, 80), (2830, 120)),
    "u": ((325, 50), (700, 60), (2530, 120)),
}
_VOCAL_RANGE = (60, 76)  # MIDI, C4..E5
_BACKING_RANGE = (55, 67)  # MIDI, G3..F#4: one voice per chord tone under the lead
# Each backing voice against the lead (several sing at once: together about the lead's level).
_BACKING_GAIN = 0.45
_PHRASE_BARS = 4
_NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass(frozen=True, eq=False)
class SynthSong:
    """A rendered song and the truth about it (compared by identity: it holds arrays).

    Attributes
    ----------
    audio : np.ndarray [shape=(channels, samples), dtype=float32]
        The mix: exactly the sum of ``stems``.
    sample_rate : int
    beats : np.ndarray [shape=(n,)]
        Every beat onset in seconds (the sample ``round(t * sample_rate)`` of each drum hit).
    downbeats : np.ndarray [shape=(m,)]
        Bar starts: ``beats[::beats_per_bar]``.
    chords : list of ChordSegment
        One segment per bar (canonical Harte labels), the last ending at the song's end; an
        ``N`` segment covers the lead-in before the first downbeat.
    stems : dict of str to np.ndarray
        ``drums``, ``bass``, ``other`` (the pad) and ``vocals``, each shaped like ``audio`` (the vocals
        are all zeros for an instrumental).
    beats_per_bar : int
    progression : tuple of str
        The chord of bar ``k`` is ``progression[k % len(progression)]``.
    tempo_curve : tuple of float
        BPM values spread evenly from the first downbeat to the end (one value: constant tempo).
    seed : int
        Seed of the score (melody, rhythm) and of the drums' noise.
    vocal_harmony : bool
        Whether backing vocals carry the chords' quality (see :func:`demo_song`).
    """

    audio: np.ndarray
    sample_rate: int
    beats: np.ndarray
    downbeats: np.ndarray
    chords: list[ChordSegment]
    stems: dict[str, np.ndarray]
    beats_per_bar: int
    progression: tuple[str, ...]
    tempo_curve: tuple[float, ...]
    seed: int
    vocal_harmony: bool = False

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.audio.shape[1] / self.sample_rate

    @property
    def accompaniment(self) -> np.ndarray:
        """Everything but the vocals, ``(channels, samples)``."""
        return self.stems["drums"] + self.stems["bass"] + self.stems["other"]


def demo_song(duration: float = 30.0, bpm: float = 100.0, beats_per_bar: int = 4, *,
              progression: tp.Sequence[str] = DEMO_PROGRESSION, vocals: bool = True,
              sample_rate: int = 44_100, channels: int = 2, seed: int = 0,
              first_downbeat: float = FIRST_DOWNBEAT, vocal_harmony: bool = False) -> SynthSong:
    """Render a song at a constant tempo.

    Parameters
    ----------
    duration : float > 0
        Seconds; must hold at least one bar after ``first_downbeat``.
    bpm : float
        Tempo, 20-300.
    beats_per_bar : int >= 2
        E.g. 3 for 3/4, 4 for 4/4.
    progression : sequence of str
        One chord per bar, repeated; any spelling :func:`btc.labels.normalize_label` reads
        (``"Am"``, ``"A:min"``, ``"G7"``), ``N`` for a bar without harmony, bass or voice.
    vocals : bool
        Sing the melody; False gives an instrumental (zero vocal stem).
    sample_rate : int
        8000-192000 Hz.
    channels : {1, 2}
        Stereo places the pad slightly right; drums, bass and vocals are centred.
    seed : int >= 0
        Same seed, same song, sample for sample.
    first_downbeat : float >= 0
        Time of beat 0 in seconds (the lead-in is silent).
    vocal_harmony : bool
        Backing vocals sing every tone of each bar's chord and the pad keeps only its root and
        fifth: the harmony that tells major from minor (and sevenths) is in the vocal stem only.
        Needs ``vocals``.

    Returns
    -------
    song : SynthSong

    Raises
    ------
    ValueError
        On any out-of-range argument, naming it.

    Examples
    --------
    >>> song = demo_song(8.0, bpm=120.0)
    >>> song.downbeats[:3]
    array([0.5, 2.5, 4.5])
    >>> [c.label for c in song.chords[:3]]
    ['N', 'C', 'G']
    """
    if vocal_harmony and not vocals:
        raise ValueError("vocal_harmony needs vocals=True: the backing vocals are part of the vocal stem")
    return _render(duration, (bpm,), beats_per_bar, progression, vocals=vocals,
                   sample_rate=sample_rate, channels=channels, seed=seed,
                   first_downbeat=first_downbeat, vocal_harmony=vocal_harmony)


def retimed(song: SynthSong, tempo_curve: float | tp.Sequence[float], *,
            vocals: bool | None = None, sample_rate: int | None = None,
            first_downbeat: float | None = None, duration: float | None = None) -> SynthSong:
    """Render ``song``'s score again on the beat grid of ``tempo_curve``: a known time warp.

    Beat ``k`` of the result plays what beat ``k`` of ``song`` plays (same chords, melody, drum
    pattern), so ``(result.downbeats[k], song.downbeats[k])`` are corresponding points.

    Parameters
    ----------
    song : SynthSong
    tempo_curve : float or sequence of float
        BPM (20-300) at evenly spaced times from the first downbeat to the end, interpolated
        linearly: ``(112, 128)`` ramps like a drifting generated take.
    vocals : bool, optional
        Default: as in ``song``. ``False`` renders the accompaniment only.
    sample_rate, first_downbeat, duration : optional
        Default: those of ``song`` (e.g. ``sample_rate=32000`` for a MusicGen-rate take).

    Returns
    -------
    song : SynthSong
    """
    has_vocals = bool(np.any(song.stems["vocals"])) if vocals is None else vocals
    return _render(song.duration if duration is None else duration, _curve(tempo_curve),
                   song.beats_per_bar, song.progression, vocals=has_vocals,
                   sample_rate=song.sample_rate if sample_rate is None else sample_rate,
                   channels=song.audio.shape[0], seed=song.seed,
                   first_downbeat=(float(song.beats[0]) if first_downbeat is None
                                   else first_downbeat), vocal_harmony=song.vocal_harmony)


def beat_grid(tempo_curve: float | tp.Sequence[float], duration: float,
              first_downbeat: float = FIRST_DOWNBEAT) -> np.ndarray:
    """Beat times (seconds, all before ``duration``) under a tempo curve.

    Beat ``n`` is where the accumulated tempo ``∫ bpm(t)/60 dt`` from ``first_downbeat``
    reaches ``n``; a constant tempo gives the exact grid ``first_downbeat + n·60/bpm``.

    Parameters
    ----------
    tempo_curve : float or sequence of float
        See :func:`retimed`.
    duration : float > 0
    first_downbeat : float >= 0

    Returns
    -------
    beats : np.ndarray [shape=(n,)]
    """
    curve = _curve(tempo_curve)
    _check_times(duration, first_downbeat)
    span = duration - first_downbeat
    if len(curve) == 1:
        return first_downbeat + np.arange(_beat_count(span * curve[0] / 60.0)) * 60.0 / curve[0]
    # Phase on a 1 ms grid (trapezoids are exact for the piecewise-linear tempo), then inverted.
    t = np.linspace(0.0, span, max(2, int(span * 1000) + 1))
    bpm = np.interp(t, np.linspace(0.0, span, len(curve)), curve)
    phase = np.concatenate([[0.0], np.cumsum((bpm[1:] + bpm[:-1]) / 2 * np.diff(t) / 60.0)])
    return first_downbeat + np.interp(np.arange(_beat_count(phase[-1])), phase, t)


def _beat_count(phase: float) -> int:
    """Beats 0, 1, ... strictly before ``phase``; a phase a rounding error past an integer
    must not put a beat on the very end."""
    return math.ceil(phase - 1e-6)


def _curve(tempo_curve: float | tp.Sequence[float]) -> tuple[float, ...]:
    scalar = isinstance(tempo_curve, (int, float, np.number))
    values = (tempo_curve,) if scalar else tuple(tempo_curve)
    if not values:
        raise ValueError("tempo_curve needs at least one BPM value")
    return tuple(validate_bpm(value) for value in values)


def _check_times(duration: float, first_downbeat: float) -> None:
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) \
            or not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a finite number of seconds > 0, got {duration!r}")
    if isinstance(first_downbeat, bool) or not isinstance(first_downbeat, (int, float)) \
            or not 0 <= first_downbeat < duration:
        raise ValueError(f"first_downbeat must be in [0, duration={duration}) seconds, "
                         f"got {first_downbeat!r}")


def _check_int(name: str, value: tp.Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _root_pitch_class(label: str) -> int:
    root = re.match(r"[A-G][#b]*", label)
    assert root is not None  # normalize_label guarantees a root for anything but N / X
    text = root.group()
    return (_NOTE_NAMES[text[0]] + text.count("#") - text.count("b")) % 12


def _midi_hz(note: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(note) - 69) / 12)


@dataclass(frozen=True)
class _Note:
    start: float  # beats
    length: float  # beats
    midi: int
    vowel: str


class _Clock:
    """Beat position (fractional beat index) to seconds: the grid, extended at its last interval."""

    def __init__(self, beats: np.ndarray) -> None:
        self.beats = beats
        self.last = beats[-1] - beats[-2]

    def __call__(self, position: float) -> float:
        if position <= len(self.beats) - 1:
            return float(np.interp(position, np.arange(len(self.beats)), self.beats))
        return float(self.beats[-1] + (position - len(self.beats) + 1) * self.last)


def _render(duration: float, curve: tuple[float, ...], beats_per_bar: int,
            progression: tp.Sequence[str], *, vocals: bool, sample_rate: int, channels: int,
            seed: int, first_downbeat: float, vocal_harmony: bool = False) -> SynthSong:
    beats_per_bar = _check_int("beats_per_bar", beats_per_bar, 2, 16)
    sample_rate = _check_int("sample_rate", sample_rate, 8_000, 192_000)
    channels = _check_int("channels", channels, 1, 2)
    seed = _check_int("seed", seed, 0, 2 ** 63 - 1)
    if isinstance(progression, str) or not progression:
        raise ValueError(f"progression must be a non-empty sequence of chord labels, "
                         f"got {progression!r}")
    labels = tuple(normalize_label(label) for label in progression)
    if "X" in labels:
        raise ValueError("progression cannot hold X (unknown chord): it has no notes to play")
    beats = beat_grid(curve, duration, first_downbeat)
    if len(beats) <= beats_per_bar:
        raise ValueError(f"{duration} s from a first downbeat at {first_downbeat} s holds "
                         f"{len(beats)} beats at {curve[0]:g} BPM; a song needs more than one bar "
                         f"({beats_per_bar} beats)")
    length = int(round(duration * sample_rate))
    downbeats = beats[::beats_per_bar].copy()
    bars = len(downbeats)
    bar_labels = [labels[k % len(labels)] for k in range(bars)]
    clock = _Clock(beats)
    # Children are indexed, so the fourth (backing vocals) leaves the first three's songs unchanged.
    drum_rng, melody_rng, breath_rng, backing_rng = (np.random.default_rng(s)
                                                     for s in np.random.SeedSequence(seed).spawn(4))

    drums = _drums(beats, beats_per_bar, clock, length, sample_rate, drum_rng)
    bass, pads = np.zeros(length), np.zeros(length)
    for k, label in enumerate(bar_labels):
        if label == "N":
            continue
        pitch_classes = np.flatnonzero(label_to_chroma(label) > 0)
        root = _root_pitch_class(label)
        bar_start, bar_end = clock(k * beats_per_bar), clock((k + 1) * beats_per_bar)
        if vocal_harmony:
            # A power chord: the pad says nothing of the chord's quality, the voices do.
            pitch_classes = np.array([root, (root + 7) % 12])
        pad_notes = 48 + root + (pitch_classes - root) % 12
        _add(pads, bar_start, _pad(pad_notes, min(bar_end, duration) - bar_start, sample_rate),
             sample_rate)
        for beat in range(k * beats_per_bar, (k + 1) * beats_per_bar):
            start, end = clock(beat), clock(beat + 1)
            if start < duration:
                _add(bass, start, _bass(36 + root, 0.9 * (end - start), sample_rate), sample_rate)
    voice = np.zeros(length)
    if vocals:
        for note in _melody(bar_labels, beats_per_bar, melody_rng):
            start = clock(note.start)
            if start < duration:
                _add(voice, start, _sing(note, clock(note.start + note.length) - start, sample_rate,
                                         breath_rng), sample_rate)
        if vocal_harmony:
            for note in _backing(bar_labels, beats_per_bar):
                start = clock(note.start)
                if start < duration:
                    _add(voice, start, _BACKING_GAIN * _sing(note, clock(note.start + note.length) - start,
                                                             sample_rate, backing_rng), sample_rate)

    parts = {"drums": drums, "bass": _GAINS["bass"] * bass, "other": _GAINS["pad"] * pads,
             "vocals": _GAINS["vocal"] * voice}
    pans = {name: _PAD_PAN if name == "other" and channels == 2 else (1.0,) * channels
            for name in STEM_NAMES}
    peak = max(np.abs(sum(pans[name][c] * parts[name] for name in STEM_NAMES)).max()
               for c in range(channels))
    scale = min(1.0, PEAK / peak) if peak > 0 else 1.0
    stems = {name: np.empty((channels, length), dtype=np.float32) for name in STEM_NAMES}
    for name, stem in stems.items():
        for c, gain in enumerate(pans[name]):
            np.multiply(parts[name], gain * scale, out=stem[c], casting="same_kind")
    audio = stems["drums"] + stems["bass"] + stems["other"] + stems["vocals"]
    chords = _chord_segments(downbeats, bar_labels, duration)
    return SynthSong(audio=audio, sample_rate=sample_rate, beats=beats, downbeats=downbeats,
                     chords=chords, stems=stems, beats_per_bar=beats_per_bar, progression=labels,
                     tempo_curve=curve, seed=seed, vocal_harmony=vocal_harmony)


def _chord_segments(downbeats: np.ndarray, labels: list[str],
                    duration: float) -> list[ChordSegment]:
    ends = np.append(downbeats[1:], duration)
    segments = [ChordSegment(float(start), float(end), label)
                for start, end, label in zip(downbeats, ends, labels)]
    if downbeats[0] > 0:
        segments.insert(0, ChordSegment(0.0, float(downbeats[0]), "N"))
    return segments


def _add(out: np.ndarray, start: float, sound: np.ndarray, sample_rate: int) -> None:
    i = int(round(start * sample_rate))
    n = min(sound.size, out.size - i)
    if n > 0:
        out[i:i + n] += sound[:n]


def _drums(beats: np.ndarray, beats_per_bar: int, clock: _Clock, length: int, sample_rate: int,
           rng: np.random.Generator) -> np.ndarray:
    kick, snare, hat = _kick(sample_rate), _snare(sample_rate, rng), _hat(sample_rate, rng)
    out = np.zeros(length)
    for i, start in enumerate(beats):
        hit = _GAINS["kick"] * kick if i % beats_per_bar == 0 else _GAINS["snare"] * snare
        _add(out, start, hit, sample_rate)
        _add(out, start, _GAINS["hat"] * hat, sample_rate)
        _add(out, clock(i + 0.5), 0.7 * _GAINS["hat"] * hat, sample_rate)
    return out


def _kick(sample_rate: int) -> np.ndarray:
    """A 150 -> 50 Hz sweep starting at full amplitude (the beater's click marks the onset)."""
    t = np.arange(int(0.25 * sample_rate)) / sample_rate
    phase = 2 * np.pi * (50 * t + 100 * 0.03 * (1 - np.exp(-t / 0.03)))
    return np.cos(phase) * np.exp(-t / 0.12)


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.2 * sample_rate)) / sample_rate
    body = 0.7 * rng.standard_normal(t.size) + 0.5 * np.sin(2 * np.pi * 190 * t)
    return body / np.abs(body).max() * np.exp(-t / 0.06)


def _hat(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.05 * sample_rate)) / sample_rate
    noise = np.diff(rng.standard_normal(t.size + 1))
    return noise / np.abs(noise).max() * np.exp(-t / 0.015)


def _envelope(n: int, sample_rate: int, attack: float, release: float) -> np.ndarray:
    t = np.arange(n) / sample_rate
    return np.minimum(1.0, np.minimum(t / attack, (n / sample_rate - t) / release)).clip(0.0)


def _bass(note: int, seconds: float, sample_rate: int) -> np.ndarray:
    n = max(1, int(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f = _midi_hz(note)
    tone = sum(np.sin(2 * np.pi * k * f * t) / 2 ** (k - 1) for k in (1, 2, 3))
    return tone / 1.75 * np.exp(-t / 0.4) * _envelope(n, sample_rate, 0.005, 0.02)


def _pad(notes: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    n = max(1, int(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    tone = sum(np.sin(2 * np.pi * _midi_hz(note) * k * t) / k ** 2
               for note in notes for k in (1, 2, 3))
    return tone * (0.7 + 0.3 * np.exp(-t / 0.5)) * _envelope(n, sample_rate, 0.02, 0.05)


def _melody(bar_labels: list[str], beats_per_bar: int, rng: np.random.Generator) -> list[_Note]:
    """Notes on chord tones, 4-bar phrases resting on their last beat(s); bar 0 is the intro.

    Choices depend only on the bars before, so a longer song starts with the same melody.
    """
    notes, previous = [], 67
    for k, label in enumerate(bar_labels):
        if k == 0 or label == "N":
            continue
        tones = [m for m in range(*_VOCAL_RANGE) if label_to_chroma(label)[m % 12] > 0]
        singing = beats_per_bar - (beats_per_bar // 2 if k % _PHRASE_BARS == 0 else 0)
        position = 0.0
        while position < singing:
            length = float(rng.choice([0.5, 1.0, 1.0, 2.0]))
            length = min(length, singing - position)
            # Eighths come in pairs, so every note but the pair's second starts on a beat.
            for _ in range(2 if length == 0.5 else 1):
                weights = np.exp(-np.abs(np.array(tones) - previous) / 3.0)
                previous = int(rng.choice(tones, p=weights / weights.sum()))
                notes.append(_Note(start=k * beats_per_bar + position, length=length, midi=previous,
                                   vowel=str(rng.choice(list(_VOWELS)))))
                position += length
    return notes


def _backing(bar_labels: list[str], beats_per_bar: int) -> list[_Note]:
    """Every tone of each bar's chord (from bar 1), held for the bar on "oo", in the range
    below the lead voice."""
    return [_Note(start=k * beats_per_bar, length=beats_per_bar, midi=midi, vowel="u")
            for k, label in enumerate(bar_labels) if k > 0 and label != "N"
            for midi in range(*_BACKING_RANGE) if label_to_chroma(label)[midi % 12] > 0]


def _sing(note: _Note, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One sung note: a glottal source (harmonics falling as 1/k) on a scooped, vibrato f0,
    through the vowel's three formant resonators in cascade."""
    n = max(1, int(0.92 * seconds * sample_rate))
    t = np.arange(n) / sample_rate
    scoop = -0.8 * np.exp(-t / 0.04)  # semitones: singers slide up into a note
    vibrato = 0.35 * np.sin(2 * np.pi * 5.5 * t) * np.minimum(1.0, t / 0.25)
    f0 = _midi_hz(note.midi + scoop + vibrato)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    nominal = float(_midi_hz(note.midi))
    out = np.zeros(n)
    for k in range(1, int(min(5000.0, 0.45 * sample_rate) / nominal) + 1):
        f = k * nominal
        tract = np.prod([freq ** 2 / math.hypot(freq ** 2 - f ** 2, bw * f)
                         for freq, bw in _VOWELS[note.vowel]])
        out += tract / k * np.sin(k * phase)
    out /= np.abs(out).max()
    breath = 0.03 * rng.standard_normal(n)
    return (out + breath) * (1 + 0.1 * vibrato) * _envelope(n, sample_rate, 0.04, 0.08)
