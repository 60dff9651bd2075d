"""The two requests the product serves, end to end: remix a song, or generate from scratch.

Remix (:meth:`Pipeline.remix`)::

    song ─ load ─► separate ONCE ─► stems ─┬─► BTC on voc+bass+oth, per window ─────┐
                                          ├─► beats of the song (stems reused)      │
                                          └─► vocals ─────────────────────┐         ▼
            prompt (+ bpm) ──────────────────────────────► MusicGen Chord (audio chords)
                                                                          │         │
                               beats of the instrumental (no separation) ◄┼─────────┘
                                          ▼                               ▼
                               beat-sync (WSOLA) ─────────────────► mix ─► normalize ─► export

With ``section_prompts`` the instrumental is generated in windows that follow the song's parts,
each with its own prompt (:mod:`remixer.sections`); ``analysis.json`` lists the windows.

Chords are read once for the whole song (``analysis.json``'s ``chords``, the picture) and once
per generation window from that window's slice of the same stems (what conditions the window, as
the published conditioner read them; ``analysis.json``'s ``windows``).

Remixes of one song can share its reading: :meth:`Pipeline.analyze_song` returns the decoded
song, its stems, chords and beats as a :class:`SongAnalysis`, which :meth:`Pipeline.remix` takes
instead of separating the song again (``python -m remixer batch``, :mod:`remixer.batch`).

Generation (:meth:`Pipeline.generate`): text only, text chords, chords read from an audio file
(separated once, read per window), a melody to follow (melody models) or an audio prompt to
continue.

A new tempo or key (``target_bpm``, ``key_shift``) moves the vocals, beats and chords right after
the song's analysis (:mod:`remixer.transform`), so generation, beat-sync and the mix all work on
the remix's timeline; ``return_analysis`` also draws ``analysis.png`` (:mod:`remixer.plot`) and
writes ``analysis.html`` (:mod:`remixer.page`), the same analysis as an interactive page with players.

Every request writes only inside the directory it is given (the predictor makes one per
request), output names are distinct, and each stage is logged with its duration. Requests
(:mod:`remixer.requests`) are validated when they are built, before any model runs.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import typing as tp
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
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
from remixer.chords import TextChords, WindowChords, read_window_chords
from remixer.client_audio import load_clip, load_song
from remixer.generation import AudioClip, GenerationParams, Generator, ModelCache
from remixer.mixing import mix
from remixer.musicgen.loaders import checkpoint_btc_weights
from remixer.page import Track, write_analysis_page
from remixer.plot import AnalysisPlot, write_analysis_png
from remixer.progress import ProgressListener, StageClock
from remixer.requests import (CHORD_VERSIONS, DEFAULT_MAX_DURATION, GenerateRequest, InputError, Output,
                              RemixRequest, SectionPrompts)
from remixer.sections import Window, plan_windows, song_parts, stride_plan
from remixer.separation import Separator, Stems
from remixer.smoke import NOISE, check_smoke_version, smoke_from_env, smoke_weights
from remixer.tempo import song_prior, tempo_alternative
from remixer.threads import ThreadSettings, configure_threads
from remixer.transform import Transform, scale_beats, transform_audio, transform_chords, transform_stems
from remixer.weights import MissingWeightsError, WeightsStore
from remixer.weights.needs import BTC_WEIGHTS, weights_needed

if tp.TYPE_CHECKING:
    from audiocraft.models.multibanddiffusion import MultiBandDiffusion

logger = logging.getLogger(__name__)



class ModelUnavailable(MissingWeightsError):
    """A model the request asks for has no weights here: ``choice`` names it as the client asked
    (``"model_version 'chord-large'"``, ``"multi_band_diffusion"``), ``instead`` what the client
    can do; the message adds the missing files and how to fetch them (for whoever runs the server).
    """

    def __init__(self, choice: str, instead: str, missing: MissingWeightsError) -> None:
        super().__init__(f"{choice} is not available: {missing}")
        self.choice = choice
        self.instead = instead


def chord_reader(request: RemixRequest) -> str:
    """Which BTC reads a remix's chords (:meth:`Models.chord_recognizer`): the copy inside the
    version's chord checkpoint (170 classes) or the separate 25-class model. Remixes of one
    song with the same reader can share its :class:`SongAnalysis`."""
    return f"{request.model_version} (170 classes)" if request.large_chord_voca else "btc (25 classes)"


@dataclass(frozen=True, eq=False)
class SongAnalysis:
    """A song read once for any number of remixes: decoded, separated ONCE, its chords and beats.

    Made by :meth:`Pipeline.analyze_song`; :meth:`Pipeline.remix` takes it instead of reading the
    song again, so K remixes of one song cost one separation and K generations
    (``python -m remixer batch``).

    Attributes
    ----------
    audio : np.ndarray
        The decoded song, ``(channels, samples)`` float32 (at most stereo), at ``sample_rate``.
    stems : Stems
        Its htdemucs stems, at ``sample_rate``.
    beats : Beats
        The song's beats, downbeats and sections, read at ``song_bpm`` where the client stated it.
    tempo : dict
        How its tempo was found (``analysis.json``'s ``tempo``).
    chords : list of ChordSegment
        Its chords, read by ``chord_reader`` (:func:`chord_reader`).
    timings : dict
        Seconds of the stages that made it.
    window_chords : dict
        The chords read per generation window by the remixes that took it, by window plan and
        transform: remixes that differ only in prompt or sampling read them once.
    """

    audio: np.ndarray
    sample_rate: int
    stems: Stems
    beats: Beats
    tempo: dict[str, tp.Any]
    chords: list[ChordSegment]
    chord_reader: str
    song_bpm: float | None
    timings: dict[str, float]
    window_chords: dict[tuple, WindowChords] = field(default_factory=dict, repr=False)

    @property
    def duration(self) -> float:
        return self.audio.shape[1] / self.sample_rate

    def check_reusable(self, request: RemixRequest, sections: SectionPrompts | None) -> None:
        """Refuse a remix whose chords another BTC must read (a bug of the caller's), and
        section prompts past the song's end (the client's)."""
        if chord_reader(request) != self.chord_reader:
            raise ValueError(f"this song analysis has the chords of {self.chord_reader}; the "
                             f"remix reads them with {chord_reader(request)}")
        if request.song_bpm != self.song_bpm:
            raise ValueError(f"this song analysis read the beats with song_bpm={self.song_bpm}; the "
                             f"remix states song_bpm={request.song_bpm}")
        if sections is not None:
            sections.check_duration(self.duration)


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
    (loaded per version on first use, or up front via ``preload``). ``smoke`` is true for the
    tiny random models of the smoke switch (:mod:`remixer.smoke`): their music is noise.
    """

    store: WeightsStore
    separator: Separator
    analyzer: Analyzer
    generators: ModelCache
    recognizers: dict[bool, ChordRecognizer]
    smoke: bool = False
    threads: ThreadSettings | None = None
    _checkpoint_recognizers: dict[str, ChordRecognizer] = field(default_factory=dict, repr=False)
    _recognizer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _scratch: tp.Any = field(default=None, repr=False)  # keeps the smoke weights' directory

    @classmethod
    def load(cls, store: WeightsStore | None = None, *, device: str | None = None,
             analysis_backend: str = "auto", preload: tp.Sequence[str] = ("stereo-chord",),
             decoder: str | None = None, threads: int | None = None, smoke: bool | None = None) -> Models:
        """Load (and, online, fetch) the models of the default remix.

        Every file they need is looked at first, so that one error lists all the missing ones
        with their sizes and the command that fetches them, before anything loads. With
        ``analysis_backend="auto"`` All-In-One's files are optional: without them beats are read
        by madmom (logged).

        ``decoder`` is MusicGen's decoding loop (:class:`~remixer.generation.ModelCache`;
        default ``$REMIXER_DECODE``, else ``auto``: static on CUDA). ``threads`` sets the CPU
        threads of torch and the BLAS libraries for the whole process (default
        ``$REMIXER_THREADS``, else the cores available to it: :mod:`remixer.threads`).
        ``smoke`` (default ``$REMIXER_SMOKE``) loads tiny random models built on the spot instead
        of ``store``'s weights (:mod:`remixer.smoke`): every stage runs, the music is noise.

        Raises ``remixer.weights.MissingWeightsError`` (offline) or ``DownloadError`` (online)
        naming every file that is missing.
        """
        settings = configure_threads(threads)
        scratch = None
        smoke = smoke_from_env() if smoke is None else smoke
        if smoke:
            if store is not None:
                raise ValueError("the smoke switch builds its own tiny weights: give no store")
            built = smoke_weights()
            store, scratch = built.store, built.directory
            # The tiny cache has no All-In-One: madmom's real model reads real beats.
            analysis_backend = "madmom" if analysis_backend == "auto" else analysis_backend
            for version in preload:
                check_smoke_version(version)
        store = store or WeightsStore()
        required, optional = weights_needed(preload, analysis_backend)
        store.require(required, optional=optional)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        recognizers = {large: ChordRecognizer.from_checkpoint(store.path(name), device=device)
                       for large, name in BTC_WEIGHTS.items()}
        models = cls(store=store,
                     separator=Separator.from_checkpoint(store.path("htdemucs"), device),
                     analyzer=make_analyzer(analysis_backend, weights=store, device=device),
                     generators=ModelCache(store, device=device, decoder=decoder),
                     recognizers=recognizers, smoke=smoke, threads=settings, _scratch=scratch)
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
                    self.store.path(BTC_WEIGHTS[True]), device=str(self.recognizers[True].device),
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
    """

    def __init__(self, models: Models, *, max_duration: float = DEFAULT_MAX_DURATION) -> None:
        self.models = models
        self.max_duration = max_duration

    def warmup(self) -> None:
        """Run every loaded model once on a second of silence, so the first request pays no
        one-time costs (CUDA kernel selection, lazy buffers, the chord grid of the default model)."""
        timer = _Timer()
        silence = np.zeros((2, self.models.separator.sample_rate), dtype=np.float32)
        rate = self.models.separator.sample_rate
        with timer("warm-up"):
            self.models.separator.separate(silence, rate)
            for recognizer in self.models.loaded_recognizers():
                recognizer.recognize(silence, rate)
            self.models.analyzer.analyze(silence, rate)
            for generator in self.models.generators.loaded():
                generator.generate("", GenerationParams(duration=0.1, seed=0))

    def analyze_song(self, request: RemixRequest, cancel: CancelToken | None = None, *,
                     separated: SongAnalysis | None = None,
                     progress: ProgressListener | None = None) -> SongAnalysis:
        """Decode ``request.song``, separate it once, read its beats and chords: what any number
        of remixes of that song share (``remix(..., song_analysis=...)``).

        Parameters
        ----------
        request : RemixRequest
            Its song, ``song_bpm``, and which BTC reads the chords (``model_version``,
            ``large_chord_voca``).
        cancel, progress
            As in :meth:`remix`.
        separated : SongAnalysis, optional
            An analysis of the same song (same content): its audio and stems are reused, its beats
            too where ``song_bpm`` is the same, and the chords are read with ``request``'s BTC.
        """
        return self._analyze_song(request, _Timer(progress, cancel), separated)

    def _analyze_song(self, request: RemixRequest, timer: _Timer, separated: SongAnalysis | None = None,
                      sections: SectionPrompts | None = None,
                      check_tempo: tp.Callable[[Beats], object] | None = None) -> SongAnalysis:
        """:meth:`analyze_song` under the remix's ``timer``; ``check_tempo`` is called with the
        song's beats as soon as they are read (the check of ``target_bpm``)."""
        stems = None
        if separated is None:
            with timer("decode"):
                song, rate = load_song(request.song, self.max_duration)
            if sections is not None:  # the client's error: before the separation, not after
                sections.check_duration(song.shape[1] / rate)
        else:
            song, rate, stems = separated.audio, separated.sample_rate, separated.stems
        if stems is None and self.models.analyzer.needs_stems:
            # All-In-One reads the stems: the song's tempo, and the check of target_bpm against
            # it, wait for the separation. madmom reads the mix and runs first.
            stems = self._separate(song, rate, timer)
        if separated is not None and separated.song_bpm == request.song_bpm:
            beats, tempo = separated.beats, separated.tempo
        else:
            with timer("analysis (song)"):
                beats = self.models.analyzer.analyze(song, rate, stems=stems, prior=song_prior(request.song_bpm))
                beats, tempo = _song_tempo(song, rate, beats, request.song_bpm)
        if check_tempo is not None:
            try:
                check_tempo(beats)
            except InputError as error:
                if stems is None:
                    raise
                raise InputError(f"{error} (All-In-One reads the tempo from the separated stems, so this "
                                 f"showed only after the separation; song_bpm would have it checked at "
                                 f"once)") from None
        if stems is None:
            stems = self._separate(song, rate, timer)
        with timer("chords"):
            recognizer = self.models.chord_recognizer(request.model_version,
                                                      large_voca=request.large_chord_voca)
            chords = recognizer.recognize(stems.chord_source, rate)
        return SongAnalysis(audio=song, sample_rate=rate, stems=stems, beats=beats, tempo=tempo,
                            chords=chords, chord_reader=chord_reader(request), song_bpm=request.song_bpm,
                            timings=dict(timer.seconds))

    def _separate(self, song: np.ndarray, rate: int, timer: _Timer) -> Stems:
        with timer("separation", "chunk") as token:
            return self.models.separator.separate(song, rate, cancel=token)

    def remix(self, request: RemixRequest, workdir: Path, cancel: CancelToken | None = None,
              progress: ProgressListener | None = None, *,
              song_analysis: SongAnalysis | None = None) -> Result:
        """Remix ``request.song``; outputs are written into ``workdir``.

        A set ``cancel`` token raises ``remixer.cancellation.Cancelled`` at the next stage,
        separation chunk or decoding step. ``progress`` is called with a
        :class:`~remixer.progress.Progress` as each stage starts and ends, and after every
        separation chunk and decoding step. ``song_analysis`` (from :meth:`analyze_song`, for this
        song, chord reader and ``song_bpm``) replaces the decode, separation, song analysis and
        chords stages.
        """
        timer = _Timer(progress, cancel)
        self._check_smoke(request.model_version)
        sections = request.sections(self.models.analyzer.name)
        generator, mbd = self._generation_models(request)
        if song_analysis is None:
            # A target tempo out of range fails as soon as the song's tempo is known.
            song_analysis = self._analyze_song(request, timer, sections=sections, check_tempo=lambda beats: (
                Transform.for_song(beats.bpm, request.target_bpm, request.key_shift)))
        else:
            song_analysis.check_reusable(request, sections)
        song, rate, stems = song_analysis.audio, song_analysis.sample_rate, song_analysis.stems
        beats, song_chords, tempo = song_analysis.beats, song_analysis.chords, song_analysis.tempo
        # From here on the song's timeline and key are the remix's (see remixer.transform).
        transform = Transform.for_song(beats.bpm, request.target_bpm, request.key_shift)
        song_beats, vocals, harmony = beats, stems.vocals, stems.chord_source
        chord_source = stems.chord_source  # chords are read on the song, then moved
        if not transform.identity:
            with timer("transform"):
                beats = scale_beats(beats, transform)
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
        if sections is not None:
            sections = sections.scaled(transform.ratio)
        plan = _window_plan(generator, sections, request.prompt, beats, duration)
        chords = song_chords if transform.identity else transform_chords(song_chords, transform)
        starts = tuple(w.start for w in plan)
        key = (starts, duration, generator.window, transform)  # one analysis has one chord reader
        window_chords = song_analysis.window_chords.get(key)
        if window_chords is None:
            with timer("chords per window"):
                # What conditions each window: its own 30 s of the stems, read as the published
                # conditioner read them (the song's chords above are for analysis.json and the picture).
                recognizer = self.models.chord_recognizer(request.model_version,
                                                          large_voca=request.large_chord_voca)
                window_chords = read_window_chords(recognizer, chord_source, rate, list(starts),
                                                   duration=duration, window=generator.window,
                                                   transform=transform)
            song_analysis.window_chords[key] = window_chords
        else:
            logger.info("chords of the %d windows: as read for an earlier remix of this song", len(starts))
        logger.info("remixing %.1f s at %s BPM with %d chord segments", duration,
                    "unknown" if beats.bpm is None else f"{beats.bpm:g}", len(chords))
        logger.info("description given to the model: %r", description)
        with timer("generation", "step") as token:
            generated = generator.generate(description, GenerationParams.of(request.sampling, duration),
                                           chords=window_chords,
                                           chroma_coefficient=request.chroma_coefficient, mbd=mbd,
                                           plan=plan, cancel=token)
        out_rate = max(rate, generated.sample_rate)
        instrumental = audio_io.resample(generated.audio, generated.sample_rate, out_rate)
        with timer("analysis (instrumental)"):
            # Generated at the song's tempo and in its bars: other tempo octaves are errors.
            # Read at full scale: madmom's log spectrogram hears a -30 dB take as silence.
            generated_beats = self.models.analyzer.analyze(
                audio_io.normalize(instrumental, out_rate, "peak"), out_rate, prior=TempoPrior.of(beats))
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
            # The song's channels, or the model's where it has more: a stereo song keeps its
            # stereo vocals over a mono model's instrumental, a mono song gets a stereo model's.
            channels = max(song.shape[0], synced.audio.shape[0])
            backing = _with_channels(synced.audio, channels)
            vocals = _with_channels(audio_io.resample(vocals, rate, out_rate), channels)
            mixed = mix(backing, vocals, out_rate)
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
                    "prompt": request.prompt, "description": description, "tempo": tempo,
                    "windows": [{**window.to_dict(), **reading.to_dict()}
                                for window, reading in zip(plan, window_chords.readings)]}
        with timer("export"):
            outputs = [self._export(mixed.audio, out_rate, workdir / "remix", request.output)]
            if request.return_instrumental:
                outputs.append(self._export(backing, out_rate, workdir / "instrumental",
                                            request.output))
            if request.return_stems:
                outputs += [self._export(stem, rate, workdir / f"stem-{name}", request.output,
                                         normalize=False)
                            for name, stem in stems.as_dict().items()]
        if request.return_analysis:
            with timer("analysis files"):
                outputs.append(_write_json(workdir / "analysis.json", self._labelled(analysis)))
                picture = AnalysisPlot.of_remix(song, rate, beats, chords, generated_beats.downbeats, synced,
                                                out_rate, title=self._labelled_title(description), song_bpm=song_beats.bpm,
                                                key_shift=transform.semitones, windows=plan)
                outputs.append(write_analysis_png(workdir / "analysis.png", picture))
                # The players: the song on its own clock, the instrumental before and after beat-sync.
                outputs.append(write_analysis_page(workdir / "analysis.html", picture, [
                    Track("song", song, rate, timescale=transform.ratio), Track("remix", mixed.audio, out_rate),
                    Track("instrumental, after beat-sync", synced.audio, out_rate),
                    Track("instrumental, as generated", instrumental, out_rate)]))
        return Result(outputs=outputs, seed=generated.seed, timings=timer.seconds,
                      analysis=self._labelled(analysis))

    def generate(self, request: GenerateRequest, workdir: Path, cancel: CancelToken | None = None,
                 progress: ProgressListener | None = None) -> Result:
        """Generate from text, text chords, an audio's chords or melody, or continue an audio
        (``cancel``, ``progress``: as in :meth:`remix`)."""
        timer = _Timer(progress, cancel)
        self._check_smoke(request.model_version)
        generator, mbd = self._generation_models(request)
        clip = None
        if request.audio is not None:
            with timer("decode"):
                clip = AudioClip(*load_clip(request, self.max_duration))
        chords = melody = prompt = None
        if request.text_chords is not None:
            chords = TextChords(request.text_chords, request.bpm, request.time_sig)
        if clip is not None:
            if request.continuation:
                prompt = clip
            elif generator.takes_chords:
                with timer("separation", "chunk") as token:
                    stems = self.models.separator.separate(clip.samples, clip.sample_rate, cancel=token)
                with timer("chords"):
                    recognizer = self.models.chord_recognizer(request.model_version,
                                                              large_voca=request.large_chord_voca)
                    starts = [w.start for w in generator.stride_plan(request.duration, "")]
                    chords = read_window_chords(recognizer, stems.chord_source, clip.sample_rate, starts,
                                                duration=request.duration, window=generator.window)
            else:
                melody = clip
        description = request.prompt or ""
        if generator.takes_chords:
            description = _chord_description(description, request.time_sig, request.bpm)
        logger.info("description given to the model: %r", description)
        with timer("generation", "step") as token:
            generated = generator.generate(description, GenerationParams.of(request.sampling, request.duration),
                                           chords=chords, chroma_coefficient=request.chroma_coefficient,
                                           melody=melody, prompt=prompt, mbd=mbd, cancel=token)
        with timer("export"):
            # The published chord predictor normalised its output without the tanh compressor
            # (audio_write's default); the remix keeps it, as the published Remixer's mix did.
            path = self._export(generated.audio, generated.sample_rate, workdir / "generated",
                                request.output, compressor=False)
        return Result(outputs=[path], seed=generated.seed, timings=timer.seconds,
                      analysis=self._labelled({"seed": generated.seed, "description": description}))

    def _check_smoke(self, version: str) -> None:
        """With the smoke switch's tiny models: refuse a version they lack, and say it is noise."""
        if self.models.smoke:
            check_smoke_version(version)
            logger.warning("%s", NOISE)

    def _labelled_title(self, description: str) -> str:
        """The picture's and the page's title: the description, marked as noise in a smoke run."""
        return f"SMOKE RUN (noise from tiny random models): {description}" if self.models.smoke else description

    def _labelled(self, analysis: dict[str, tp.Any]) -> dict[str, tp.Any]:
        """``analysis`` with the smoke switch's warning first, when its tiny models made it."""
        return {"smoke": NOISE, **analysis} if self.models.smoke else analysis

    def _generation_models(self, request: RemixRequest | GenerateRequest) -> tuple[Generator, MultiBandDiffusion | None]:
        """The request's MusicGen model and, with ``multi_band_diffusion``, its MBD decoder.

        Raises
        ------
        ModelUnavailable
            Naming the input that asked for a model whose weights are missing.
        """
        try:
            generator = self.models.generators.get(request.model_version)
        except MissingWeightsError as error:
            raise ModelUnavailable(f"model_version {request.model_version!r}", "choose another model_version",
                                   error) from error
        if not request.multi_band_diffusion:
            return generator, None
        try:
            return generator, self.models.generators.mbd()
        except MissingWeightsError as error:
            raise ModelUnavailable("multi_band_diffusion", "turn it off", error) from error

    @staticmethod
    def _export(wav: np.ndarray, rate: int, stem: Path, output: Output, *, normalize: bool = True,
                compressor: bool = True) -> Path:
        mp3 = audio_io.mp3_settings(rate)
        if output.format == "mp3" and mp3.sample_rate != rate:
            # mp3 stores 8-48 kHz only: a 96 kHz song's mp3 is at 48 kHz.
            wav, rate = audio_io.resample(wav, rate, mp3.sample_rate), mp3.sample_rate
        return audio_io.export_audio(wav, rate, stem.with_suffix(f".{output.format}"),
                                     strategy=output.normalization if normalize else None,
                                     loudness_compressor=normalize and compressor,
                                     mp3_bitrate=mp3.bitrate)


