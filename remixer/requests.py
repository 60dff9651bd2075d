"""What a client may ask for, checked before any model runs: the one room for input checks.

Every rule about an input lives here, and every breach raises :class:`InputError` with a message
that names the input and the allowed values, so a bad request fails in microseconds instead of
after separation, and the front-ends (:mod:`predict`, :mod:`remixer.__main__`) can tell a client's
mistake from a bug of ours: only an ``InputError`` is the client's to read. Checks that need the
song (a target tempo within 2x of the song's, section prompts against its length and the analysis
backend, a file that does not decode) run later but raise ``InputError`` too; a target tempo is
checked here already when the client states the song's (``song_bpm``).

* :func:`is_number`: the one finite-number check (``True`` is not a number here);
* the model versions (:data:`CHORD_VERSIONS`, :data:`MELODY_VERSIONS`), without importing torch;
* :data:`REMIX_ONLY`, :data:`GENERATION_ONLY` and :func:`check_request_kind`: which inputs belong to
  which kind of request;
* :func:`check_sent_file`: file inputs come with the request (a URL or a data URI), never
  from the server's disk;
* :func:`parse_time_signature`, :func:`validate_bpm`, :func:`check_target_bpm`,
  :func:`check_song_bpm`, :func:`check_tempo_factor`, :func:`check_key_shift`,
  :func:`parse_section_prompts` (which names a missing ':' or a misspelt section);
* the records :class:`Sampling`, :class:`Output`, :class:`RemixRequest` and
  :class:`GenerateRequest`, checked whole when built; :class:`remixer.pipeline.Pipeline` runs them.

This module imports no model code, and numpy only to check text chords (``import
remixer.requests`` takes a fraction of a second).
"""
from __future__ import annotations

import difflib
import math
import numbers
import re
import typing as tp
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "InputError", "is_number", "check_request_kind", "check_sent_file", "parse_time_signature",
    "validate_bpm", "check_target_bpm", "check_song_bpm", "check_tempo_factor", "check_key_shift",
    "parse_section_prompts", "RangePrompt", "ANALYSIS_BACKENDS", "MAX_TEMPO_FACTOR",
    "SectionPrompts", "Sampling", "Output", "RemixRequest", "GenerateRequest",
    "CHORD_VERSIONS", "MELODY_VERSIONS", "STEREO_VERSIONS", "NORMALIZATIONS", "OUTPUT_FORMATS",
    "REMIX_ONLY", "GENERATION_ONLY", "DEFAULT_MAX_DURATION", "DEFAULT_DURATION", "DEFAULT_TIME_SIG",
    "MIN_DURATION", "BPM_RANGE", "TARGET_BPM_RANGE", "KEY_SHIFT_RANGE", "CHROMA_COEFFICIENT_RANGE",
    "SEED_LIMIT", "SECTION_LABELS", "SECTION_BACKENDS", "MAX_PROMPT_CHARS", "MAX_TEXT_CHORDS_CHARS",
    "MAX_SECTION_PROMPTS_CHARS",
]

