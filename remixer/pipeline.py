"""The two requests the product serves, end to end: remix a song, or generate from scratch.

Remix (:meth:`Pipeline.remix`)::

    song ─ load ─► separate ONCE ─► stems ─┬─► BTC on voc+bass+oth ► chord segments ─┐
                                          ├─► beats of the song (stems reused)      │
                                          └─► vocals ─────────────────────┐         ▼
            prompt (+ bpm) ──────────────────────────────► MusicGen Chord (audio chords)
                                                                          │         │
                               beats of the instrumental (no separation) ◄┼─────────┘
                                          ▼                               ▼
                               beat-sync (WSOLA) ─────────────────► mix ─► normalize ─► export

With ``section_prompts`` the instrumental is generated in windows that follow the song's parts,
each with its own prompt (:mod:`remixer.sections`); ``analysis.json`` lists the windows.

Generation (:meth:`Pipeline.generate`): text only, text chords, chords read from an audio file
(separated once), a melody to follow (melody models) or an audio prompt to continue.

A new tempo or key (``target_bpm``, ``key_shift``) moves the vocals, beats and chords right after
the song's analysis (:mod:`remixer.transform`), so generation, beat-sync and the mix all work on
the remix's timeline; ``return_analysis`` also draws ``analysis.png`` (:mod:`remixer.plot`).

Every request writes only inside the directory it is given (the predictor makes one per
request), output names are distinct, and each stage is logged with its duration. Requests
(:mod:`remixer.requests`) are validated when they are built, before any model runs.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
import typing as tp
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from btc.labels import ChordSegment
from btc.recognizer import ChordRecognizer
from remixer import audio as audio_io
from remixer.analysis import Analyzer, make_analyzer
from remixer.beats import Beats, TempoPrior
from remixer.beatsync import FALLBACK_THRESHOLD, beat_sync, default_threshold
from remixer.cancellation import CancelToken
from remixer.chords import AudioChords, TextChords
from remixer.generation import AudioClip, GenerationParams, Generator, ModelCache
from remixer.mixing import mix
from remixer.musicgen.loaders import checkpoint_btc_weights
from remixer.plot import AnalysisPlot, write_analysis_png
from remixer.requests import (CHORD_VERSIONS, DEFAULT_MAX_DURATION, GenerateRequest, InputError, Output,
                              RemixRequest, SectionPrompts)
from remixer.sections import Window, plan_windows, song_parts, stride_plan
from remixer.separation import Separator
from remixer.transform import Transform, scale_beats, transform_audio, transform_chords, transform_stems
from remixer.weights import WeightsStore

logger = logging.getLogger(__name__)

# Generation of a remix's instrumental at less than this is not a song (and no window of chords).
MIN_SONG_SECONDS = 1.0
_BTC_WEIGHTS = {True: "btc-model-large-voca", False: "btc-model"}


def load_song(path: Path, max_duration: float) -> tuple[np.ndarray, int]:
    """Decode the song to remix (at most stereo) and refuse one too short to remix; the CLI calls
    it too, to fail before any model loads."""
    song, rate = _client_audio(path, max_duration)
    if song.shape[1] < MIN_SONG_SECONDS * rate:
        raise InputError(f"{path}: the song lasts {song.shape[1] / rate:.2f} s; "
                         f"at least {MIN_SONG_SECONDS:g} s is needed to remix it")
    return song, rate


def load_clip(request: GenerateRequest, max_duration: float) -> AudioClip:
    """Decode ``request.audio`` (at most stereo) and cut its ``audio_start``-``audio_end`` part;
    the CLI calls it too, to fail before any model loads."""
    wav, rate = _client_audio(request.audio, max_duration)
    total = wav.shape[1] / rate
    end = total if request.audio_end in (None, -1) else min(request.audio_end, total)
    if request.audio_start >= total:
        raise InputError(f"{request.audio}: audio_start {request.audio_start} s is past the end "
                         f"of the audio ({total:.2f} s)")
    piece = wav[:, int(request.audio_start * rate):int(round(end * rate))]
    if piece.shape[1] == 0:
        raise InputError(f"audio_start {request.audio_start} s to audio_end {end} s holds no sample of "
                         f"{request.audio}")
    return AudioClip(piece, rate)


def _client_audio(path: Path, max_duration: float) -> tuple[np.ndarray, int]:
    """A file the client sent, decoded; one that cannot be used is the client's error."""
    try:
        return audio_io.load_audio(path, max_duration=max_duration, max_channels=2)
    except audio_io.AudioError as error:
        raise InputError(str(error)) from None


