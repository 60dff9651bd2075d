"""The jobs of a batch: read, expanded, checked and keyed before the first one runs.

A job is one prediction of the Cog predictor (``predict.py``), with its input names: a remix
when it has a song (``music_input``, ``song`` in job files), a generation otherwise. Jobs come
from

* a sweep (:func:`sweep_jobs`): songs (files, or folders of audio files) x prompts x every value
  of each input given several times (``-i seed=1 -i seed=2``);
* a job file (:func:`read_job_file`): JSON Lines (one object per line) or CSV (a header row),
  one job per line; inputs given on the command line fill what a line leaves out.

Every job is checked as the predictor checks its inputs (:mod:`remixer.requests`) and its files
must exist (:func:`plan`); each problem names its line. A job's key is a digest of its files'
*content* and of its request with every default filled in: the same job under another file name,
or spelled another way (``seed: 3.0``, ``output_format`` left at ``wav``), has the same key, so a
re-run finds it done.
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import json
import re
import typing as tp
from dataclasses import dataclass
from pathlib import Path

from remixer.requests import (GENERATION_ONLY, REMIX_ONLY, GenerateRequest, InputError, Output, RemixRequest,
                              Sampling, check_request_kind)

__all__ = ["Job", "Plan", "INPUT_TYPES", "AUDIO_SUFFIXES", "parse_value", "to_request", "sweep_jobs",
           "read_job_file", "plan", "find_songs"]

# The predictor's inputs (predict.py), with the type a command-line or CSV value is read as.
INPUT_TYPES: dict[str, type] = {
    "prompt": str, "section_prompts": str, "music_input": Path, "model_version": str,
    "multi_band_diffusion": bool, "normalization_strategy": str, "beat_sync_threshold": float,
    "target_bpm": float, "song_bpm": float, "key_shift": int, "large_chord_voca": bool, "chroma_coefficient": float,
    "top_k": int, "top_p": float, "temperature": float, "classifier_free_guidance": int,
    "output_format": str, "return_instrumental": bool, "return_stems": bool, "return_analysis": bool,
    "seed": int, "duration": float, "text_chords": str, "bpm": float, "time_sig": str,
    "input_audio": Path, "continuation": bool, "audio_start": float, "audio_end": float,
}
FILE_INPUTS = ("music_input", "input_audio")
# What job files call the song to remix.
ALIASES = {"song": "music_input"}
# Suffixes of the files a folder of songs contributes (other files in it are not songs).
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif",
                            ".aiff", ".wma", ".webm", ".mka", ".caf", ".w64"})
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}
# Where each predictor input goes in the request: Sampling, Output (renamed), or the request's own
# field of the same name (a remix's song and prompt, a generation's audio are passed apart).
_SAMPLING = ("top_k", "top_p", "temperature", "classifier_free_guidance", "seed")
_OUTPUT = {"output_format": "format", "normalization_strategy": "normalization"}
_REMIX = ("model_version", "beat_sync_threshold", "large_chord_voca", "chroma_coefficient",
          "multi_band_diffusion", "return_instrumental", "return_stems", "return_analysis", "target_bpm",
          "song_bpm", "key_shift", "section_prompts")
_GENERATE = ("prompt", "model_version", "duration", "text_chords", "bpm", "time_sig", "audio_start",
             "audio_end", "continuation", "chroma_coefficient", "large_chord_voca", "multi_band_diffusion")
_TYPE_NAMES = {str: "text", int: "an integer", float: "a number", bool: "true or false", Path: "a file"}


@dataclass(frozen=True)
class Job:
    """One prediction of a batch, checked.

    Attributes
    ----------
    origin : str
        Where it came from, for messages: ``"jobs.csv line 4"``, ``"sweep job 3"``.
    inputs : dict
        The predictor's inputs as given (files as paths); what the record shows and a remote
        server receives.
    request : RemixRequest or GenerateRequest
        The same inputs as the pipeline runs them, every rule checked.
    key : str
        16 hex digits: the content of its files and its request, defaults filled in.
    song_digest : str or None
        SHA-256 of the song's bytes (remixes): jobs with the same one share its analysis.
    """

    origin: str
    inputs: dict[str, tp.Any]
    request: RemixRequest | GenerateRequest
    key: str
    song_digest: str | None

    @property
    def folder(self) -> str:
        """The name of its output folder: readable, and unique by its key."""
        song = self.inputs.get("music_input")
        name = Path(song).stem if song is not None else "generation"
        prompt = re.sub(r"[^a-z0-9]+", "-", (self.inputs.get("prompt") or "").lower()).strip("-")[:32]
        return "-".join(part for part in (_safe(name)[:40], prompt, self.key[:8]) if part)

    def shown_inputs(self) -> dict[str, tp.Any]:
        """``inputs`` as JSON values (paths as text)."""
        return {name: str(value) if isinstance(value, Path) else value for name, value in self.inputs.items()}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "song"


def parse_value(name: str, text: str) -> tp.Any:
    """An input given as text (``-i NAME=VALUE``, a CSV cell) as its type: ``"3"`` is 3 for
    ``seed``, ``"true"``/``"false"`` (also 1/0, yes/no) for flags; ``""`` is not given (None)."""
    kind = _input_type(name)
    text = text.strip()
    if text == "":
        return None
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
    elif kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    else:
        return kind(text)
    raise InputError(f"{name} must be {_TYPE_NAMES[kind]}, got {text!r}")


def _input_type(name: str) -> type:
    if name not in INPUT_TYPES:
        close = difflib.get_close_matches(name, [*INPUT_TYPES, *ALIASES], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown input {name!r}{hint}; the inputs are the predictor's: "
                         f"{', '.join(INPUT_TYPES)}")
    return INPUT_TYPES[name]


def to_request(inputs: tp.Mapping[str, tp.Any]) -> RemixRequest | GenerateRequest:
    """The request the predictor makes of these inputs (its names; absent ones at their
    defaults), every rule checked: a remix with ``music_input``, a generation without.

    Raises
    ------
    InputError
        As the predictor does, naming the input.
    """
    given = {name: value for name, value in inputs.items() if value is not None}
    remix = "music_input" in given
    check_request_kind({name: given.get(name, unset[0]) for name, unset in {**REMIX_ONLY, **GENERATION_ONLY}.items()},
                       remix=remix, song="a song")
    if given.get("seed") == -1:  # the predictor's "random", as unset
        del given["seed"]
    sampling = Sampling(**{name: given[name] for name in _SAMPLING if name in given})
    output = Output(**{field: given[name] for name, field in _OUTPUT.items() if name in given})
    if remix:
        return RemixRequest(song=Path(given["music_input"]), prompt=given.get("prompt"), sampling=sampling,
                            output=output, **{name: given[name] for name in _REMIX if name in given})
    audio = given.get("input_audio")
    return GenerateRequest(audio=None if audio is None else Path(audio), sampling=sampling, output=output,
                           **{name: given[name] for name in _GENERATE if name in given})


def find_songs(paths: tp.Sequence[Path], *, outside: Path | None = None) -> list[Path]:
    """Files as given, and the audio files (by suffix, sorted) anywhere under folders, except
    hidden ones and those under ``outside`` (the batch's own outputs, when it writes them inside
    a folder of songs)."""
    skip = None if outside is None else outside.resolve()
    songs: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts)
                           and (skip is None or not p.resolve().is_relative_to(skip)))
            if not found:
                raise InputError(f"{path}: no audio file in this folder ({', '.join(sorted(AUDIO_SUFFIXES))})")
            songs += found
        else:
            songs.append(path)
    return songs


def sweep_jobs(songs: tp.Sequence[Path], prompts: tp.Sequence[str],
               options: tp.Sequence[tuple[str, tp.Any]]) -> list[tuple[str, dict[str, tp.Any]]]:
    """Every combination of the songs, the prompts and each input's values, in that order.

    Parameters
    ----------
    songs : list of Path
        Songs to remix; none: generations.
    prompts : list of str
        None: the jobs take ``prompt`` from ``options`` if any.
    options : list of (name, value)
        Inputs in the order given; a name given several times is swept over its values.

    Returns
    -------
    list of (origin, inputs)
    """
    axes: dict[str, list[tp.Any]] = {}
    if songs:
        axes["music_input"] = list(songs)
    if prompts:
        axes["prompt"] = list(prompts)
    for name, value in options:
        axes.setdefault(name, []).append(value)
    combos: list[dict[str, tp.Any]] = [{}]
    for name, values in axes.items():
        combos = [{**combo, name: value} for combo in combos for value in values]
    return [(f"sweep job {index}", combo) for index, combo in enumerate(combos, 1)]


def read_job_file(path: Path, defaults: tp.Mapping[str, tp.Any]) -> list[tuple[str, dict[str, tp.Any]]]:
    """The jobs of a JSON Lines (``.jsonl``) or CSV (``.csv``) file, one per line, with
    ``defaults`` for the inputs a line does not give; relative file paths are read from the
    file's folder.

    Raises
    ------
    InputError
        Naming the line, for a line that is not a JSON object, a CSV column or key that is no
        input, or a value that is not of its input's type.
    """
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise InputError(f"{path}: a job file is JSON Lines (.jsonl) or CSV (.csv)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read it ({error})") from None
    rows = _csv_rows(path, text) if suffix == ".csv" else _jsonl_rows(path, text)
    jobs = []
    for origin, row in rows:
        try:
            inputs = {ALIASES.get(name, name): value for name, value in row.items()}
            if len(inputs) < len(row):
                raise InputError("give the song as song or music_input, not both")
            for name, value in inputs.items():
                _input_type(name)
                if name in FILE_INPUTS and value is not None:
                    if not isinstance(value, (str, Path)) or not str(value):
                        raise InputError(f"{name} must be a file name, got {value!r}")
                    inputs[name] = path.parent / value
            jobs.append((origin, {**defaults, **{k: v for k, v in inputs.items() if v is not None}}))
        except InputError as error:
            raise InputError(f"{origin}: {error}") from None
    return jobs


def _jsonl_rows(path: Path, text: str) -> tp.Iterator[tuple[str, dict[str, tp.Any]]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        origin = f"{path.name} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{origin}: not JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{origin}: a job is a JSON object, e.g. {{\"song\": \"a.wav\", \"prompt\": \"jazz\"}}")
        yield origin, row


def _csv_rows(path: Path, text: str) -> tp.Iterator[tuple[str, dict[str, tp.Any]]]:
    reader = csv.DictReader(text.splitlines())
    for name in reader.fieldnames or []:
        try:
            _input_type(ALIASES.get(name.strip(), name.strip()))
        except InputError as error:
            raise InputError(f"{path.name} line 1: column {error}") from None
    for row in reader:
        origin = f"{path.name} line {reader.line_num}"
        if None in row:
            raise InputError(f"{origin}: more cells than the header has columns")
        try:
            yield origin, {name.strip(): parse_value(ALIASES.get(name.strip(), name.strip()), value or "")
                           for name, value in row.items()}
        except InputError as error:
            raise InputError(f"{origin}: {error}") from None


@dataclass
class Plan:
    """A batch's jobs, checked.

    Attributes
    ----------
    jobs : list of Job
        The valid jobs; a job given again (same key) once.
    errors : list of str
        One message per bad job, naming its origin: the batch must not run.
    repeats : list of str
        The jobs dropped as repeats of an earlier one.
    """

    jobs: list[Job]
    errors: list[str]
    repeats: list[str]


def plan(rows: tp.Sequence[tuple[str, dict[str, tp.Any]]]) -> Plan:
    """Check every job and key it; nothing runs."""
    result = Plan([], [], [])
    digests: dict[Path, str] = {}
    seen: dict[str, str] = {}
    for origin, inputs in rows:
        try:
            request = to_request(inputs)
            files = {name: Path(inputs[name]) for name in FILE_INPUTS if inputs.get(name) is not None}
            for name, file in files.items():
                if not file.is_file():
                    raise InputError(f"{'song' if name == 'music_input' else name} {str(file)!r}: "
                                     f"{'no such file' if not file.exists() else 'not a file'}")
                if file not in digests:
                    digests[file] = file_digest(file)
        except (InputError, TypeError) as error:  # a JSON value of a type no rule expected: still the line's
            result.errors.append(f"{origin}: {error}")
            continue
        key = job_key(request, {name: digests[file] for name, file in files.items()})
        if key in seen:
            result.repeats.append(f"{origin} is the same job as {seen[key]} (same song content and inputs): "
                                  f"it runs once")
            continue
        seen[key] = origin
        song = files.get("music_input")
        result.jobs.append(Job(origin=origin, inputs={n: v for n, v in inputs.items() if v is not None},
                               request=request, key=key, song_digest=None if song is None else digests[song]))
    return result


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise InputError(f"{path}: cannot read it ({error.strerror})") from None
    return digest.hexdigest()


def job_key(request: RemixRequest | GenerateRequest, digests: tp.Mapping[str, str]) -> str:
    """16 hex digits of the request (every field, defaults included) with its files replaced by
    their content digests (``digests`` by input name)."""
    fields = dataclasses.asdict(request)
    fields["song" if isinstance(request, RemixRequest) else "audio"] = (
        digests.get("music_input") if isinstance(request, RemixRequest) else digests.get("input_audio"))
    text = json.dumps({"kind": type(request).__name__, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