CHORD_VERSIONS = ("chord", "chord-large", "stereo-chord", "stereo-chord-large")
MELODY_VERSIONS = ("melody", "melody-large", "stereo-melody-large")
STEREO_VERSIONS = tuple(v for v in CHORD_VERSIONS + MELODY_VERSIONS if v.startswith("stereo"))
NORMALIZATIONS = ("loudness", "clip", "peak", "rms")
OUTPUT_FORMATS = ("wav", "mp3", "flac")
# Songs longer than this are refused before any model runs (generation is ~linear in length).
DEFAULT_MAX_DURATION = 600.0
# Shortest generation: the predictor's documented minimum (a few codec frames).
MIN_DURATION = 0.1
DEFAULT_DURATION = 8.0
DEFAULT_TIME_SIG = "4/4"
# Tempo of text chords, and of a remix (a stretched voice is smeared or garbled beyond 40-240).
BPM_RANGE = (20.0, 300.0)
TARGET_BPM_RANGE = (40.0, 240.0)
# Beyond 2x either way a stretched voice is smeared (slower) or garbled (faster), and the song's
# bars no longer fit the generator's idea of a bar at that bpm.
MAX_TEMPO_FACTOR = 2.0
# The beat analysers a client may pick ("auto": All-In-One when its weights are there, else madmom).
ANALYSIS_BACKENDS = ("auto", "allinone", "madmom")
KEY_SHIFT_RANGE = (-12, 12)
CHROMA_COEFFICIENT_RANGE = (0.5, 2.5)
SEED_LIMIT = 2 ** 32
# T5 (the text encoder) was trained on at most 512 tokens, and audiocraft passes it the whole
# text untruncated: a 100 KB prompt runs out of memory in generation. A SentencePiece token
# covers at least one character, so a prompt of 480 characters stays within 512 tokens with
# room for what the pipeline appends (", 4/4, bpm : 120") and the end-of-text token.
T5_MAX_TOKENS = 512
MAX_PROMPT_CHARS = 480
# Up to one full prompt for each of the eight section labels, plus time ranges.
MAX_SECTION_PROMPTS_CHARS = 16 * MAX_PROMPT_CHARS
# A progression for the longest generation at 300 BPM in 2/4 is about 2000 bars of "C " or so.
MAX_TEXT_CHORDS_CHARS = 8192
# All-In-One's Harmonix functions, less "start" and "end" (the silence around the song).
SECTION_LABELS = ("intro", "verse", "chorus", "bridge", "inst", "solo", "break", "outro")
# Analysis backends whose Beats carry labelled sections.
SECTION_BACKENDS = ("allinone",)

_MAX_NUMERATOR = 32
_DENOMINATORS = (1, 2, 4, 8, 16)
_TIME_SIGNATURE_RE = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*")
_EXAMPLE = "'verse: nylon guitar, brushes; chorus: full band, horns'"
_RANGE_EXAMPLE = "'0:00-0:45: ambient pads; 0:45-: full band'"
_TIME = r"\d+(?::\d+){0,2}(?:\.\d+)?"
# A range's times read greedily: "0:00-0:45 pads" is a range whose ':' is missing, not the range
# "0:00-0" with the prompt "45 pads". Only when the greedy end is no time ("1:30:80s synth") is the
# ':' before the digits the separator (_RANGE).
_RANGE_HEAD = re.compile(rf"(?P<start>{_TIME})\s*-\s*(?P<end>{_TIME})?(?!\d)")
_RANGE = re.compile(rf"(?P<start>{_TIME})\s*-\s*(?P<end>{_TIME})?\s*:(?P<prompt>.*)", re.S)
_LABEL = re.compile(r"(?P<label>[A-Za-z][^:]*?)\s*:(?P<prompt>.*)", re.S)
# What a client may send for a file input: the file itself, by URL or as a data URI.
_SENT_SCHEMES = ("http://", "https://", "data:")
# Letters that render as blank space (Hangul fillers, the blank Braille pattern).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_LONE_TIME = re.compile(rf"{_TIME}\s*:")


class InputError(ValueError):
    """Something the client sent is wrong; the message names the input and what is allowed."""