@dataclass
class Result:
    """What a request produced: output files (main first), the seed, per-stage seconds."""

    outputs: list[Path]
    seed: int
    timings: dict[str, float]
    analysis: dict[str, tp.Any] | None = None


@dataclass
class Models:
    """Every model the pipeline uses, loaded once and shared by all requests.

    Build with :meth:`load`; the chord/melody LMs, T5 and EnCodec are held by ``generators``
    (loaded per version on first use, or up front via ``preload``).
    """

    store: WeightsStore
    separator: Separator
    analyzer: Analyzer
    generators: ModelCache
    recognizers: dict[bool, ChordRecognizer]
    _checkpoint_recognizers: dict[str, ChordRecognizer] = field(default_factory=dict, repr=False)
    _recognizer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, store: WeightsStore | None = None, *, device: str | None = None,
             analysis_backend: str = "auto", preload: tp.Sequence[str] = ("stereo-chord",),
             decoder: str | None = None) -> Models:
        """Load (and, online, fetch) the models of the default remix.

        ``decoder`` is MusicGen's decoding loop (:class:`~remixer.generation.ModelCache`;
        default ``$REMIXER_DECODE``, else ``auto``: static on CUDA).

        Raises ``remixer.weights.MissingWeightsError`` naming any file that is missing offline.
        """
        store = store or WeightsStore()
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        recognizers = {large: ChordRecognizer.from_checkpoint(store.path(name), device=device)
                       for large, name in _BTC_WEIGHTS.items()}
        models = cls(store=store,
                     separator=Separator.from_checkpoint(store.path("htdemucs"), device),
                     analyzer=make_analyzer(analysis_backend, weights=store, device=device),
                     generators=ModelCache(store, device=device, decoder=decoder),
                     recognizers=recognizers)
        for version in preload:
            models.generators.get(version)
            if version in CHORD_VERSIONS:
                models.chord_recognizer(version, large_voca=True)
        return models

    def chord_recognizer(self, version: str, *, large_voca: bool) -> ChordRecognizer:
        """The BTC that reads chords for chord model ``version``, as the published predictors ran it.

        170 classes: the copy inside the version's checkpoint (with the separate file's feature
        normalisation, which the checkpoint lacks); 25 classes: the separate ``btc_model.pt``.
        """
        if not large_voca:
            return self.recognizers[False]
        with self._recognizer_lock:
            if version not in self._checkpoint_recognizers:
                weights = checkpoint_btc_weights(self.store.path(f"musicgen-{version}"))
                self._checkpoint_recognizers[version] = ChordRecognizer.from_checkpoint(
                    self.store.path(_BTC_WEIGHTS[True]), device=str(self.recognizers[True].device),
                    weights=weights)
            return self._checkpoint_recognizers[version]

    def loaded_recognizers(self) -> list[ChordRecognizer]:
        """Every chord recogniser loaded so far (e.g. to warm them up)."""
        with self._recognizer_lock:
            return [*self.recognizers.values(), *self._checkpoint_recognizers.values()]


