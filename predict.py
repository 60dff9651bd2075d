"""Cog predictor: remix a song with MusicGen Chord, or generate music without one.

Inputs keep the published MusicGen Remixer's names, types and defaults; the MusicGen Chord /
Melody generation inputs (duration, text chords, melody, continuation) apply when no
``music_input`` is given. This file only maps inputs to validated requests: the work is in
:mod:`remixer.pipeline` (requests: :mod:`remixer.requests`).

Served to the public, the predictor reads only files the client sent: it fetches the URLs and data
URIs itself, into the request's own directory, with a deadline and a size cap
(:mod:`remixer.sent_files`); it stops a cancelled request's work at its next check
(:mod:`remixer.cancellation`), and removes each request's directory once Cog has taken the
outputs (:mod:`remixer.workdirs`). Only an :class:`~remixer.requests.InputError` is the client's
to read (with the files' paths replaced by the inputs' names); a model whose weights this server
lacks is named to the client as not available, with the missing files and how to fetch them
in the log only; any other failure is ours: it is logged with its traceback, and the client gets
a short message without server paths.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import pathlib
import sys

from cog import BasePredictor, Input, Path

from remixer import doctor
from remixer.cancellation import CancelToken
from remixer.memory import freeze_loaded_objects, release_request_memory
from remixer.pipeline import ModelUnavailable, Models, Pipeline, Result
from remixer.progress import ProgressLog
from remixer.requests import (DEFAULT_MAX_DURATION, GenerateRequest, InputError, Output, RemixRequest, Sampling,
                              check_request_kind)
from remixer.sent_files import FetchLimits, SentFile
from remixer.smoke import smoke_from_env
from remixer.weights import WeightsStore
from remixer.workdirs import RequestDirs

logger = logging.getLogger(__name__)

# What the client reads when the failure is ours (the log has the traceback).
INTERNAL_ERROR = ("internal error ({}): the prediction failed on the server, not because of the inputs; "
                  "the server's log has the details")
# Seconds a succeeded request's outputs stay for Cog to read (it reads them after predict returns).
_KEEP_OUTPUTS_S = 60.0
# `cog build` reads the inputs' choices, defaults and bounds from this file's text without running
# it: each must be a literal, or a name bound to one right here (an imported name fails the build
# or, as a default, silently becomes None), and each description one plain string literal.
# tests/server/test_cog_package.py checks them against remixer.requests and the README.
CHORD_VERSIONS = ("chord", "chord-large", "stereo-chord", "stereo-chord-large")
MELODY_VERSIONS = ("melody", "melody-large", "stereo-melody-large")
NORMALIZATIONS = ("loudness", "clip", "peak", "rms")
OUTPUT_FORMATS = ("wav", "mp3", "flac")


class Predictor(BasePredictor):
    def setup(self) -> None:
        """Log the doctor's report, then load every model of the default remix once (others load
        on first use, then stay). Where ``REMIXER_DEVICE=cuda`` (the Cog image) finds no usable
        GPU, fail with the doctor's findings instead of running on the CPU."""
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                            format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
        # The log is the client's only view of a run: each stage as it starts, every window too.
        logging.getLogger("remixer").setLevel(logging.DEBUG)
        store = WeightsStore()
        report = doctor.run_checks(store, quick=True)
        for line in report.lines():
            logger.info("doctor: %s", line)
        device = doctor.device_for(report)
        max_duration = float(os.environ.get("REMIXER_MAX_DURATION", DEFAULT_MAX_DURATION))
        default_version = os.environ.get("REMIXER_DEFAULT_VERSION", "stereo-chord")
        # REMIXER_SMOKE=1: tiny random models built on the spot (remixer.smoke), no weights read.
        self.pipeline = Pipeline(Models.load(None if smoke_from_env() else store, device=device,
                                             preload=(default_version,)), max_duration=max_duration)
        self.pipeline.warmup()
        self.dirs = RequestDirs(keep_s=float(os.environ.get("REMIXER_KEEP_OUTPUTS_S", _KEEP_OUTPUTS_S)))
        self.fetch_limits = FetchLimits.from_env()
        freeze_loaded_objects()  # so that each request's garbage is collected in microseconds

    async def predict(
        self,
        prompt: str | None = Input(description="Style of the music, e.g. 'bossa nova' or 'lofi hip hop, warm Rhodes' (at most 480 characters). Required for a remix.", default=None),
        section_prompts: str | None = Input(description="Remix: a prompt per part of the song, e.g. 'verse: nylon guitar, brushes; chorus: full band, horns' (All-In-One's sections: intro, verse, chorus, bridge, inst, solo, break, outro) or time ranges, e.g. '0:00-0:45: ambient pads; 0:45-: full band'. Parts without one use prompt.", default=None),
        # File inputs are pathlib.Path, not cog.Path: the schema still offers a file (a URL or an
        # upload) but coglet passes the URL or data URI on, and remixer.sent_files fetches it.
        music_input: pathlib.Path | None = Input(description="Song to remix. Its vocals are kept; the instrumental is regenerated in the prompt's style on the song's chords and beat-synced to its downbeats. Leave empty to generate music from scratch (see duration, text_chords, input_audio).", default=None),
        model_version: str = Input(description="Model. Chord models (remix and chord generation): stereo-chord, stereo-chord-large, chord, chord-large. Melody models (generation only, follow input_audio's melody): melody, melody-large, stereo-melody-large. Large and stereo models are slower.", default="stereo-chord", choices=CHORD_VERSIONS + MELODY_VERSIONS),
        multi_band_diffusion: bool = Input(description="Decode with Multi-Band Diffusion (better quality, slower). Mono models only.", default=False),
        normalization_strategy: str = Input(description="Output level: loudness (-14 LUFS), clip, peak or rms.", default="loudness", choices=NORMALIZATIONS),
        beat_sync_threshold: float | None = Input(description="Largest gap in seconds between a generated downbeat and the song's downbeat it is moved to. Unset or -1: 1.1 beats at the song's tempo.", default=None),
        target_bpm: float | None = Input(description="Remix: tempo of the remix, 40-240 BPM and within 0.5x-2x of the song's; the vocals are time-stretched to it (pitch kept). Unset: the song's tempo.", default=None, ge=40, le=240),
        song_bpm: float | None = Input(description="Remix: the song's tempo, 40-240 BPM, when you know it; the analysis reads the beats at it (e.g. a fast song read at half tempo; analysis.json warns when a read is doubtful). Unset: read from the song.", default=None, ge=40, le=240),
        key_shift: int = Input(description="Remix: semitones to move the key by, -12 to 12; the vocals are pitch-shifted (formants kept) and the chords transposed.", default=0, ge=-12, le=12),
        large_chord_voca: bool = Input(description="Read chords with the 170-class BTC vocabulary (7ths, dim, aug, sus...); off: 25 classes (major/minor).", default=True),
        chroma_coefficient: float = Input(description="Strength of the chord conditioning (chords from audio and from text alike).", default=1.0, ge=0.5, le=2.5),
        top_k: int = Input(description="Sample among the k most likely tokens.", default=250, ge=0),
        top_p: float = Input(description="Nucleus sampling mass; 0 uses top_k.", default=0.0, ge=0, le=1),
        temperature: float = Input(description="Sampling temperature; higher is more diverse.", default=1.0, ge=0),
        classifier_free_guidance: int = Input(description="How closely the output follows the prompt and chords.", default=3, ge=0),
        output_format: str = Input(description="Audio format of the outputs.", default="wav", choices=OUTPUT_FORMATS),
        return_instrumental: bool = Input(description="Remix: also return the beat-synced instrumental.", default=False),
        return_stems: bool = Input(description="Remix: also return the song's separated stems (drums, bass, other, vocals).", default=False),
        return_analysis: bool = Input(description="Remix: also return analysis.json (bpm, beats, downbeats, chords, beat-sync report, seed), its picture, analysis.png, and analysis.html, an interactive page with players.", default=False),
        seed: int | None = Input(description="Random seed, 0 to 4294967295; unset or -1 for a random one (the seed used is logged and written to analysis.json).", default=None, ge=-1, le=4294967295),
        duration: float = Input(description="Generation only: seconds of music to generate (including the audio prompt when continuing). Over 30 s is generated in overlapping windows.", default=8.0, ge=0.1, le=600),
        text_chords: str | None = Input(description="Generation only, chord models: a progression such as 'C G A:min F' (bars separated by spaces, chords within a bar by commas, N for no chord; Am, Cmaj7, F#m7 are accepted). Needs bpm.", default=None),
        bpm: float | None = Input(description="Generation only: tempo of text_chords (20-300).", default=None, ge=20, le=300),
        time_sig: str = Input(description="Generation only: time signature of text_chords, e.g. 4/4, 3/4, 6/8.", default="4/4"),
        input_audio: pathlib.Path | None = Input(description="Generation only: audio whose chords (chord models) or melody (melody models) the output follows, or the audio to continue (continuation).", default=None),
        continuation: bool = Input(description="Generation only: continue input_audio (optionally with text_chords) instead of following it.", default=False),
        audio_start: float = Input(description="Generation only: start of the part of input_audio to use (seconds).", default=0.0, ge=0),
        audio_end: float | None = Input(description="Generation only: end of the part of input_audio to use (seconds); unset or -1 for its end.", default=None),
    ) -> list[Path]:
        """Remix ``music_input`` (or generate without it); returns the main output first."""
        inputs = dict(locals())  # by name, for the checks that look at several at once
        # Each request gets its own directory: concurrent requests never share a file name.
        workdir = self.dirs.create()
        sent: dict[str, SentFile | None] = {}
        served = False
        try:
            sent = {name: SentFile.of(inputs[name], name, workdir) for name in ("music_input", "input_audio")}
            paths = {name: None if file is None else file.path for name, file in sent.items()}
            sampling = Sampling(top_k=top_k, top_p=top_p, temperature=temperature,
                                classifier_free_guidance=classifier_free_guidance,
                                seed=None if seed in (None, -1) else seed)
            output = Output(format=output_format, normalization=normalization_strategy)
            check_request_kind(inputs, remix=music_input is not None, song="music_input")
            if music_input is not None:
                request: RemixRequest | GenerateRequest = RemixRequest(
                    song=paths["music_input"], prompt=prompt, model_version=model_version, sampling=sampling,
                    output=output, beat_sync_threshold=beat_sync_threshold, large_chord_voca=large_chord_voca,
                    chroma_coefficient=chroma_coefficient, multi_band_diffusion=multi_band_diffusion,
                    return_instrumental=return_instrumental, return_stems=return_stems,
                    return_analysis=return_analysis, target_bpm=target_bpm, key_shift=key_shift,
                    section_prompts=section_prompts, song_bpm=song_bpm)
            else:
                request = GenerateRequest(
                    prompt=prompt, model_version=model_version, duration=duration, sampling=sampling,
                    output=output, text_chords=text_chords, bpm=bpm, time_sig=time_sig,
                    audio=paths["input_audio"], audio_start=audio_start,
                    audio_end=audio_end, continuation=continuation, chroma_coefficient=chroma_coefficient,
                    large_chord_voca=large_chord_voca, multi_band_diffusion=multi_band_diffusion)
            outputs = await self._serve(request, workdir, [file for file in sent.values() if file is not None])
            served = True
            return outputs
        except InputError as error:
            # The client knows its files as music_input / input_audio, not as paths on the server.
            raise InputError(_input_names(str(error), sent)) from None
        except ModelUnavailable as error:
            logger.error("%s", error)  # the operator's part: which files are missing, how to fetch them
            raise InputError(f"{error.choice} is not available on this server; {error.instead}") from None
        except Exception as error:
            logger.exception("prediction failed")
            raise RuntimeError(INTERNAL_ERROR.format(type(error).__name__)) from None
        finally:
            if not served:  # failed or cancelled (once its thread stopped): nothing stays behind
                self.dirs.discard(workdir)
            release_request_memory()  # else the server's memory climbs over its first requests

    async def _serve(self, request: RemixRequest | GenerateRequest, workdir: pathlib.Path,
                     files: list[SentFile]) -> list[Path]:
        """Fetch the request's files into ``workdir``, then run it there in a worker thread; on
        success the outputs stay until Cog has taken them."""
        for file in files:
            await file.fetch(self.fetch_limits)  # in this coroutine: a cancel stops the transfer
        cancel = CancelToken()
        run = functools.partial(contextvars.copy_context().run, self._run, request, workdir, cancel)
        job = asyncio.get_running_loop().run_in_executor(None, run)
        try:
            # Shielded: a cancel must not abandon the thread, which goes on until it checks the token.
            result = await asyncio.shield(job)
        except asyncio.CancelledError:
            # coglet 0.23.1 cancels by future.cancel(), which lands here; a cancel that arrives
            # while it is still submitting this coroutine never does (bench/cancel.py).
            cancel.cancel()
            await _settled(job)
            raise
        for file in files:
            file.path.unlink(missing_ok=True)  # only the outputs wait for Cog
        self.dirs.succeeded(workdir)
        asyncio.get_running_loop().call_later(self.dirs.keep_s + 1, self.dirs.sweep)
        return [Path(path) for path in result.outputs]

    def _run(self, request: RemixRequest | GenerateRequest, workdir: pathlib.Path,
             cancel: CancelToken) -> Result:
        # The log is what the client sees while it waits: long stages say how far they are.
        progress = ProgressLog()
        if isinstance(request, RemixRequest):
            return self.pipeline.remix(request, workdir, cancel, progress)
        return self.pipeline.generate(request, workdir, cancel, progress)


async def _settled(job: asyncio.Future) -> None:
    """Wait for a cancelled request's thread to stop (at its next check of the token), so the
    request holds its Cog slot and the generation lock no longer than its work runs."""
    while True:
        try:
            await asyncio.shield(job)  # also retrieves the job's exception, so none is left unseen
            return
        except asyncio.CancelledError:
            if job.done():
                return
            # cancelled again: still wait for the thread
        except BaseException:  # Cancelled, or whatever the work raised before it saw the token
            return


def _input_names(message: str, sent: dict[str, SentFile | None]) -> str:
    """``message`` with the sent files' paths replaced by the inputs' names: the client knows
    its file as ``music_input``, not as ``/tmp/remixer-ab12cd34/music_input.mp3``."""
    for name, file in sent.items():
        if file is not None:
            message = message.replace(str(file.path), name)
    return message