def is_number(value: object) -> bool:
    """Whether ``value`` is a finite real number (numpy's included); ``True``/``False`` are not."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for an error message, cut short: a client's 100 KB string is not echoed."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _reject(names: tp.Sequence[str], reason: str) -> None:
    if names:
        raise InputError(f"{', '.join(names)} {reason}")


# -- one input at a time -------------------------------------------------------------------------


def parse_time_signature(text: str) -> tuple[int, int]:
    """Read a time signature such as ``"4/4"``, ``"3/4"``, ``"6/8"`` or ``"7/8"``.

    Parameters
    ----------
    text : str
        ``NUMERATOR/DENOMINATOR``; spaces around the parts are allowed.

    Returns
    -------
    numerator, denominator : tuple of int
        Beats per bar (1..32) and the note value of a beat (1, 2, 4, 8 or 16).

    Raises
    ------
    InputError
        If ``text`` is not of that form or a part is out of range.
    """
    match = _TIME_SIGNATURE_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InputError(f"time signature {_shown(text)} is not NUMERATOR/DENOMINATOR, e.g. '4/4', "
                         f"'3/4' or '6/8'")
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if not 1 <= numerator <= _MAX_NUMERATOR:
        raise InputError(f"time signature {text!r}: numerator {numerator} (beats per bar) must be "
                         f"1..{_MAX_NUMERATOR}")
    if denominator not in _DENOMINATORS:
        raise InputError(f"time signature {text!r}: denominator {denominator} must be a note value, "
                         f"one of {', '.join(map(str, _DENOMINATORS))}")
    return numerator, denominator


def validate_bpm(bpm: float) -> float:
    """The tempo of text chords as a float, in :data:`BPM_RANGE` (20-300)."""
    return _number_in(bpm, "bpm", BPM_RANGE, "beats per minute")


def check_target_bpm(target_bpm: tp.Any) -> float | None:
    """``target_bpm`` as a float in :data:`TARGET_BPM_RANGE`, or None (keep the song's tempo)."""
    if target_bpm is None:
        return None
    return _number_in(target_bpm, "target_bpm", TARGET_BPM_RANGE, "beats per minute")


def check_song_bpm(song_bpm: tp.Any) -> float | None:
    """``song_bpm``, the client's statement of the song's tempo, as a float in
    :data:`TARGET_BPM_RANGE`, or None (the analysis finds it)."""
    if song_bpm is None:
        return None
    return _number_in(song_bpm, "song_bpm", TARGET_BPM_RANGE, "beats per minute")


def check_tempo_factor(song_bpm: float, target_bpm: float, *, source: str = "the song's tempo") -> float:
    """``target_bpm / song_bpm``, refused beyond :data:`MAX_TEMPO_FACTOR` either way.

    ``source`` says where ``song_bpm`` comes from in the message (``"song_bpm"``).
    """
    factor = target_bpm / song_bpm
    if not 1 / MAX_TEMPO_FACTOR <= factor <= MAX_TEMPO_FACTOR:
        raise InputError(f"target_bpm {target_bpm:g} is {factor:.2f}x {source} ({song_bpm:.1f} BPM); "
                         f"it must stay within {1 / MAX_TEMPO_FACTOR:g}x-{MAX_TEMPO_FACTOR:g}x of it "
                         f"({song_bpm / MAX_TEMPO_FACTOR:.1f}-{song_bpm * MAX_TEMPO_FACTOR:.1f} BPM)")
    return factor


def _number_in(value: object, name: str, bounds: tuple[float, float], unit: str) -> float:
    if not is_number(value):
        raise InputError(f"{name} must be a number of {unit}, got {_shown(value)}")
    low, high = bounds
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low:g} and {high:g} {unit}, got {value:g}")
    return float(value)


def check_key_shift(key_shift: tp.Any) -> int:
    """``key_shift`` as an int in :data:`KEY_SHIFT_RANGE` (whole semitones; 2.0 is 2)."""
    whole = _is_whole(key_shift) or (isinstance(key_shift, float) and key_shift.is_integer())
    if not whole:
        raise InputError(f"key_shift must be a whole number of semitones, got {_shown(key_shift)}")
    low, high = KEY_SHIFT_RANGE
    if not low <= key_shift <= high:
        raise InputError(f"key_shift must be between {low} and {high} semitones, got {int(key_shift)}")
    return int(key_shift)


def check_sent_file(value: object, name: str) -> str | None:
    """The URL or data URI the client sent for file input ``name`` (None when not given).

    A served request receives its file inputs as the text the client sent
    (:mod:`remixer.sent_files` fetches them). Anything but an ``http(s)://`` URL or a ``data:``
    URI, such as a path on the server (``"/etc/passwd"``, another request's output), is refused
    with the same message whatever exists there.
    """
    if value is None:
        return None
    if isinstance(value, str) and value[:8].lower().startswith(_SENT_SCHEMES):
        return value
    raise InputError(f"{name} must be a file sent with the request (a URL or a data URI); "
                     f"paths on the server are not accepted")


def _check_flags(**flags: object) -> None:
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise InputError(f"{name} must be true or false, got {_shown(value)}")