class Pipeline:
    """Runs remix and generation requests with shared :class:`Models`.

    Parameters
    ----------
    models : Models
    max_duration : float
        Longest song or input audio accepted, in seconds (checked before decoding it all).
    on_stage : callable, optional
        Called with each stage's name as it starts (the CLI's progress bar).
    """

    def __init__(self, models: Models, *, max_duration: float = DEFAULT_MAX_DURATION,
                 on_stage: tp.Callable[[str], None] | None = None) -> None:
        self.models = models
        self.max_duration = max_duration
        self.on_stage = on_stage

    def warmup(self) -> None:
        """Run every loaded model once on a second of silence, so the first request pays no
        one-time costs (CUDA kernel selection, lazy buffers, the chord grid of the default model)."""
        timer = _Timer(self.on_stage)
        silence = np.zeros((2, self.models.separator.sample_rate), dtype=np.float32)
        rate = self.models.separator.sample_rate
        with timer("warm-up"):
            self.models.separator.separate(silence, rate)
            for recognizer in self.models.loaded_recognizers():
                recognizer.recognize(silence, rate)
            self.models.analyzer.analyze(silence, rate)
            for generator in self.models.generators.loaded():
                generator.generate("", GenerationParams(duration=0.1, seed=0))

    def remix(self, request: RemixRequest, workdir: Path, cancel: CancelToken | None = None) -> Result:
        """Remix ``request.song``; outputs are written into ``workdir``.

        A set ``cancel`` token raises ``remixer.cancellation.Cancelled`` at the next stage,
        separation chunk or decoding step.
        """
        timer = _Timer(self.on_stage, cancel)
        sections = request.sections(self.models.analyzer.name)
        with timer("decode"):
            song, rate = load_song(request.song, self.max_duration)
        if sections is not None:
            sections.check_duration(song.shape[1] / rate)
        generator = self.models.generators.get(request.model_version)
        mbd = self.models.generators.mbd() if request.multi_band_diffusion else None
        with timer("separation"):
            stems = self.models.separator.separate(song, rate, cancel=cancel)
        with timer("chords"):
            recognizer = self.models.chord_recognizer(request.model_version,
                                                      large_voca=request.large_chord_voca)
            chords = recognizer.recognize(stems.chord_source, rate)
        with timer("analysis (song)"):
            beats = self.models.analyzer.analyze(song, rate, stems=stems)
        # From here on the song's timeline and key are the remix's (see remixer.transform).
        transform = Transform.for_song(beats.bpm, request.target_bpm, request.key_shift)
        song_beats, song_chords, vocals, harmony = beats, chords, stems.vocals, stems.chord_source
        if not transform.identity:
            with timer("transform"):
                beats, chords = scale_beats(beats, transform), transform_chords(chords, transform)
                if request.return_stems:
                    stems = transform_stems(stems, transform)
                    vocals, harmony = stems.vocals, stems.chord_source
                else:
                    # Beat-sync tells the bar phase by the song's harmony on the remix's timeline
                    # and in its key, so the harmony moves with the vocals.
                    vocals = transform_audio(stems.vocals, rate, transform)
                    harmony = transform_audio(stems.chord_source, rate, transform)
        description = _with_bpm(request.prompt, beats.bpm)
        duration = song.shape[1] * transform.ratio / rate
        logger.info("remixing %.1f s at %s BPM with %d chord segments", duration,
                    "unknown" if beats.bpm is None else f"{beats.bpm:.1f}", len(chords))
        logger.info("description given to the model: %r", description)
        if sections is not None:
            sections = sections.scaled(transform.ratio)
        plan = _window_plan(generator, sections, request.prompt, beats, duration)
        with timer("generation"):
            generated = generator.generate(description, GenerationParams.of(request.sampling, duration),
                                           chords=AudioChords(chords),
                                           chroma_coefficient=request.chroma_coefficient, mbd=mbd,
                                           plan=plan, cancel=cancel)
        out_rate = max(rate, generated.sample_rate)
        instrumental = audio_io.resample(generated.audio, generated.sample_rate, out_rate)
        with timer("analysis (instrumental)"):
            # Generated at the song's tempo and in its bars: other tempo octaves are errors.
            generated_beats = self.models.analyzer.analyze(instrumental, out_rate,
                                                           prior=TempoPrior.of(beats))
        threshold = reach = request.beat_sync_threshold
        if threshold is None or threshold == -1:
            threshold = default_threshold(beats.bpm)
            # The audio may find a fast song's take further off than 1.1 beats (beatsync).
            reach = max(threshold, FALLBACK_THRESHOLD)
        out_length = int(round(duration * out_rate))
        with timer("beat-sync"):
            synced = beat_sync(instrumental, out_rate, generated_beats.downbeats, beats.downbeats,
                               out_length, threshold=threshold,
                               generated_beats=generated_beats.beats, reference_beats=beats.beats,
                               reference_audio=(harmony, rate), reach=reach)
        logger.info("beat-sync: %s", synced.reason)
        with timer("mix"):
            vocals = audio_io.resample(vocals, rate, out_rate)
            mixed = mix(synced.audio, vocals, out_rate)
        if not mixed.vocals_used:
            logger.info("vocals left out: their level (%.1f dBFS) is separation residue, not singing",
                        mixed.vocal_level_db)
        analysis = {"song": song_beats.to_dict(), "instrumental": generated_beats.to_dict(),
                    "chords": [_segment_dict(s) for s in song_chords], "seed": generated.seed,
                    "transform": {"target_bpm": request.target_bpm, "stretch_ratio": transform.ratio,
                                  "key_shift": transform.semitones, "bpm": beats.bpm,
                                  "downbeats": [float(t) for t in beats.downbeats],
                                  "chords": [_segment_dict(s) for s in chords]},
                    "beat_sync": {"threshold_s": threshold, "matched_downbeats": synced.n_matched,
                                  "warped": synced.warped, "method": synced.method,
                                  "confidence": synced.confidence, "reason": synced.reason},
                    "mix": {"vocals_used": mixed.vocals_used,
                            "vocal_level_db": None if math.isinf(mixed.vocal_level_db) else mixed.vocal_level_db},
                    "prompt": request.prompt, "description": description,
                    "windows": [window.to_dict() for window in plan]}
        with timer("export"):
            outputs = [self._export(mixed.audio, out_rate, workdir / "remix", request.output)]
            if request.return_instrumental:
                outputs.append(self._export(synced.audio, out_rate, workdir / "instrumental",
                                            request.output))
            if request.return_stems:
                outputs += [self._export(stem, rate, workdir / f"stem-{name}", request.output,
                                         normalize=False)
                            for name, stem in stems.as_dict().items()]
            if request.return_analysis:
                outputs.append(_write_json(workdir / "analysis.json", analysis))
                outputs.append(write_analysis_png(workdir / "analysis.png", AnalysisPlot.of_remix(
                    song, rate, beats, chords, generated_beats.downbeats, synced, out_rate,
                    title=f"{description} (length x{transform.ratio:.3f}, key {transform.semitones:+d})")))
        return Result(outputs=outputs, seed=generated.seed, timings=timer.seconds, analysis=analysis)

    def generate(self, request: GenerateRequest, workdir: Path, cancel: CancelToken | None = None) -> Result:
        """Generate from text, text chords, an audio's chords or melody, or continue an audio
        (``cancel``: as in :meth:`remix`)."""
        timer = _Timer(self.on_stage, cancel)
        generator = self.models.generators.get(request.model_version)
        mbd = self.models.generators.mbd() if request.multi_band_diffusion else None
        clip = None
        if request.audio is not None:
            with timer("decode"):
                clip = load_clip(request, self.max_duration)
        chords = melody = prompt = None
        if request.text_chords is not None:
            chords = TextChords(request.text_chords, request.bpm, request.time_sig)
        if clip is not None:
            if request.continuation:
                prompt = clip
            elif generator.takes_chords:
                with timer("separation"):
                    stems = self.models.separator.separate(clip.samples, clip.sample_rate, cancel=cancel)
                with timer("chords"):
                    recognizer = self.models.chord_recognizer(request.model_version,
                                                              large_voca=request.large_chord_voca)
                    chords = AudioChords(recognizer.recognize(stems.chord_source, clip.sample_rate))
            else:
                melody = clip
        description = request.prompt or ""
        if generator.takes_chords:
            description = _chord_description(description, request.time_sig, request.bpm)
        logger.info("description given to the model: %r", description)
        with timer("generation"):
            generated = generator.generate(description, GenerationParams.of(request.sampling, request.duration),
                                           chords=chords, chroma_coefficient=request.chroma_coefficient,
                                           melody=melody, prompt=prompt, mbd=mbd, cancel=cancel)
        with timer("export"):
            path = self._export(generated.audio, generated.sample_rate, workdir / "generated",
                                request.output)
        return Result(outputs=[path], seed=generated.seed, timings=timer.seconds,
                      analysis={"seed": generated.seed, "description": description})

    @staticmethod
    def _export(wav: np.ndarray, rate: int, stem: Path, output: Output, *, normalize: bool = True) -> Path:
        mp3 = audio_io.mp3_settings(rate)
        if output.format == "mp3" and mp3.sample_rate != rate:
            # mp3 stores 8-48 kHz only: a 96 kHz song's mp3 is at 48 kHz.
            wav, rate = audio_io.resample(wav, rate, mp3.sample_rate), mp3.sample_rate
        return audio_io.export_audio(wav, rate, stem.with_suffix(f".{output.format}"),
                                     strategy=output.normalization if normalize else None,
                                     loudness_compressor=normalize, mp3_bitrate=mp3.bitrate)


