"""Validated requests: what a remix or a generation asks for, checked before any model runs.

Every field is checked when the request is built, with a message that names the input and the
allowed values, so a bad request fails in microseconds instead of after separation. The
front-ends (:mod:`predict`, :mod:`remixer.__main__`) map their inputs onto these records;
:class:`remixer.pipeline.Pipeline` runs them.
"""
from __future__ import annotations

import math
import typing as tp
from dataclasses import dataclass, field
from pathlib import Path

from btc.labels import parse_chord_text
from remixer.chords import parse_time_signature, validate_bpm
from remixer.generation import CHORD_VERSIONS, MELODY_VERSIONS, GenerationParams
from remixer.sections import SectionPrompts, parse_section_prompts
from remixer.transform import check_key_shift, check_target_bpm

__all__ = ["Sampling", "Output", "RemixRequest", "GenerateRequest", "reject_options",
           "NORMALIZATIONS", "OUTPUT_FORMATS", "DEFAULT_MAX_DURATION", "STEREO_VERSIONS",
           "CHROMA_COEFFICIENT_RANGE", "MIN_DURATION", "MAX_PROMPT_CHARS", "MAX_TEXT_CHORDS_CHARS",
           "MAX_SECTION_PROMPTS_CHARS"]

STEREO_VERSIONS = tuple(v for v in CHORD_VERSIONS + MELODY_VERSIONS if v.startswith("stereo"))
NORMALIZATIONS = ("loudness", "clip", "peak", "rms")
OUTPUT_FORMATS = ("wav", "mp3", "flac")
# Songs longer than this are refused before any model runs (generation is ~linear in length).
DEFAULT_MAX_DURATION = 600.0
# Shortest generation: the predictor's documented minimum (a few codec frames).
MIN_DURATION = 0.1
CHROMA_COEFFICIENT_RANGE = (0.5, 2.5)
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


@dataclass(frozen=True)
class Sampling:
    """MusicGen sampling settings shared by both requests (the published predictors' defaults)."""

    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    classifier_free_guidance: float = 3.0
    seed: int | None = None

    def __post_init__(self) -> None:
        # JSON clients may send a whole seed as a float (or one beyond 2**64, which parsers
        # turn into a float): judge and echo it as the integer it is.
        if isinstance(self.seed, float) and self.seed.is_integer():
            object.__setattr__(self, "seed", int(self.seed))
        self.params(1.0)  # validates every field with GenerationParams' messages

    def params(self, duration: float) -> GenerationParams:
        return GenerationParams(duration=duration, top_k=self.top_k, top_p=self.top_p,
                                temperature=self.temperature, cfg_coef=self.classifier_free_guidance,
                                seed=self.seed)


@dataclass(frozen=True)
class Output:
    """How results are written: container and loudness normalization."""

    format: str = "wav"
    normalization: str = "loudness"

    def __post_init__(self) -> None:
        if self.format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, "
                             f"got {_shown(self.format)}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization_strategy must be one of {', '.join(NORMALIZATIONS)}, "
                             f"got {_shown(self.normalization)}")


def reject_options(given: tp.Mapping[str, bool], reason: str) -> None:
    """Raise ``ValueError("<names> <reason>")`` naming every option whose flag is set; for the
    front-ends (predictor, CLI), whose inputs of the other request kind must not pass silently."""
    names = [name for name, is_given in given.items() if is_given]
    if names:
        raise ValueError(f"{', '.join(names)} {reason}")


def _shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for an error message, cut short: a client's 100 KB string is not echoed."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _check_flags(**flags: object) -> None:
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {_shown(value)}")


def _is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _check_version(version: str, allowed: tp.Sequence[str]) -> None:
    if version not in allowed:
        raise ValueError(f"model_version must be one of {', '.join(allowed)}, got {_shown(version)}")


def _check_mbd(multi_band_diffusion: bool, version: str) -> None:
    if multi_band_diffusion and version in STEREO_VERSIONS:
        raise ValueError(f"multi_band_diffusion decodes mono models only; {version!r} is stereo "
                         f"(choose {version.removeprefix('stereo-')!r} or turn it off)")


