"""Plant wiring bugs one at a time in a temporary copy of the repository; report which survive.

    python scripts/mutants.py [--only TEXT]... [--list] [--no-baseline]

Each :data:`MUTANTS` entry names a bug, the file it is planted in, a snippet of that file and its
replacement, and the tests that should catch it. The script copies the working tree (tracked and
untracked, not ignored files) to a temporary directory once, checks that the selected tests pass
there unmutated (the baseline: a broken suite would "catch" every mutant), then for each mutant
writes the mutated file, runs its tests with ``pytest -x`` and restores the file. Verdicts:

* ``caught``: a test failed;
* ``SURVIVED``: every test passed with the bug in place;
* ``not applied``: the snippet is not in the file exactly once (the code moved on: update it);
* ``broken``: pytest could not run the tests, or only a fixture errored (collection error, crash,
  server not ready), which proves nothing: rerun it with ``--only``.

The exit status is 0 only when every mutant was caught. Not part of ``make test``: each mutant
reruns end-to-end tests, a few minutes for the whole list. To add a mutant, append a
:class:`Mutant` with a snippet that occurs once in its file.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIRING = "tests/pipeline/test_wiring.py"
HTTP = "tests/server/test_http_wiring.py"
SERVER = "tests/server/test_predictor_http.py"
HOSTILE = "tests/server/test_hostile.py"


@dataclass(frozen=True)
class Mutant:
    """A bug: replace ``old`` (exactly one occurrence in ``path``) by ``new``; ``tests`` catch it."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


def _wiring(*names: str) -> tuple[str, ...]:
    return tuple(f"{WIRING}::{name}" for name in names)


def _http(*names: str) -> tuple[str, ...]:
    return tuple(f"{HTTP}::{name}" for name in names)


def _server(*names: str) -> tuple[str, ...]:
    return tuple(f"{SERVER}::{name}" for name in names)


def _hostile(*names: str) -> tuple[str, ...]:
    return tuple(f"{HOSTILE}::{name}" for name in names)


def _cli(*names: str) -> tuple[str, ...]:
    return tuple(f"tests/pipeline/test_cli.py::{name}" for name in names)


