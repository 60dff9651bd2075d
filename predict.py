"""Cog predictor: remix a song with MusicGen Chord, or generate music without one.

Inputs keep the published MusicGen Remixer's names, types and defaults; the MusicGen Chord /
Melody generation inputs (duration, text chords, melody, continuation) apply when no
``music_input`` is given. This file only maps inputs to validated requests: the work is in
:mod:`remixer.pipeline` (requests: :mod:`remixer.requests`).

Served to the public, the predictor reads only files the client sent (URLs or data URIs that Cog
downloaded for the request), stops a cancelled request's work at its next check
(:mod:`remixer.cancellation`), and removes each request's directory once Cog has taken the
outputs (:mod:`remixer.workdirs`). Only an :class:`~remixer.requests.InputError` is the client's
to read (with Cog's temp file names replaced by the inputs' names); any other failure is ours:
it is logged with its traceback, and the client gets a short message without server paths.
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

from remixer.cancellation import CancelToken
from remixer.pipeline import Models, Pipeline, Result
from remixer.progress import ProgressLog
from remixer.requests import (CHORD_VERSIONS, DEFAULT_DURATION, DEFAULT_MAX_DURATION, DEFAULT_TIME_SIG,
                              MELODY_VERSIONS, NORMALIZATIONS, OUTPUT_FORMATS, GenerateRequest, InputError,
                              Output, RemixRequest, Sampling, check_request_kind, check_sent_file)
from remixer.workdirs import RequestDirs

logger = logging.getLogger(__name__)

# What the client reads when the failure is ours (the log has the traceback).
INTERNAL_ERROR = ("internal error ({}): the prediction failed on the server, not because of the inputs; "
                  "the server's log has the details")
# Seconds a succeeded request's outputs stay for Cog to read (it reads them after predict returns).
_KEEP_OUTPUTS_S = 60.0


class Predictor(BasePredictor):
    def setup(self) -> None:
        """Load every model of the default remix once (others load on first use, then stay)."""
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                            format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
        # The log is the client's only view of a run: each stage as it starts, every window too.
        logging.getLogger("remixer").setLevel(logging.DEBUG)
        max_duration = float(os.environ.get("REMIXER_MAX_DURATION", DEFAULT_MAX_DURATION))
        self.pipeline = Pipeline(Models.load(preload=(os.environ.get("REMIXER_DEFAULT_VERSION", "stereo-chord"),)),
                                 max_duration=max_duration)
        self.pipeline.warmup()
        self.dirs = RequestDirs(keep_s=float(os.environ.get("REMIXER_KEEP_OUTPUTS_S", _KEEP_OUTPUTS_S)))

    async def predict(
        self,
        prompt: str = Input(description="Style of the music, e.g. 'bossa nova' or 'lofi hip hop, warm "
                                        "Rhodes'. Required for a remix.", default=None),
        section_prompts: str = Input(description="Remix: a prompt per part of the song, e.g. 'verse: nylon "
                                                 "guitar, brushes; chorus: full band, horns' (All-In-One's "
                                                 "sections: intro, verse, chorus, bridge, inst, solo, break, "
                                                 "outro) or time ranges, e.g. '0:00-0:45: ambient pads; "
                                                 "0:45-: full band'. Parts without one use prompt.",
                                     default=None),
        music_input: Path = Input(description="Song to remix. Its vocals are kept; the instrumental is "
                                              "regenerated in the prompt's style on the song's chords and "
                                              "beat-synced to its downbeats. Leave empty to generate "
                                              "music from scratch (see duration, text_chords, input_audio).",
                                  default=None),
        model_version: str = Input(description="Model. Chord models (remix and chord generation): "
                                               "stereo-chord, stereo-chord-large, chord, chord-large. "
                                               "Melody models (generation only, follow input_audio's "
                                               "melody): melody, melody-large, stereo-melody-large. Large "
                                               "and stereo models are slower.",
                                   default="stereo-chord", choices=list(CHORD_VERSIONS + MELODY_VERSIONS)),
        multi_band_diffusion: bool = Input(description="Decode with Multi-Band Diffusion (better quality, "
                                                       "slower). Mono models only.", default=False),
        normalization_strategy: str = Input(description="Output level: loudness (-14 LUFS), clip, peak or "
                                                        "rms.", default="loudness", choices=list(NORMALIZATIONS)),
        beat_sync_threshold: float = Input(description="Largest gap in seconds between a generated downbeat "
                                                       "and the song's downbeat it is moved to. Unset or -1: "
                                                       "1.1 beats at the song's tempo.", default=None),
        target_bpm: float = Input(description="Remix: tempo of the remix, 40-240 BPM and within 0.5x-2x of "
                                              "the song's; the vocals are time-stretched to it (pitch kept). "
                                              "Unset: the song's tempo.", default=None),
        key_shift: int = Input(description="Remix: semitones to move the key by, -12 to 12; the vocals are "
                                           "pitch-shifted (formants kept) and the chords transposed.", default=0),
        large_chord_voca: bool = Input(description="Read chords with the 170-class BTC vocabulary (7ths, "
                                                   "dim, aug, sus...); off: 25 classes (major/minor).",
                                       default=True),
        chroma_coefficient: float = Input(description="Strength of the chord conditioning (chords from "
                                                      "audio and from text alike).", default=1.0, ge=0.5, le=2.5),
        top_k: int = Input(description="Sample among the k most likely tokens.", default=250, ge=0),
        top_p: float = Input(description="Nucleus sampling mass; 0 uses top_k.", default=0.0, ge=0.0, le=1.0),
        temperature: float = Input(description="Sampling temperature; higher is more diverse.",
                                   default=1.0, ge=0.0),
        classifier_free_guidance: int = Input(description="How closely the output follows the prompt and "
                                                          "chords.", default=3, ge=0),
        output_format: str = Input(description="Audio format of the outputs.", default="wav",
                                   choices=list(OUTPUT_FORMATS)),
        return_instrumental: bool = Input(description="Remix: also return the beat-synced instrumental.",
                                          default=False),
        return_stems: bool = Input(description="Remix: also return the song's separated stems (drums, "
                                               "bass, other, vocals).", default=False),
        return_analysis: bool = Input(description="Remix: also return analysis.json (bpm, beats, "
                                                  "downbeats, chords, beat-sync report, seed), its "
                                                  "picture, analysis.png, and analysis.html, an interactive "
                                                  "page with players.", default=False),
        seed: int = Input(description="Random seed; unset or -1 for a random one (the seed used is "
                                      "logged and written to analysis.json).", default=None),
        duration: float = Input(description="Generation only: seconds of music to generate (including "
                                            "the audio prompt when continuing). Over 30 s is generated in "
                                            "overlapping windows.", default=DEFAULT_DURATION, ge=0.1),
        text_chords: str = Input(description="Generation only, chord models: a progression such as "
                                             "'C G A:min F' (bars separated by spaces, chords within a bar "
                                             "by commas, N for no chord; Am, Cmaj7, F#m7 are accepted). "
                                             "Needs bpm.", default=None),
        bpm: float = Input(description="Generation only: tempo of text_chords (20-300).", default=None),
        time_sig: str = Input(description="Generation only: time signature of text_chords, e.g. 4/4, 3/4, "
                                          "6/8.", default=DEFAULT_TIME_SIG),
        input_audio: Path = Input(description="Generation only: audio whose chords (chord models) or melody "
                                              "(melody models) the output follows, or the audio to continue "
                                              "(continuation).", default=None),
        continuation: bool = Input(description="Generation only: continue input_audio (optionally with "
                                               "text_chords) instead of following it.", default=False),
        audio_start: float = Input(description="Generation only: start of the part of input_audio to use "
                                               "(seconds).", default=0.0, ge=0.0),
        audio_end: float = Input(description="Generation only: end of the part of input_audio to use "
                                             "(seconds); unset or -1 for its end.", default=None),
    ) -> list[Path]:
        """Remix ``music_input`` (or generate without it); returns the main output first."""
        inputs = dict(locals())  # by name, for the check that looks at several at once
        sent: dict[str, pathlib.Path | None] = {}
        try:
            sent = {"music_input": check_sent_file(music_input, "music_input"),
                    "input_audio": check_sent_file(input_audio, "input_audio")}
            sampling = Sampling(top_k=top_k, top_p=top_p, temperature=temperature,
                                classifier_free_guidance=classifier_free_guidance,
                                seed=None if seed in (None, -1) else seed)
            output = Output(format=output_format, normalization=normalization_strategy)
            check_request_kind(inputs, remix=music_input is not None, song="music_input")
            if music_input is not None:
                request: RemixRequest | GenerateRequest = RemixRequest(
                    song=sent["music_input"], prompt=prompt, model_version=model_version, sampling=sampling,
                    output=output, beat_sync_threshold=beat_sync_threshold, large_chord_voca=large_chord_voca,
                    chroma_coefficient=chroma_coefficient, multi_band_diffusion=multi_band_diffusion,
                    return_instrumental=return_instrumental, return_stems=return_stems,
                    return_analysis=return_analysis, target_bpm=target_bpm, key_shift=key_shift,
                    section_prompts=section_prompts)
            else:
                request = GenerateRequest(
                    prompt=prompt, model_version=model_version, duration=duration, sampling=sampling,
                    output=output, text_chords=text_chords, bpm=bpm, time_sig=time_sig,
                    audio=sent["input_audio"], audio_start=audio_start,
                    audio_end=audio_end, continuation=continuation, chroma_coefficient=chroma_coefficient,
                    large_chord_voca=large_chord_voca, multi_band_diffusion=multi_band_diffusion)
            return await self._serve(request)
        except InputError as error:
            # The client knows its files as music_input / input_audio, not as Cog's temp files.
            raise InputError(_input_names(str(error), sent)) from None
        except Exception as error:
            logger.exception("prediction failed")
            raise RuntimeError(INTERNAL_ERROR.format(type(error).__name__)) from None

    async def _serve(self, request: RemixRequest | GenerateRequest) -> list[Path]:
        """Run ``request`` in a worker thread and its own directory, which is removed at once
        if it fails or is cancelled, and once Cog has taken the outputs otherwise."""
        # Each request gets its own directory: concurrent requests never share a file name.
        workdir = self.dirs.create()
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
            self.dirs.discard(workdir)
            raise
        except BaseException:
            self.dirs.discard(workdir)
            raise
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


def _input_names(message: str, sent: dict[str, pathlib.Path | None]) -> str:
    """``message`` with the inputs' temp file names replaced by the inputs' names: the client
    knows its file as ``music_input``, not as ``/tmp/tmpab12cd34file``."""
    for name, path in sent.items():
        if path is not None:
            message = message.replace(str(path), name)
    return message