def _check_version(version: str, allowed: tp.Sequence[str]) -> None:
    if version not in allowed:
        raise InputError(f"model_version must be one of {', '.join(allowed)}, got {_shown(version)}")


def _check_mbd(multi_band_diffusion: bool, version: str) -> None:
    if multi_band_diffusion and version in STEREO_VERSIONS:
        raise InputError(f"multi_band_diffusion decodes mono models only; {version!r} is stereo "
                         f"(choose {version.removeprefix('stereo-')!r} or turn it off)")


def _check_coefficient(value: float) -> None:
    low, high = CHROMA_COEFFICIENT_RANGE
    if not is_number(value) or not low <= value <= high:
        raise InputError(f"chroma_coefficient must be between {low} and {high}, got {_shown(value)}")


def _check_text(value: str | None, name: str, limit: int, why: str = "") -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise InputError(f"{name} is {len(value)} characters long; at most {limit} are accepted{why}")


def _visible(text: str) -> bool:
    """Whether ``text`` holds a character that shows: not white space, a control or format
    character (zero-width spaces and joiners, direction marks), a lone combining mark or a blank
    letter."""
    return any(not char.isspace() and unicodedata.category(char)[0] not in "CZM"
               and char not in _BLANK_LETTERS for char in text)


def _invisible_text(text: str) -> str:
    """The distinct characters of an invisible ``text``, by code point and name."""
    chars = list(dict.fromkeys(char for char in text if not char.isspace()))
    named = [f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed')}" for char in chars[:3]]
    return ", ".join(named) + (f" and {len(chars) - 3} more" if len(chars) > 3 else "")


def _check_prompt(prompt: str | None, *, required: bool) -> None:
    _check_text(prompt, "prompt", MAX_PROMPT_CHARS,
                f" (the T5 text encoder reads at most {T5_MAX_TOKENS} tokens)")
    if prompt and prompt.strip() and not _visible(prompt):
        raise InputError(f"prompt holds only invisible characters ({_invisible_text(prompt)}); "
                         f"describe the style in words, e.g. 'bossa nova'")
    if required and not (prompt or "").strip():
        raise InputError("prompt is required: describe the style of the remix, e.g. 'bossa nova'")


def _check_chord_text(text: str) -> None:
    # Imported here: btc.labels loads numpy, which a CLI answering --help has no use for.
    from btc.labels import parse_chord_text

    try:
        parse_chord_text(text)
    except ValueError as error:  # btc's ChordSyntaxError names the chord and its bar
        raise InputError(str(error)) from None


# -- section prompts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RangePrompt:
    """The prompt of ``[start, end)`` seconds (``end=None``: to the song's end), as ``text`` wrote it."""

    start: float
    end: float | None
    prompt: str
    text: str


@dataclass(frozen=True)
class SectionPrompts:
    """Parsed ``section_prompts``: prompts by section label and by time range (sorted by start).

    ``"verse: nylon guitar, brushes; chorus: full band, horns"`` gives All-In-One's labelled
    sections (:data:`SECTION_LABELS`) their own prompt; ``"0:00-0:45: ambient pads; 0:45-: full
    band"`` gives time ranges theirs, with any analysis backend (times as ``m:ss``, ``h:mm:ss`` or
    seconds; an open end runs to the song's end). Where a range covers a labelled section, the
    range wins; :mod:`remixer.sections` turns them into the song's parts.
    """

    labels: dict[str, str] = field(default_factory=dict)
    ranges: tuple[RangePrompt, ...] = ()

    def check_backend(self, backend: str) -> None:
        """Refuse labels when ``backend`` reports no sections (madmom), naming the ways out."""
        if self.labels and backend not in SECTION_BACKENDS:
            raise InputError(
                f"section_prompts names sections ({', '.join(self.labels)}), but the {backend} "
                f"analysis finds no sections: give time ranges instead, e.g. {_RANGE_EXAMPLE}, or "
                f"fetch the All-In-One weights (python -m remixer.weights fetch allinone)")

    @property
    def prompts(self) -> tuple[str, ...]:
        """Every prompt given, labelled and timed."""
        return tuple(self.labels.values()) + tuple(item.prompt for item in self.ranges)

    def scaled(self, ratio: float) -> SectionPrompts:
        """The same prompts with their time ranges on a timeline stretched by ``ratio`` (a remix
        at a new tempo: ranges are written in the song's time)."""
        return SectionPrompts(self.labels, tuple(
            RangePrompt(item.start * ratio, None if item.end is None else item.end * ratio, item.prompt,
                        item.text) for item in self.ranges))

    def check_duration(self, duration: float) -> None:
        """Refuse ranges that start at or after the song's end (``duration`` seconds)."""
        for item in self.ranges:
            if item.start >= duration:
                raise InputError(f"section_prompts range '{item.text}' starts at {item.start:g} s, "
                                 f"after the song's end ({duration:.2f} s)")


def parse_section_prompts(text: str) -> SectionPrompts:
    """Parse ``"label: prompt; start-end: prompt; ..."``.

    Empty parts (``";;"``, a trailing ``";"``) are skipped; labels are case-insensitive.

    Raises
    ------
    InputError
        Naming the part that is not ``label: prompt`` or ``start-end: prompt``, has no prompt,
        names an unknown label or a label twice, or whose range is empty or overlaps another.
    """
    if not isinstance(text, str):
        raise InputError(f"section_prompts must be text such as {_EXAMPLE}, got {type(text).__name__}")
    labels: dict[str, str] = {}
    ranges: list[RangePrompt] = []
    for part in (piece.strip() for piece in text.split(";")):
        if not part:
            continue
        head = _RANGE_HEAD.match(part)
        if head is not None:
            ranges.append(_range(head, part))
            continue
        labelled = _LABEL.fullmatch(part)
        if labelled is None:
            raise InputError(_not_a_part(part))
        prompt = labelled["prompt"].strip()
        if not _visible(prompt):
            raise InputError(f"section_prompts part '{part}' has no prompt after its ':'")
        label = labelled["label"].strip().lower()
        if label not in SECTION_LABELS:
            close = difflib.get_close_matches(label, SECTION_LABELS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InputError(f"section_prompts part '{part}': unknown section {label!r}; {hint}All-In-One's "
                             f"sections are {', '.join(SECTION_LABELS)} (or give a time range such "
                             f"as '0:45-1:30: horns')")
        if label in labels:
            raise InputError(f"section_prompts gives {label!r} twice")
        labels[label] = prompt
    if not labels and not ranges:
        raise InputError(f"section_prompts has no part; write e.g. {_EXAMPLE}")
    ranges.sort(key=lambda item: item.start)
    for before, after in zip(ranges, ranges[1:]):
        if before.end is None or after.start < before.end:
            raise InputError(f"section_prompts ranges '{before.text}' and '{after.text}' overlap")
    return SectionPrompts(labels=labels, ranges=tuple(ranges))


def _range(head: re.Match[str], part: str) -> RangePrompt:
    """The range ``head`` starts ``part`` with, then ``: prompt``, each mistake named."""
    text = head.group(0).strip()
    rest = part[head.end():].lstrip()
    if not rest.startswith(":"):
        shorter = _RANGE.fullmatch(part)
        if head["end"] is None or _is_time(head["end"]) or shorter is None:
            missing = f"'{text}: {rest}'" if rest else f"'{text}: <prompt>'"
            raise InputError(f"section_prompts part '{part}': a ':' is missing between the range "
                             f"'{text}' and its prompt; write {missing}")
        head = shorter
        text, rest = part[:shorter.start("prompt") - 1].strip(), ":" + shorter["prompt"]
    prompt = rest[1:].strip()
    if not _visible(prompt):
        raise InputError(f"section_prompts part '{text}:' has no prompt after its ':'")
    start = _seconds(head["start"], part)
    end = None if head["end"] is None else _seconds(head["end"], part)
    if end is not None and end <= start:
        raise InputError(f"section_prompts range '{text}' ends before it starts")
    return RangePrompt(start=start, end=end, prompt=prompt, text=text)


def _not_a_part(part: str) -> str:
    """Why ``part`` is neither ``label: prompt`` nor ``start-end: prompt``, as precisely as it shows."""
    first = part.split()[0].lower().rstrip(",")
    if first in SECTION_LABELS:
        return (f"section_prompts part '{part}': a ':' is missing after the section '{first}'; write "
                f"'{first}: {part[len(first):].strip()}'")
    if _LONE_TIME.match(part):
        return (f"section_prompts part '{part}' gives one time, not a range: write start-end, e.g. "
                f"'0:45-: ...' (to the end) or '0:45-1:30: ...'")
    return (f"section_prompts part '{part}' is neither 'label: prompt' nor 'start-end: prompt' "
            f"(e.g. {_EXAMPLE} or {_RANGE_EXAMPLE})")


def _is_time(time: str) -> bool:
    """Whether ``time`` reads as m:ss, h:mm:ss or seconds (no field of 60 or more after the first)."""
    *larger, seconds = time.split(":")
    return not (larger and float(seconds) >= 60 or any(int(minutes) >= 60 for minutes in larger[1:]))


def _seconds(time: str, part: str) -> float:
    """``"1:02:03.5"``, ``"2:03"`` or ``"123.5"`` in seconds."""
    if not _is_time(time):
        raise InputError(f"section_prompts part '{part}': {time!r} is not a time "
                         f"(m:ss, h:mm:ss or seconds)")
    *larger, seconds = time.split(":")
    value = float(seconds)
    for unit, number in zip((60, 3600), reversed(larger)):
        value += unit * int(number)
    return value


# -- which inputs belong to which request --------------------------------------------------------

# Inputs of one kind of request only, with the values that mean "not given" (their defaults).
REMIX_ONLY: dict[str, tuple[tp.Any, ...]] = {
    "beat_sync_threshold": (None, -1), "return_instrumental": (False,), "return_stems": (False,),
    "return_analysis": (False,), "target_bpm": (None,), "key_shift": (0,), "section_prompts": (None,),
    "song_bpm": (None,),
}
GENERATION_ONLY: dict[str, tuple[tp.Any, ...]] = {
    "text_chords": (None,), "bpm": (None,), "input_audio": (None,), "continuation": (False,),
    "audio_start": (0,), "audio_end": (None, -1), "duration": (DEFAULT_DURATION,),
    "time_sig": (DEFAULT_TIME_SIG,),
}


def _given(value: object, unset: tp.Sequence[object]) -> bool:
    # False == 0, but a flag sent for a number (or a number for a flag) is not its default.
    return not any(value == default and isinstance(value, bool) == isinstance(default, bool)
                   for default in unset)


def check_request_kind(inputs: tp.Mapping[str, object], *, remix: bool, song: str,
                       spell: tp.Callable[[str], str] = str) -> None:
    """Refuse inputs that the other kind of request takes: generation-only ones in a remix,
    remix-only ones without a song. They would otherwise pass silently.

    Parameters
    ----------
    inputs : mapping
        Every input of :data:`REMIX_ONLY` and :data:`GENERATION_ONLY` by name, as the client gave it.
    remix : bool
        Whether the request has a song to remix.
    song : str
        What the front-end calls the song (``"music_input"``, ``"a song"``).
    spell : callable
        An input's name as the front-end spells it (``"--target-bpm"``).
    """
    if remix:
        _reject([spell(name) for name, unset in GENERATION_ONLY.items() if _given(inputs[name], unset)],
                f"apply only to generation without {song}; a remix takes its chords and tempo from the song")
    else:
        _reject([spell(name) for name, unset in REMIX_ONLY.items() if _given(inputs[name], unset)],
                f"apply only to a remix: give {song}")


# -- the requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampling:
    """MusicGen sampling settings shared by both requests (the published predictors' defaults).

    ``top_k`` 0 is no limit; ``top_p`` 0 uses ``top_k``; ``temperature`` 0 is greedy decoding;
    ``seed`` None draws one (the result reports it).
    """

    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    classifier_free_guidance: float = 3.0
    seed: int | None = None

    def __post_init__(self) -> None:
        # JSON clients may send a whole number as a float (Cog's schema takes 250.0 as an
        # integer; parsers turn a seed beyond 2**64 into a float): judge and echo the integer.
        for name in ("top_k", "seed"):
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))
        if not _is_whole(self.top_k) or self.top_k < 0:
            raise InputError(f"top_k must be an integer >= 0, got {_shown(self.top_k)}")
        for name in ("top_p", "temperature", "classifier_free_guidance"):
            if not is_number(getattr(self, name)):
                raise InputError(f"{name} must be a finite number, got {_shown(getattr(self, name))}")
        if not 0.0 <= self.top_p <= 1.0:
            raise InputError(f"top_p must be in [0, 1], got {self.top_p}")
        if self.temperature < 0:
            raise InputError(f"temperature must be >= 0, got {self.temperature}")
        if self.classifier_free_guidance < 0:
            raise InputError(f"classifier_free_guidance must be >= 0, got {self.classifier_free_guidance}")
        if self.seed is not None and (not _is_whole(self.seed) or not 0 <= self.seed < SEED_LIMIT):
            raise InputError(f"seed must be an integer in [0, 2**32) or None, got {_shown(self.seed)}")