PIPELINE = "remixer/pipeline.py"
BATCH_LOCAL = "remixer/batch/local.py"
BATCH_REMOTE = "remixer/batch/remote.py"
LOCAL_BATCH = "tests/pipeline/test_batch_local.py"
REMOTE_UNIT = "tests/unit/test_batch_remote.py"
PREDICT = "predict.py"
CLI = "remixer/__main__.py"
SONG_BPM_TEST = "test_song_bpm_gives_a_half_tempo_read_song_its_tempo_in_the_description"
MIX_TEST = "test_remix_is_the_returned_instrumental_plus_the_songs_vocals_sample_for_sample"
MUTANTS: list[Mutant] = [
    # The five of issue 13.
    Mutant("remix mixes silence instead of the song's vocals", PIPELINE,
           "mixed = mix(backing, vocals, out_rate)", "mixed = mix(backing, vocals * 0, out_rate)",
           _wiring(MIX_TEST)),
    Mutant("remix mixes the instrumental as generated, not the beat-synced one", PIPELINE,
           "mixed = mix(backing, vocals, out_rate)",
           "mixed = mix(_with_channels(audio_io.fit_length(instrumental, out_length), channels), vocals, out_rate)",
           _wiring(MIX_TEST)),
    Mutant("remix generates with no chords at all", PIPELINE,
           "chords=window_chords,", "chords=None,",
           _wiring("test_generator_gets_the_prompt_and_the_songs_chords_window_by_window")),
    Mutant("remix drops the user's prompt (only the bpm suffix reaches the model)", PIPELINE,
           "description = _with_bpm(request.prompt, beats.bpm)", 'description = _with_bpm("", beats.bpm)',
           _wiring("test_generator_gets_the_prompt_and_the_songs_chords_window_by_window")),
    Mutant("predict.py ignores seed", PREDICT,
           "seed=None if seed in (None, -1) else seed)", "seed=None)",
           _http("test_same_seed_gives_the_same_remix_through_the_server")),
    # Remix: stages fed the wrong thing.
    Mutant("remix mixes the drums instead of the vocals", PIPELINE,
           "song_beats, vocals, harmony = beats, stems.vocals, stems.chord_source",
           "song_beats, vocals, harmony = beats, stems.drums, stems.chord_source", _wiring(MIX_TEST)),
    Mutant("remix returns the instrumental as generated, not the one it mixed", PIPELINE,
           'self._export(backing, out_rate, workdir / "instrumental"',
           'self._export(_with_channels(audio_io.fit_length(instrumental, out_length), channels), out_rate, '
           'workdir / "instrumental"',
           _wiring("test_mixed_instrumental_is_the_take_moved_onto_the_songs_downbeats")),
    Mutant("remix returns the stems under each other's names", PIPELINE,
           "for name, stem in stems.as_dict().items()]",
           "for name, stem in zip(stems.as_dict(), reversed(stems.as_dict().values()))]",
           _wiring("test_return_stems_gives_the_four_separated_stems_unnormalized")),
    Mutant("remix ignores the sampling settings and seed", PIPELINE,
           "generated = generator.generate(description, GenerationParams.of(request.sampling, duration),",
           "generated = generator.generate(description, GenerationParams(duration=duration),",
           _wiring("test_remix_seed_reaches_the_lm_and_the_same_seed_gives_the_same_remix")),
    # Remix inputs that must reach their stage.
    Mutant("remix ignores chroma_coefficient", PIPELINE,
           "chroma_coefficient=request.chroma_coefficient, mbd=mbd,\n",
           "chroma_coefficient=1.0, mbd=mbd,\n",
           _wiring("test_chroma_coefficient_scales_the_chords_the_lm_receives")),
    Mutant("remix ignores large_chord_voca", PIPELINE,
           "large_voca=request.large_chord_voca)\n            chords = recognizer.recognize(",
           "large_voca=True)\n            chords = recognizer.recognize(",
           _wiring("test_large_chord_voca_off_reads_the_chords_with_the_25_class_model")),
    Mutant("remix reads each window's chords with the 170-class model whatever large_chord_voca says", PIPELINE,
           "large_voca=request.large_chord_voca)\n                window_chords = read_window_chords(",
           "large_voca=True)\n                window_chords = read_window_chords(",
           _wiring("test_large_chord_voca_off_reads_the_chords_with_the_25_class_model")),
    Mutant("remix ignores beat_sync_threshold", PIPELINE,
           "threshold = reach = request.beat_sync_threshold", "threshold = reach = None",
           _wiring("test_beat_sync_threshold_bounds_the_gap_a_downbeat_is_moved_across")),
    Mutant("remix beat-syncs without the song's harmony (a take without beats stays unwarped)",
           PIPELINE, "reference_audio=(harmony, rate), reach=reach)",
           "reference_audio=None, reach=reach)",
           ("tests/pipeline/test_sync_remix.py",)),
    Mutant("remix analyses the take at its own level (a faint take reads as silence)", PIPELINE,
           'audio_io.normalize(instrumental, out_rate, "peak"), out_rate, prior=TempoPrior.of(beats))',
           "instrumental, out_rate, prior=TempoPrior.of(beats))",
           ("tests/pipeline/test_sync_remix.py::test_a_take_without_readable_beats_is_aligned_by_the_audio[faint drums]",)),
    Mutant("remix ignores multi_band_diffusion", PIPELINE,
           'generator, mbd = self._generation_models(request)\n        if song_analysis is None:',
           'generator, mbd = self._generation_models(request)\n        mbd = None\n        if song_analysis is None:',
           _wiring("test_multi_band_diffusion_decodes_with_the_shared_mbd")),
    # Generation inputs that must reach their stage.
    Mutant("generation ignores duration", PIPELINE,
           "GenerationParams.of(request.sampling, request.duration)", "GenerationParams.of(request.sampling, 1.0)",
           _wiring("test_generation_lasts_the_requested_duration")),
    Mutant("generation drops the prompt", PIPELINE,
           'description = request.prompt or ""', 'description = ""',
           _wiring("test_text_chords_reach_the_lm_at_their_tempo_and_meter")),
    Mutant("generation ignores time_sig", PIPELINE,
           "TextChords(request.text_chords, request.bpm, request.time_sig)",
           "TextChords(request.text_chords, request.bpm)",
           _wiring("test_text_chords_reach_the_lm_at_their_tempo_and_meter")),
    Mutant("generation ignores audio_start", "remixer/client_audio.py",
           "piece = wav[:, int(request.audio_start * rate):", "piece = wav[:, 0:",
           _wiring("test_input_audio_chords_are_read_from_the_separated_clip")),
    Mutant("generation ignores audio_end", "remixer/client_audio.py",
           "end = total if request.audio_end in (None, -1) else min(request.audio_end, total)",
           "end = total", _wiring("test_input_audio_chords_are_read_from_the_separated_clip")),
    Mutant("generation ignores large_chord_voca", PIPELINE,
           "large_voca=request.large_chord_voca)\n                    starts = ",
           "large_voca=True)\n                    starts = ",
           _wiring("test_input_audio_chords_are_read_from_the_separated_clip")),
    Mutant("generation ignores chroma_coefficient", PIPELINE,
           "chords=chords, chroma_coefficient=request.chroma_coefficient,",
           "chords=chords, chroma_coefficient=1.0,",
           _wiring("test_input_audio_chords_are_read_from_the_separated_clip")),
    Mutant("generation ignores multi_band_diffusion", PIPELINE,
           "generator, mbd = self._generation_models(request)\n        clip = None",
           "generator, mbd = self._generation_models(request)\n        mbd = None\n        clip = None",
           _wiring("test_input_audio_chords_are_read_from_the_separated_clip")),
    Mutant("generation ignores the melody", PIPELINE,
           "melody=melody, prompt=prompt, mbd=mbd,", "melody=None, prompt=prompt, mbd=mbd,",
           _wiring("test_melody_model_follows_the_clip_of_input_audio")),
    Mutant("generation ignores continuation", PIPELINE,
           "if request.continuation:\n                prompt = clip",
           "if False:\n                prompt = clip",
           _wiring("test_continuation_starts_with_the_clip_and_lasts_the_duration")),
    Mutant("generation reuses window 0's chords", "remixer/generation.py",
           "raw = chords.chroma(start=start,", "raw = chords.chroma(start=0.0,",
           _wiring("test_generator_gets_the_prompt_and_the_songs_chords_window_by_window")),
    # Wiring added with the tempo/key, section, beat-sync and conditioning work (issues 10-15).
    Mutant("remix window plan drops the user's prompt", PIPELINE,
           "return stride_plan(duration, _with_bpm(prompt, beats.bpm), **sizes)",
           'return stride_plan(duration, _with_bpm("", beats.bpm), **sizes)',
           _wiring("test_generator_gets_the_prompt_and_the_songs_chords_window_by_window")),
    Mutant("remix ignores its section plan", PIPELINE, "plan=plan, cancel=token)", "plan=None, cancel=token)",
           ("tests/pipeline/test_section_remix.py::test_pipeline_generates_each_section_with_its_prompt_from_its_first_bar",)),
    Mutant("remix ignores key_shift", PIPELINE,
           "transform = Transform.for_song(beats.bpm, request.target_bpm, request.key_shift)",
           "transform = Transform.for_song(beats.bpm, request.target_bpm, 0)",
           ("tests/pipeline/test_remix_transform.py::test_key_shift_conditions_on_the_transposed_chords_and_shifts_the_vocals",)),
    Mutant("remix ignores target_bpm", PIPELINE,
           "transform = Transform.for_song(beats.bpm, request.target_bpm, request.key_shift)",
           "transform = Transform.for_song(beats.bpm, None, request.key_shift)",
           ("tests/pipeline/test_remix_transform.py::test_remix_at_120_bpm_from_a_100_bpm_song",)),
    Mutant("instrumental analysed without the song's tempo and meter", PIPELINE,
           "prior=TempoPrior.of(beats))", "prior=None)",
           ("tests/pipeline/test_pipeline.py::test_remix_separates_once_and_every_stage_reuses_the_stems",)),
    Mutant("chords read from bass + other, not the published vocals + bass + other",
           "remixer/separation.py", "return self.vocals + self.bass + self.other",
           "return self.bass + self.other",
           ("tests/pipeline/test_pipeline.py::test_remix_separates_once_and_every_stage_reuses_the_stems",)),
    # Issue 24: chords read per window as the published conditioner read them.
    Mutant("remix reads every window's chords from the song's start", "remixer/chords.py",
           "first = int(round(start / transform.ratio * sample_rate))", "first = 0",
           _wiring("test_generator_gets_the_prompt_and_the_songs_chords_window_by_window")),
    Mutant("remix reads the windows' chords from the whole mix, not vocals + bass + other", PIPELINE,
           "window_chords = read_window_chords(recognizer, chord_source, rate,",
           "window_chords = read_window_chords(recognizer, song, rate,",
           _wiring("test_generator_gets_the_prompt_and_the_songs_chords_window_by_window")),
    Mutant("remix reads the windows' chords at the remix's times on the song's timeline", "remixer/chords.py",
           "first = int(round(start / transform.ratio * sample_rate))",
           "first = int(round(start * sample_rate))",
           ("tests/unit/test_chords.py::test_window_readings_follow_the_remix_tempo_and_key",)),
    Mutant("remix leaves the windows' chords in the song's key", "remixer/chords.py",
           "segments = transform_chords(frame_segments(labels, end=len(labels) * FRAME_SECONDS), transform)",
           "segments = frame_segments(labels, end=len(labels) * FRAME_SECONDS)",
           ("tests/pipeline/test_remix_transform.py::test_key_shift_conditions_on_the_transposed_chords_and_shifts_the_vocals",)),
    Mutant("generation is exported with the remix's tanh compressor", PIPELINE,
           "request.output, compressor=False)", "request.output)",
           _wiring("test_generation_is_loudness_normalised_without_the_remix_compressor")),
    Mutant("the remix description truncates the bpm", PIPELINE,
           'return f"{prompt}, bpm : {round(bpm)}" if prompt', 'return f"{prompt}, bpm : {int(bpm)}" if prompt',
           ("tests/pipeline/test_pipeline.py::test_remix_logs_and_reports_the_exact_description",)),
    # Remixes sharing one reading of the song (issue 25).
    Mutant("remix separates the song again although it was given its analysis", PIPELINE,
           "if song_analysis is None:\n            # A target tempo",
           "if True:\n            # A target tempo",
           _wiring("test_remixes_given_one_song_analysis_separate_once_and_equal_the_remix_alone")),
    Mutant("a song analysis serves a remix whose chords another BTC reads", PIPELINE,
           "if chord_reader(request) != self.chord_reader:", "if False:",
           _wiring("test_a_song_analysis_serves_only_remixes_whose_chords_its_btc_read")),
    Mutant("a re-read song analysis separates the song again", PIPELINE,
           "        if separated is None:\n            with timer(\"decode\"):",
           "        separated = None\n        if separated is None:\n            with timer(\"decode\"):",
           _wiring("test_a_song_analysis_serves_only_remixes_whose_chords_its_btc_read")),
    # python -m remixer batch (issue 25).
    Mutant("a local batch reads its song again for every job", BATCH_LOCAL,
           "        if key in self.analyses:\n", "        if False:\n",
           (f"{LOCAL_BATCH}::test_a_sweep_on_one_song_separates_it_once",)),
    Mutant("a local batch separates its song again for another chord reader", BATCH_LOCAL,
           "separated = next(iter(self.analyses.values()), None)", "separated = None",
           (f"{LOCAL_BATCH}::test_a_sweep_on_one_song_separates_it_once",)),
    Mutant("a local batch gives a remix the chords another BTC read", BATCH_LOCAL,
           "        if key in self.analyses:\n            return self.analyses[key], {}",
           "        if self.analyses:\n            return next(iter(self.analyses.values())), {}",
           (f"{LOCAL_BATCH}::test_a_sweep_on_one_song_separates_it_once",)),
    Mutant("a batch runs its finished jobs again", "remixer/batch/cli.py",
           "to_run = [job for job in jobs if not results.finished(earlier, job)]", "to_run = list(jobs)",
           (f"{LOCAL_BATCH}::test_running_it_again_redoes_only_what_failed",)),
    Mutant("a remote batch takes a busy server's 409 for the job's failure", BATCH_REMOTE,
           'if outcome in ("busy", "starting"):', "if False:",
           (f"{REMOTE_UNIT}::test_a_busy_server_is_waited_for_and_the_outputs_are_written_under_local_names",)),
    Mutant("a remote batch spends a job's retries on a dead server while another answers", BATCH_REMOTE,
           'failures += outcome == "failed" or not self.endpoints.any_healthy()', "failures += 1",
           (f"{REMOTE_UNIT}::test_a_dead_endpoint_costs_no_retry_while_another_answers_even_busy",)),
    Mutant("Ctrl-C leaves a remote batch's predictions running until their connections close", BATCH_REMOTE,
           "cancelled = endpoint.cancel(prediction_id)", "cancelled = True",
           ("tests/server/test_batch_http.py::test_ctrl_c_cancels_the_prediction_on_the_server_and_running_again_resumes",)),
    Mutant("generation ignores a cancel between windows", "remixer/generation.py", "cancel.check()", "pass",
           ("tests/unit/test_cancellation.py::test_a_cancelled_token_stops_generation_before_the_first_window",)),
    Mutant("generation ignores a cancel between decoding steps", "remixer/generation.py",
           "return lambda step, steps: cancel.progress_callback(", "return lambda step, steps: (lambda *_: None)(",
           ("tests/unit/test_cancellation.py::test_generation_stops_within_one_step_and_the_model_stays_usable",)),
    # Progress and the analysis page (issue 21).
    Mutant("remix reports no progress", PIPELINE,
           "timer = _Timer(progress, cancel)\n        self._check_smoke(request.model_version)\n        sections",
           "timer = _Timer(None, cancel)\n        self._check_smoke(request.model_version)\n        sections",
           ("tests/pipeline/test_pipeline.py::test_remix_reports_every_stage_and_the_steps_of_the_long_ones",)),
    Mutant("separation reports no chunk", "remixer/separation.py",
           "cancel.progress_callback(ended, total)", "cancel.check()",
           ("tests/unit/test_cancellation.py::test_separation_stops_at_the_chunk_after_the_cancel",
            "tests/pipeline/test_pipeline.py::test_remix_reports_every_stage_and_the_steps_of_the_long_ones")),
    Mutant("generation progress restarts at every window", "remixer/generation.py",
           "cancel.progress_callback(before + new * step // steps, total)",
           "cancel.progress_callback(new * step // steps, total)",
           ("tests/unit/test_cancellation.py::test_generation_reports_the_frames_written_of_the_whole_output_across_windows",)),
    Mutant("analysis.html is not written", PIPELINE,
           "outputs.append(write_analysis_page(", "(write_analysis_page(",
           ("tests/pipeline/test_remix_transform.py::test_analysis_png_and_html_are_written_beside_the_json_stereo_model",)),
    Mutant("the page plays the song on the remix's clock", PIPELINE,
           'Track("song", song, rate, timescale=transform.ratio)', 'Track("song", song, rate)',
           ("tests/pipeline/test_remix_transform.py::test_analysis_png_and_html_are_written_beside_the_json_stereo_model",)),
    Mutant("the CLI draws no progress bar", "remixer/__main__.py",
           "result = pipeline.generate(request, Path(workdir), progress=bars)",
           "result = pipeline.generate(request, Path(workdir), progress=None)",
           ("tests/pipeline/test_cli.py::test_cli_draws_a_bar_for_generation_and_logs_windows_only_with_verbose",)),
    Mutant("the CLI logs every generation window without -v", "remixer/__main__.py",
           "logging.DEBUG if args.verbose else logging.INFO", "logging.DEBUG",
           ("tests/pipeline/test_cli.py::test_cli_draws_a_bar_for_generation_and_logs_windows_only_with_verbose",)),
    Mutant("predict.py logs no progress", PREDICT, "progress = ProgressLog()", "progress = None",
           _server("test_remix_at_a_new_tempo_and_key_returns_the_analysis_its_picture_and_its_page")),
    # predict.py: inputs mapped onto the request.
    Mutant("predict.py ignores return_stems", PREDICT,
           "return_stems=return_stems,", "return_stems=False,",
           _http("test_remix_returns_all_outputs_consistent_with_each_other")),
    Mutant("predict.py ignores normalization_strategy", PREDICT,
           "normalization=normalization_strategy)", 'normalization="loudness")',
           _http("test_every_remix_input_reaches_the_request")),
    Mutant("predict.py ignores beat_sync_threshold", PREDICT,
           "beat_sync_threshold=beat_sync_threshold,", "beat_sync_threshold=None,",
           _http("test_every_remix_input_reaches_the_request")),
    Mutant("predict.py ignores multi_band_diffusion of a remix", PREDICT,
           "chroma_coefficient=chroma_coefficient, multi_band_diffusion=multi_band_diffusion,\n",
           "chroma_coefficient=chroma_coefficient, multi_band_diffusion=False,\n",
           _http("test_every_remix_input_reaches_the_request")),
    Mutant("predict.py ignores duration", PREDICT,
           "duration=duration, sampling=sampling", "duration=2.0, sampling=sampling",
           _http("test_text_chord_generation_lasts_its_duration_with_its_chords")),
    Mutant("predict.py ignores audio_start", PREDICT,
           "audio_start=audio_start,", "audio_start=0.0,",
           _http("test_chords_from_a_clip_of_input_audio")),
    Mutant("predict.py ignores large_chord_voca of a generation", PREDICT,
           "large_chord_voca=large_chord_voca, multi_band_diffusion=multi_band_diffusion)",
           "large_chord_voca=True, multi_band_diffusion=multi_band_diffusion)",
           _http("test_chords_from_a_clip_of_input_audio")),
    Mutant("predict.py ignores continuation", PREDICT,
           "continuation=continuation,", "continuation=False,",
           _http("test_continuation_of_a_clip_of_input_audio")),
    # Who is told what when a request fails (issue 19).
    Mutant("predict.py shows the client our own errors, server paths included", PREDICT,
           "except InputError as error:", "except Exception as error:",
           _hostile("test_a_failure_of_ours_is_logged_and_the_client_reads_a_short_message_without_paths")),
    Mutant("predict.py lets remix-only inputs through without music_input", PREDICT,
           'check_request_kind(inputs, remix=music_input is not None, song="music_input")', "pass",
           _server("test_bad_inputs_fail_with_a_clear_message_and_the_server_keeps_serving")),
    # The Cog package (issue 20).
    Mutant("setup() runs a GPU image on the CPU", PREDICT,
           "device = doctor.device_for(report)", 'device = report.device or "cpu"',
           ("tests/unit/test_doctor.py::test_setup_of_a_gpu_image_without_a_gpu_fails_before_loading_any_model",)),
    Mutant("predict.py gives choices as a call cog build cannot read", PREDICT,
           "choices=OUTPUT_FORMATS)", "choices=list(OUTPUT_FORMATS))",
           ("tests/server/test_cog_package.py::test_every_input_argument_resolves_statically",)),
    Mutant("predict.py declares seed without | None, so Cog's schema requires it", PREDICT,
           "seed: int | None = Input(", "seed: int = Input(",
           ("tests/server/test_cog_package.py::test_no_input_is_required_and_none_defaults_are_nullable",)),
    # A public endpoint, second round (issue 22).
    Mutant("remix separates without the request's cancel token", PIPELINE,
           "return self.models.separator.separate(song, rate, cancel=token)",
           "return self.models.separator.separate(song, rate)",
           ("tests/pipeline/test_pipeline.py::test_a_cancel_during_separation_stops_the_remix_within_a_chunk",
            *_hostile("test_a_cancel_during_separation_stops_it_within_a_chunk"))),
    Mutant("remix folds a stereo song's vocals into a mono model's channel", PIPELINE,
           "channels = max(song.shape[0], synced.audio.shape[0])", "channels = synced.audio.shape[0]",
           (*_wiring(MIX_TEST), *_hostile("test_a_stereo_song_remixed_with_a_mono_model_keeps_its_stereo"))),
    Mutant("predict.py sends the client the operator's message for a missing model", PREDICT,
           'raise InputError(f"{error.choice} is not available on this server; {error.instead}") from None',
           "raise InputError(str(error)) from None",
           _hostile("test_a_model_this_server_lacks_is_named_without_paths_or_commands")),
    Mutant("predict.py fetches sent files without the server's deadline", PREDICT,
           "await file.fetch(self.fetch_limits)", "await file.fetch(FetchLimits())",
           _hostile("test_a_url_that_trickles_is_cut_off_at_the_deadline")),
    Mutant("predict.py leaves what each request freed to the collector's rare passes", PREDICT,
           "release_request_memory()  #", "(lambda: None)()  #",
           ("tests/unit/test_predict.py::test_a_served_request_keeps_only_its_outputs_and_gives_its_memory_back",
            *_hostile("test_what_refused_requests_sent_does_not_stay_in_memory"))),
    Mutant("the CLI lets generation-only options through with a song", "remixer/__main__.py",
           "check_request_kind(vars(args), remix=args.song is not None,",
           "(lambda *a, **k: None)(vars(args), remix=args.song is not None,",
           ("tests/pipeline/test_cli.py::test_cli_generation_options_are_refused_with_a_song",)),
    # A new user's first hour (issue 21): the song's tempo, threads, the smoke switch.
    Mutant("predict.py ignores song_bpm", PREDICT,
           "section_prompts=section_prompts, song_bpm=song_bpm)", "section_prompts=section_prompts)",
           _http("test_remix_generator_receives_the_prompt_chords_coefficient_seed_and_decoder")),
    Mutant("the CLI ignores --song-bpm", CLI, "song_bpm=args.song_bpm, **common)", "**common)",
           _cli(SONG_BPM_TEST)),
    Mutant("remix analyses the song without song_bpm's prior", PIPELINE,
           "prior=song_prior(request.song_bpm))", "prior=None)", _cli(SONG_BPM_TEST)),
    Mutant("remix describes the tempo it read, not the song_bpm stated", PIPELINE,
           "return replace(beats, bpm=song_bpm), record", "return beats, record", _cli(SONG_BPM_TEST)),
    Mutant("remix drops the warning of a doubtful tempo octave", PIPELINE,
           "None if alternative is None else alternative.to_dict(beats.bpm)}", "None}", _cli(SONG_BPM_TEST)),
    Mutant("remix separates before a mix-reading analysis (target_bpm checked late)", PIPELINE,
           "if stems is None and self.models.analyzer.needs_stems:", "if stems is None:",
           ("tests/pipeline/test_remix_transform.py::test_bad_target_for_the_song_fails_before_separation",)),
    Mutant("remix checks target_bpm against the song's tempo only after the separation", PIPELINE,
           "        if check_tempo is not None:\n            try:", "        if False:\n            try:",
           ("tests/pipeline/test_remix_transform.py::test_bad_target_for_the_song_fails_before_separation",)),
    Mutant("the CLI ignores --threads", CLI, "threads=args.threads, smoke=smoke)", "threads=None, smoke=smoke)",
           _cli("test_the_cli_sets_the_threads_from_the_cores_and_runs_no_slower_than_one")),
    Mutant("the CLI ignores --smoke", CLI, "smoke = args.smoke or smoke_from_env()", "smoke = smoke_from_env()",
           _cli("test_smoke_switch_remixes_a_song_end_to_end_labelled_as_noise")),
    Mutant("the smoke switch forgets to label analysis.json", PIPELINE,
           'return {"smoke": NOISE, **analysis} if self.models.smoke else analysis', "return analysis",
           _cli("test_smoke_switch_remixes_a_song_end_to_end_labelled_as_noise")),
    Mutant("a sweep reads the window chords again for every prompt", PIPELINE,
           "window_chords = song_analysis.window_chords.get(key)", "window_chords = None",
           ("tests/pipeline/test_batch_local.py::test_a_sweep_on_one_song_separates_it_once",)),
    Mutant("the CLI looks at the weights only once the model code has loaded", CLI,
           "            store.require(required, optional=optional)\n", "",
           _cli("test_a_remix_without_weights_fails_before_the_model_code_loads")),
]


