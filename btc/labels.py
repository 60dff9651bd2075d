"""Chord labels: the BTC vocabularies, Harte labels ⇄ 12-d chroma, and the text-chord parser.

Labels follow Harte et al. (ISMIR 2005), ``ROOT[:QUALITY][/BASS]``, with the shorthand table of
the BTC / MusicGen-Chord code (``utils/chords.py``), so chroma vectors match what the chord
conditioner was trained on. Two vocabularies index the BTC outputs:

* ``VOCAB_25``: 12 major + 12 minor triads + ``N`` (index ``2·root + is_minor``, 24 = ``N``);
* ``VOCAB_170``: 12 roots × 14 qualities + ``X`` + ``N`` (index ``14·root + quality``).

Users type chords in lead-sheet style as well (``Am``, ``F#m7``, ``Bbmaj7``, ``Dm7b5``, ``G/B``);
:func:`normalize_label` turns both spellings into one canonical Harte label. Lowercase roots are
rejected: some notations write minor chords in lowercase (``a`` = A minor), others do not, and
the reference silently read ``c`` as G, so guessing would produce wrong chords without a trace.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "ChordSegment",
    "ChordSyntaxError",
    "VOCAB_25",
    "VOCAB_170",
    "QUALITIES_170",
    "ROOTS",
    "label_to_chroma",
    "chroma_to_label",
    "normalize_label",
    "parse_chord_text",
]

ROOTS: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
QUALITIES_170: tuple[str, ...] = (
    "min", "maj", "dim", "aug", "min6", "maj6", "min7", "minmaj7",
    "maj7", "7", "dim7", "hdim7", "sus2", "sus4",
)
VOCAB_25: tuple[str, ...] = tuple(
    root + suffix for root in ROOTS for suffix in ("", ":min")
) + ("N",)
VOCAB_170: tuple[str, ...] = tuple(
    root if quality == "maj" else f"{root}:{quality}" for root in ROOTS for quality in QUALITIES_170
) + ("X", "N")

# Semitones of the scale degrees 1..13 of a major scale (degree 9 = 2 an octave up, ...).
_DEGREE_SEMITONES = (0, 2, 4, 5, 7, 9, 11, 12, 14, 16, 17, 19, 21)
_NOTE_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Harte shorthands as interval lists, exactly the table of the BTC code ('6' and '4' are its
# custom additions: root + sixth, root + fourth).
_SHORTHANDS: dict[str, tuple[str, ...]] = {
    "maj": ("1", "3", "5"), "min": ("1", "b3", "5"), "dim": ("1", "b3", "b5"),
    "aug": ("1", "3", "#5"), "maj7": ("1", "3", "5", "7"), "min7": ("1", "b3", "5", "b7"),
    "7": ("1", "3", "5", "b7"), "6": ("1", "6"), "5": ("1", "5"), "4": ("1", "4"), "1": ("1",),
    "dim7": ("1", "b3", "b5", "bb7"), "hdim7": ("1", "b3", "b5", "b7"),
    "minmaj7": ("1", "b3", "5", "7"), "maj6": ("1", "3", "5", "6"), "min6": ("1", "b3", "5", "6"),
    "9": ("1", "3", "5", "b7", "9"), "maj9": ("1", "3", "5", "7", "9"),
    "min9": ("1", "b3", "5", "b7", "9"), "sus2": ("1", "2", "5"), "sus4": ("1", "4", "5"),
    "11": ("1", "3", "5", "b7", "9", "11"), "min11": ("1", "b3", "5", "b7", "9", "11"),
    "13": ("1", "3", "5", "b7", "13"), "maj13": ("1", "3", "5", "7", "13"),
    "min13": ("1", "b3", "5", "b7", "13"),
}
# Lead-sheet suffixes (written straight after the root, no colon) -> Harte quality.
_LEAD_SHEET: dict[str, str] = {
    "": "maj", "maj": "maj", "M": "maj",
    "m": "min", "min": "min", "-": "min",
    "dim": "dim", "o": "dim", "°": "dim",
    "aug": "aug", "+": "aug",
    "7": "7", "dom7": "7",
    "maj7": "maj7", "M7": "maj7", "Δ": "maj7", "Δ7": "maj7",
    "m7": "min7", "min7": "min7", "-7": "min7",
    "dim7": "dim7", "o7": "dim7", "°7": "dim7",
    "m7b5": "hdim7", "min7b5": "hdim7", "-7b5": "hdim7", "ø": "hdim7", "ø7": "hdim7",
    "hdim": "hdim7", "hdim7": "hdim7",
    "mmaj7": "minmaj7", "mM7": "minmaj7", "minmaj7": "minmaj7", "m(maj7)": "minmaj7",
    "6": "maj6", "maj6": "maj6", "M6": "maj6", "m6": "min6", "min6": "min6",
    "sus2": "sus2", "sus4": "sus4", "sus": "sus4",
    "9": "9", "maj9": "maj9", "M9": "maj9", "m9": "min9", "min9": "min9",
    "11": "11", "m11": "min11", "min11": "min11",
    "13": "13", "maj13": "maj13", "M13": "maj13", "m13": "min13", "min13": "min13",
    "5": "5", "add9": "maj(9)", "madd9": "min(9)",
}
_NO_CHORD_SPELLINGS = frozenset({"N", "NC", "N.C."})
# A note used as a bass ("G/B") is stored as the interval above the root, the Harte convention.
_SEMITONE_INTERVALS = ("1", "b2", "2", "b3", "3", "4", "b5", "5", "b6", "6", "b7", "7")

_ROOT_RE = re.compile(r"([A-G])([#b]*)")
_INTERVAL_RE = re.compile(r"([#b]*)(\d+)")
_NOTE_RE = re.compile(r"[A-G][#b]*")
# Commas separate chords, except inside a Harte interval list such as "C:(1,b3,5)".
_CHORD_SEPARATOR_RE = re.compile(r",(?![^(]*\))")

SYNTAX_HELP = (
    'chords are ROOT[QUALITY][/BASS] with an uppercase root A-G and optional #/b '
    '(C, Am, F#m7, Bbmaj7, Dm7b5, Csus4, G/B) or Harte labels (A:min, C:maj7, C:(1,b3,5), C/b7), '
    'N for no chord; chord text separates bars by spaces and chords inside a bar by commas, '
    'e.g. "C G,G:7 E:min,E:min7 A:min"'
)


@dataclass(frozen=True)
class ChordSegment:
    """One recognised chord: ``label`` (Harte) sounding from ``start`` to ``end`` seconds."""

    start: float
    end: float
    label: str


class ChordSyntaxError(ValueError):
    """A chord label or chord text that cannot be read; names the token and where it is."""

    def __init__(self, message: str, token: str, position: int | None = None) -> None:
        super().__init__(message)
        self.token = token
        self.position = position


@dataclass(frozen=True)
class _Chord:
    root: str  # spelled as written, e.g. "Bb"
    quality: str  # Harte quality, e.g. "min7" or "maj(9)" or "(1,b3,5)"
    bass: str  # interval, "" when none

    @property
    def label(self) -> str:
        text = self.root if self.quality == "maj" else f"{self.root}:{self.quality}"
        return f"{text}/{self.bass}" if self.bass else text


def _error(token: str, problem: str) -> ChordSyntaxError:
    return ChordSyntaxError(f"bad chord {token!r}: {problem}; {SYNTAX_HELP}", token)


def _root_semitone(root: str) -> int:
    letter, accidentals = _ROOT_RE.fullmatch(root).groups()
    return (_NOTE_SEMITONES[letter] + accidentals.count("#") - accidentals.count("b")) % 12


def _interval_semitone(interval: str, token: str) -> int:
    match = _INTERVAL_RE.fullmatch(interval)
    if match is None or not 1 <= int(match.group(2)) <= len(_DEGREE_SEMITONES):
        raise _error(token, f"{interval!r} is not an interval (1..13 with optional b/#, e.g. b7)")
    accidentals, degree = match.groups()
    return (_DEGREE_SEMITONES[int(degree) - 1] + accidentals.count("#") - accidentals.count("b")) % 12


def _quality_intervals(quality: str, token: str) -> np.ndarray:
    """Interval bits above the root of a Harte quality: a shorthand, ``(list)`` or ``short(list)``."""
    bits = np.zeros(12, dtype=np.float32)
    head, paren, rest = quality.partition("(")
    if head:
        if head not in _SHORTHANDS:
            raise _error(token, f"unknown quality {head!r} (known: {', '.join(_SHORTHANDS)})")
        for interval in _SHORTHANDS[head]:
            bits[_interval_semitone(interval, token)] = 1.0
    if paren:
        if not rest.endswith(")") or not rest[:-1].strip():
            raise _error(token, f"interval list {quality[len(head):]!r} is not like (1,b3,5)")
        for item in rest[:-1].split(","):
            item = item.strip()
            removed = item.startswith("*")
            bits[_interval_semitone(item[1:] if removed else item, token)] = 0.0 if removed else 1.0
    return bits


def _parse(token: str) -> _Chord | None:
    """Parse either spelling into a :class:`_Chord`; ``None`` means no chord (``N``)."""
    text = token.strip().replace("♯", "#").replace("♭", "b")
    if not text:
        raise _error(token, "empty chord")
    if text in _NO_CHORD_SPELLINGS:
        return None
    if text == "X":
        return _Chord("X", "", "")
    if text[0] in "abcdefg":
        raise _error(
            token, f"lowercase root {text[0]!r} is ambiguous (minor in some notations); "
            f"write {text[0].upper() + text[1:]!r} or {text[0].upper() + 'm' + text[1:]!r}"
        )
    root_match = _ROOT_RE.match(text)
    if root_match is None:
        raise _error(token, "a chord starts with a root note A-G")
    root = root_match.group(0)
    body, slash, bass = text[root_match.end():].partition("/")
    if slash and not bass:
        raise _error(token, "nothing after '/'")
    if body.startswith(":"):
        quality = body[1:].replace(" ", "")
        if not quality:
            raise _error(token, "nothing after ':'")
        _quality_intervals(quality, token)
    elif body in _LEAD_SHEET:
        quality = _LEAD_SHEET[body]
    else:
        raise _error(token, f"unknown chord quality {body!r} after root {root!r}")
    if bass and _NOTE_RE.fullmatch(bass):
        bass = _SEMITONE_INTERVALS[(_root_semitone(bass) - _root_semitone(root)) % 12]
    elif bass:
        _interval_semitone(bass, token)
    return _Chord(root, quality, "" if bass == "1" else bass)


def normalize_label(token: str) -> str:
    """Canonical Harte label of a chord typed in Harte or lead-sheet spelling.

    Parameters
    ----------
    token : str
        One chord, e.g. ``"Am"``, ``"A:min"``, ``"Cmaj7"``, ``"Dm7b5"``, ``"G/B"``, ``"N"``.

    Returns
    -------
    label : str
        ``ROOT[:QUALITY][/BASS]``: major is written as the bare root, the root keeps its
        spelling (``Bb`` stays ``Bb``), a bass note becomes its interval (``G/B`` → ``G/3``).
        ``"Am"`` → ``"A:min"``, ``"Dm7b5"`` → ``"D:hdim7"``, ``"C:maj"`` → ``"C"``.

    Raises
    ------
    ChordSyntaxError
        Empty token, lowercase root, unknown quality or malformed interval/bass.
    """
    chord = _parse(token)
    return "N" if chord is None else ("X" if chord.root == "X" else chord.label)


def label_to_chroma(label: str) -> np.ndarray:
    """12-d multi-hot pitch-class vector of a chord label (index 0 = C).

    Follows the BTC / MusicGen-Chord conversion: the quality's interval bits plus the bass
    interval bit (the root when there is no bass), rotated up by the root. ``N`` gives zeros and
    ``X`` gives all ``-1``. Any spelling accepted by :func:`normalize_label` works.

    Parameters
    ----------
    label : str
        Chord label, e.g. ``"C"``, ``"A:min7"``, ``"C:(1,b3,5)"``, ``"C/b7"``.

    Returns
    -------
    chroma : np.ndarray [shape=(12,), dtype=float32]

    Raises
    ------
    ChordSyntaxError
        If the label cannot be read.
    """
    chord = _parse(label)
    if chord is None:
        return np.zeros(12, dtype=np.float32)
    if chord.root == "X":
        return np.full(12, -1.0, dtype=np.float32)
    bits = _quality_intervals(chord.quality, label)
    bits[_interval_semitone(chord.bass, label) if chord.bass else 0] = 1.0
    return np.roll(bits, _root_semitone(chord.root))


def chroma_to_label(chroma: np.ndarray, vocab: Sequence[str]) -> str:
    """First label of ``vocab`` whose chroma equals ``chroma`` exactly.

    Chords with the same pitch classes cannot be told apart from a chroma vector (``C:maj6`` =
    ``A:min7``, ``C:sus2`` = ``G:sus4``, ``C:min6`` = ``A:hdim7``, dim7 and aug are symmetric);
    the earliest vocabulary entry wins.

    Parameters
    ----------
    chroma : np.ndarray [shape=(12,)]
    vocab : sequence of str
        E.g. :data:`VOCAB_25` or :data:`VOCAB_170`.

    Returns
    -------
    label : str

    Raises
    ------
    ValueError
        If ``chroma`` is not 12 values or no label of ``vocab`` has that chroma.
    """
    chroma = np.asarray(chroma, dtype=np.float32)
    if chroma.shape != (12,):
        raise ValueError(f"chroma must have shape (12,), got {chroma.shape}")
    for label in vocab:
        if np.array_equal(label_to_chroma(label), chroma):
            return label
    raise ValueError(f"no label of the {len(vocab)}-label vocabulary has chroma {chroma.tolist()}")


def parse_chord_text(text: str) -> list[list[str]]:
    """Read a chord progression: bars separated by whitespace, chords in a bar by commas.

    Parameters
    ----------
    text : str
        E.g. ``"C G,G:7 Em,Em7 Am"`` (4 bars; bars 2 and 3 hold two chords each).

    Returns
    -------
    bars : list of list of str
        Canonical Harte labels per bar, e.g. ``[["C"], ["G", "G:7"], ["E:min", "E:min7"], ["A:min"]]``.

    Raises
    ------
    ChordSyntaxError
        Empty text, an empty chord (``"G,"``, ``",C"``, ``"C,,G"``) or an unreadable chord; the
        message quotes the bar and chord, its character position and the accepted syntax.
    """
    if not isinstance(text, str) or not text.strip():
        raise ChordSyntaxError(f"chord text is empty; {SYNTAX_HELP}", str(text), 0)
    bars: list[list[str]] = []
    for bar_number, bar_match in enumerate(re.finditer(r"\S+", text), start=1):
        bar, labels = bar_match.group(0), []
        offset = bar_match.start()
        for chord_number, chord in enumerate(_CHORD_SEPARATOR_RE.split(bar), start=1):
            where = f"in bar {bar_number} {bar!r} (character {offset}), chord {chord_number}"
            if not chord:
                raise ChordSyntaxError(
                    f"empty chord {where}: commas separate chords inside a bar and need a chord on "
                    f"both sides; {SYNTAX_HELP}", bar, offset,
                )
            try:
                labels.append(normalize_label(chord))
            except ChordSyntaxError as error:
                raise ChordSyntaxError(f"{where}: {error}", chord, offset) from None
            offset += len(chord) + 1
        bars.append(labels)
    return bars