def _check_coefficient(value: float) -> None:
    low, high = CHROMA_COEFFICIENT_RANGE
    if not _is_finite_number(value) or not low <= value <= high:
        raise ValueError(f"chroma_coefficient must be between {low} and {high}, got {_shown(value)}")


def _check_text(value: str | None, name: str, limit: int, why: str = "") -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; at most {limit} are accepted{why}")


def _check_prompt(prompt: str | None, *, required: bool) -> None:
    _check_text(prompt, "prompt", MAX_PROMPT_CHARS,
                f" (the T5 text encoder reads at most {T5_MAX_TOKENS} tokens)")
    if required and not (prompt or "").strip():
        raise ValueError("prompt is required: describe the style of the remix, e.g. 'bossa nova'")


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

    def __post_init__(self) -> None:
        _check_prompt(self.prompt, required=True)
        object.__setattr__(self, "target_bpm", check_target_bpm(self.target_bpm))
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
        if threshold is not None and not (_is_finite_number(threshold) and (threshold > 0 or threshold == -1)):
            raise ValueError(f"beat_sync_threshold must be a number of seconds > 0, or -1 / unset "
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
    duration: float = 8.0
    sampling: Sampling = field(default_factory=Sampling)
    output: Output = field(default_factory=Output)
    text_chords: str | None = None
    bpm: float | None = None
    time_sig: str = "4/4"
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
        if not _is_finite_number(self.duration) or not MIN_DURATION <= self.duration <= DEFAULT_MAX_DURATION:
            raise ValueError(f"duration must be in [{MIN_DURATION:g}, {DEFAULT_MAX_DURATION:g}] seconds, "
                             f"got {_shown(self.duration)}")
        chord_model = self.model_version in CHORD_VERSIONS
        _check_text(self.text_chords, "text_chords", MAX_TEXT_CHORDS_CHARS)
        _check_text(self.time_sig, "time_sig", 16)
        try:  # even without text_chords: a bad value must not pass silently
            parse_time_signature(self.time_sig)
        except ValueError as error:
            raise ValueError(f"time_sig: {error}") from None
        text_chords = (self.text_chords or "").strip() or None
        object.__setattr__(self, "text_chords", text_chords)
        if not (self.prompt or "").strip() and self.audio is None and text_chords is None:
            raise ValueError("give a prompt, text_chords or an input audio")
        if text_chords is not None:
            if not chord_model:
                raise ValueError(f"text_chords need a chord model (one of {', '.join(CHORD_VERSIONS)}); "
                                 f"{self.model_version!r} is a melody model")
            if self.bpm is None:
                raise ValueError("text_chords need bpm (the tempo that sets each bar's length)")
            validate_bpm(self.bpm)
            parse_chord_text(text_chords)
            if self.audio is not None and not self.continuation:
                raise ValueError("give either text_chords or chords from input audio, not both "
                                 "(both are allowed only with continuation=True)")
        elif self.bpm is not None:
            validate_bpm(self.bpm)
        if chord_model:
            parse_time_signature(self.time_sig)  # it ends every chord model's description
        if self.continuation and self.audio is None:
            raise ValueError("continuation=True needs an input audio to continue")
        if self.audio is not None and not chord_model and self.model_version not in MELODY_VERSIONS:
            raise ValueError(f"{self.model_version!r} cannot take input audio")
        start, end = self.audio_start, self.audio_end
        if self.audio is None:
            reject_options({"audio_start": start != 0, "audio_end": end not in (None, -1)},
                           "select a part of input_audio: give input_audio")
        if not _is_finite_number(start) or start < 0:
            raise ValueError(f"audio_start must be >= 0 seconds, got {_shown(start)}")
        if end is not None and end != -1 and (not _is_finite_number(end) or end <= start):
            raise ValueError(f"audio_end must be after audio_start ({start} s), or -1 / unset for "
                             f"the end of the file, got {_shown(end)}")