@dataclass(frozen=True)
class Output:
    """How results are written: container and loudness normalization."""

    format: str = "wav"
    normalization: str = "loudness"

    def __post_init__(self) -> None:
        if self.format not in OUTPUT_FORMATS:
            raise InputError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, "
                             f"got {_shown(self.format)}")
        if self.normalization not in NORMALIZATIONS:
            raise InputError(f"normalization_strategy must be one of {', '.join(NORMALIZATIONS)}, "
                             f"got {_shown(self.normalization)}")


@dataclass(frozen=True)
class RemixRequest:
    """Remix ``song`` in the style of ``prompt`` (the published Remixer's inputs, plus extras)."""

    song: Path
    prompt: str
    model_version: str = "stereo-chord"
    sampling: Sampling = field(default_factory=Sampling)
    output: Output = field(default_factory=Output)
    beat_sync_threshold: float | None = None
    large_chord_voca: bool = True
    chroma_coefficient: float = 1.0
    multi_band_diffusion: bool = False
    return_instrumental: bool = False
    return_stems: bool = False
    return_analysis: bool = False
    target_bpm: float | None = None  # None: the song's tempo (checked against it after analysis)
    key_shift: int = 0
    section_prompts: str | None = None
    song_bpm: float | None = None  # None: the analysis finds the tempo; else it decodes at this one

    def __post_init__(self) -> None:
        _check_prompt(self.prompt, required=True)
        object.__setattr__(self, "target_bpm", check_target_bpm(self.target_bpm))
        object.__setattr__(self, "song_bpm", check_song_bpm(self.song_bpm))
        if self.song_bpm is not None and self.target_bpm is not None:
            check_tempo_factor(self.song_bpm, self.target_bpm, source="song_bpm")
        object.__setattr__(self, "key_shift", check_key_shift(self.key_shift))
        _check_flags(large_chord_voca=self.large_chord_voca, multi_band_diffusion=self.multi_band_diffusion,
                     return_instrumental=self.return_instrumental, return_stems=self.return_stems,
                     return_analysis=self.return_analysis)
        if isinstance(self.section_prompts, str) and not self.section_prompts.strip():
            object.__setattr__(self, "section_prompts", None)
        if self.section_prompts is not None:
            _check_text(self.section_prompts, "section_prompts", MAX_SECTION_PROMPTS_CHARS)
            for prompt in parse_section_prompts(self.section_prompts).prompts:
                # Each one reaches the T5 encoder as a window's description.
                _check_text(prompt, f"section_prompts prompt '{prompt[:40]}...'", MAX_PROMPT_CHARS,
                            f" (the T5 text encoder reads at most {T5_MAX_TOKENS} tokens)")
        _check_version(self.model_version, CHORD_VERSIONS)
        _check_mbd(self.multi_band_diffusion, self.model_version)
        _check_coefficient(self.chroma_coefficient)
        threshold = self.beat_sync_threshold
        if threshold is not None and not (is_number(threshold) and (threshold > 0 or threshold == -1)):
            raise InputError(f"beat_sync_threshold must be a number of seconds > 0, or -1 / unset "
                             f"for automatic (1.1 beats), got {_shown(threshold)}")

    def sections(self, backend: str) -> SectionPrompts | None:
        """The parsed ``section_prompts`` (None when not given), checked against the analysis
        ``backend`` that will read the song: labels need one that finds sections."""
        if self.section_prompts is None:
            return None
        prompts = parse_section_prompts(self.section_prompts)
        prompts.check_backend(backend)
        return prompts