def _copy_tree(destination: Path) -> None:
    """Copy the files git tracks or would track (not ignored) into ``destination``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _pytest(copy: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    done = subprocess.run(command, cwd=copy, capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines() or [""]
    return done.returncode, lines[-1]  # pytest's summary line


def _verdict(returncode: int, summary: str) -> str:
    # pytest: 0 all passed, 1 some failed (or errored), 2+ interrupted / internal / usage / no
    # tests. A fixture error alone (server not ready, ...) is no test failing on the bug.
    if returncode == 1 and " failed" in summary:
        return "caught"
    return "SURVIVED" if returncode == 0 else "broken"


def run(mutants: list[Mutant], *, baseline: bool) -> bool:
    """Report each mutant; True when all were caught."""
    with tempfile.TemporaryDirectory(prefix="remixer-mutants-") as tmp:
        copy = Path(tmp)
        _copy_tree(copy)
        if baseline:
            tests = tuple(dict.fromkeys(test for mutant in mutants for test in mutant.tests))
            code, last = _pytest(copy, tests)
            print(f"baseline (no mutant): {'pass' if code == 0 else 'FAIL'}: {last}", flush=True)
            if code != 0:
                return False
        all_caught = True
        for mutant in mutants:
            target = copy / mutant.path
            original = target.read_text()
            count = original.count(mutant.old)
            if count != 1:
                print(f"not applied  {mutant.name} (snippet found {count} times in {mutant.path})", flush=True)
                all_caught = False
                continue
            target.write_text(original.replace(mutant.old, mutant.new))
            start = time.perf_counter()
            try:
                code, last = _pytest(copy, mutant.tests)
            finally:
                target.write_text(original)
            verdict = _verdict(code, last)
            all_caught &= verdict == "caught"
            print(f"{verdict:<12} {mutant.name} ({time.perf_counter() - start:.0f} s; {last})", flush=True)
        return all_caught


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append",
                        help="run the mutants whose name contains this text (repeatable)")
    parser.add_argument("--list", action="store_true",
                        help="list the mutants, whether each snippet is found once, and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if args.only is None or any(text in m.name for text in args.only)]
    if args.list:
        for mutant in mutants:
            count = (ROOT / mutant.path).read_text().count(mutant.old)
            print(f"{'ok' if count == 1 else f'found {count}x':<9} {mutant.path:<22} {mutant.name}")
        return
    if not mutants:
        sys.exit(f"no mutant matches {args.only!r}")
    caught = run(mutants, baseline=not args.no_baseline)
    print(f"{len(mutants)} mutants: {'all caught' if caught else 'NOT all caught'}")
    sys.exit(0 if caught else 1)


if __name__ == "__main__":
    main()