def _with_bpm(prompt: str, bpm: float | None) -> str:
    """The published Remixer's description: ``"<prompt>, bpm : <int(bpm)>"`` (truncated, as
    ``int`` does), or the prompt alone when the tempo is unknown."""
    if bpm is None:
        return prompt
    return f"{prompt}, bpm : {int(bpm)}" if prompt else f"bpm : {int(bpm)}"


def _chord_description(prompt: str, time_sig: str, bpm: float | None) -> str:
    """The published MusicGen Chord description, character for character, as the chord models
    were trained: ``"<prompt>, <time_sig>"`` then ``", bpm : <bpm as a float>"`` when a tempo is
    given (``"k pop, 4/4, bpm : 140.0"``), whatever the chord source."""
    description = f"{prompt}, {time_sig}" if prompt else time_sig
    if bpm is None:
        return description
    return f"{description}, bpm : {float(bpm)}" if description else str(float(bpm))


def _window_plan(generator: Generator, sections: SectionPrompts | None, prompt: str, beats: Beats,
                 duration: float) -> tuple[Window, ...]:
    """The remix's generation windows: audiocraft's fixed stride, or following the song's parts
    when there are section prompts (:mod:`remixer.sections`)."""
    sizes = dict(window=generator.window, stride=generator.extend_stride,
                 frame_rate=generator.model.frame_rate)
    if sections is None:
        return stride_plan(duration, _with_bpm(prompt, beats.bpm), **sizes)
    parts = song_parts(sections, prompt, duration=duration, sections=beats.sections,
                       downbeats=beats.downbeats, describe=lambda text: _with_bpm(text, beats.bpm))
    return plan_windows(parts, **sizes)


def _segment_dict(segment: ChordSegment) -> dict[str, tp.Any]:
    return {"start": round(segment.start, 3), "end": round(segment.end, 3), "label": segment.label}


def _write_json(path: Path, data: dict[str, tp.Any]) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


class _Timer:
    """Times named stages and logs each one as it ends (Cog streams logs to the user); a
    cancelled request stops before its next stage."""

    def __init__(self, on_stage: tp.Callable[[str], None] | None = None,
                 cancel: CancelToken | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.on_stage = on_stage
        self.cancel = cancel

    @contextmanager
    def __call__(self, stage: str) -> tp.Iterator[None]:
        if self.cancel is not None:
            self.cancel.check()
        logger.info("%s ...", stage)
        if self.on_stage is not None:
            self.on_stage(stage)
        start = time.perf_counter()
        yield
        self.seconds[stage] = time.perf_counter() - start
        logger.info("%s done in %.2f s", stage, self.seconds[stage])