@dataclass(frozen=True)
class GenerateRequest:
    """Generate ``duration`` seconds without a song to remix (MusicGen Chord / Melody features).

    ``audio`` is, by model and ``continuation``: the audio whose chords condition the output
    (chord models), the melody to follow (melody models), or the prompt to continue.
    """

    prompt: str | None = None
    model_version: str = "stereo-chord"
    duration: float = DEFAULT_DURATION
    sampling: Sampling = field(default_factory=Sampling)
    output: Output = field(default_factory=Output)
    text_chords: str | None = None
    bpm: float | None = None
    time_sig: str = DEFAULT_TIME_SIG
    audio: Path | None = None
    audio_start: float = 0.0
    audio_end: float | None = None
    continuation: bool = False
    chroma_coefficient: float = 1.0
    large_chord_voca: bool = True
    multi_band_diffusion: bool = False

    def __post_init__(self) -> None:
        _check_prompt(self.prompt, required=False)
        _check_flags(continuation=self.continuation, large_chord_voca=self.large_chord_voca,
                     multi_band_diffusion=self.multi_band_diffusion)
        _check_version(self.model_version, CHORD_VERSIONS + MELODY_VERSIONS)
        _check_mbd(self.multi_band_diffusion, self.model_version)
        _check_coefficient(self.chroma_coefficient)
        if not is_number(self.duration) or not MIN_DURATION <= self.duration <= DEFAULT_MAX_DURATION:
            raise InputError(f"duration must be in [{MIN_DURATION:g}, {DEFAULT_MAX_DURATION:g}] seconds, "
                             f"got {_shown(self.duration)}")
        chord_model = self.model_version in CHORD_VERSIONS
        _check_text(self.text_chords, "text_chords", MAX_TEXT_CHORDS_CHARS)
        _check_text(self.time_sig, "time_sig", 16)
        try:  # even without text_chords: a bad value must not pass silently
            parse_time_signature(self.time_sig)
        except InputError as error:
            raise InputError(f"time_sig: {error}") from None
        text_chords = (self.text_chords or "").strip() or None
        object.__setattr__(self, "text_chords", text_chords)
        if not (self.prompt or "").strip() and self.audio is None and text_chords is None:
            raise InputError("give a prompt, text_chords or an input audio")
        if text_chords is not None:
            if not chord_model:
                raise InputError(f"text_chords need a chord model (one of {', '.join(CHORD_VERSIONS)}); "
                                 f"{self.model_version!r} is a melody model")
            if self.bpm is None:
                raise InputError("text_chords need bpm (the tempo that sets each bar's length)")
            validate_bpm(self.bpm)
            _check_chord_text(text_chords)
            if self.audio is not None and not self.continuation:
                raise InputError("give either text_chords or chords from input audio, not both "
                                 "(both are allowed only with continuation=True)")
        elif self.bpm is not None:
            validate_bpm(self.bpm)
        if self.continuation and self.audio is None:
            raise InputError("continuation=True needs an input audio to continue")
        start, end = self.audio_start, self.audio_end
        if self.audio is None:
            _reject([name for name, given in (("audio_start", start != 0), ("audio_end", end not in (None, -1)))
                     if given], "select a part of input_audio: give input_audio")
        if not is_number(start) or start < 0:
            raise InputError(f"audio_start must be >= 0 seconds, got {_shown(start)}")
        if end is not None and end != -1 and (not is_number(end) or end <= start):
            raise InputError(f"audio_end must be after audio_start ({start} s), or -1 / unset for "
                             f"the end of the file, got {_shown(end)}")