def _with_channels(wav: np.ndarray, channels: int) -> np.ndarray:
    """``wav`` itself when it has ``channels``, else :func:`remixer.audio.to_channels` of it."""
    return wav if wav.shape[0] == channels else audio_io.to_channels(wav, channels)


def _song_tempo(song: np.ndarray, rate: int, beats: Beats,
                song_bpm: float | None) -> tuple[Beats, dict[str, tp.Any]]:
    """The song's beats at its tempo (the client's ``song_bpm`` when given, else as read) and the
    record of it for ``analysis.json``; warns when the other tempo octave is about as plausible
    (:mod:`remixer.tempo`)."""
    if song_bpm is not None:
        record = {"bpm": song_bpm, "source": "song_bpm", "read_bpm": beats.bpm, "alternative": None}
        return replace(beats, bpm=song_bpm), record
    alternative = None if beats.bpm is None else tempo_alternative(song, rate, beats)
    if alternative is not None:
        logger.warning("%s", alternative.message(beats.bpm))
    return beats, {"bpm": beats.bpm, "source": "analysis", "read_bpm": beats.bpm,
                   "alternative": None if alternative is None else alternative.to_dict(beats.bpm)}


def _with_bpm(prompt: str, bpm: float | None) -> str:
    """The published Remixer's description: ``"<prompt>, bpm : <bpm>"`` with the song's bpm in
    whole BPM (All-In-One's, :func:`remixer.beats.tempo_from_beats`; a requested tempo is
    rounded), or the prompt alone when the tempo is unknown."""
    if bpm is None:
        return prompt
    return f"{prompt}, bpm : {round(bpm)}" if prompt else f"bpm : {round(bpm)}"


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
    """Times named stages, reports their progress and logs one line as each ends (Cog streams
    logs to the user); a cancelled request stops before its next stage."""

    def __init__(self, progress: ProgressListener | None = None, cancel: CancelToken | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress
        self.cancel = cancel or CancelToken()

    @contextmanager
    def __call__(self, stage: str, unit: str = "") -> tp.Iterator[CancelToken]:
        """Run ``stage``; yields the token its work checks and reports its ``unit`` steps to."""
        self.cancel.check()
        logger.debug("%s ...", stage)
        clock = StageClock(stage, unit, self.progress)
        yield self.cancel.reporting(clock.step)
        self.seconds[stage] = clock.finish()
        logger.info("%s", clock.summary(self.seconds[stage]))
