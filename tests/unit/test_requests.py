"""Every rule of remixer.requests, the one room for input checks: what each input accepts, what it
refuses (booleans included: True is not a number), the message that names it, and that the
module stays light enough to import without any model code."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from remixer.requests import (CHORD_VERSIONS, GENERATION_ONLY, MELODY_VERSIONS, REMIX_ONLY, SECTION_LABELS,
                              STEREO_VERSIONS, GenerateRequest, InputError, Output, RangePrompt,
                              RemixRequest, Sampling, SectionPrompts, check_key_shift, check_request_kind,
                              check_sent_file, check_target_bpm, is_number, parse_section_prompts,
                              parse_time_signature, validate_bpm)

ROOT = Path(__file__).resolve().parents[2]
SONG = Path("song.wav")  # the file is only decoded by the pipeline


def _refused(message: str, build, *args, **kwargs) -> str:
    """Build with the arguments, expect an InputError whose message contains ``message``."""
    with pytest.raises(InputError) as error:
        build(*args, **kwargs)
    assert message in str(error.value), str(error.value)
    return str(error.value)


# --- the error, the number check, the module ------------------------------------------------------

def test_input_errors_are_value_errors():
    assert issubclass(InputError, ValueError)  # callers that catch ValueError keep working


@pytest.mark.parametrize("value", [0, 1, -2.5, 1e300, np.float32(0.5), np.int64(3), 2 ** 70])
def test_finite_real_numbers_are_numbers(value):
    assert is_number(value)


@pytest.mark.parametrize("value", [True, False, np.True_, float("nan"), float("inf"), -float("inf"),
                                   np.float64("nan"), "1", None, 1j, [1]])
def test_bools_non_finite_and_non_numbers_are_not(value):
    assert not is_number(value)


def test_importing_the_checks_loads_no_model_code():
    code = ("import sys, time; t = time.perf_counter(); import remixer.requests; "
            "print(time.perf_counter() - t); "
            "print(sorted(m for m in ('torch', 'audiocraft', 'demucs', 'pedalboard', 'librosa', 'scipy', "
            "'remixer.generation', 'remixer.pipeline') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    seconds, heavy = done.stdout.splitlines()
    assert heavy == "[]", heavy
    assert float(seconds) < 5.0  # about 0.2 s on a quiet machine; this only catches a heavy import


def test_versions_need_no_torch():
    assert CHORD_VERSIONS == ("chord", "chord-large", "stereo-chord", "stereo-chord-large")
    assert MELODY_VERSIONS == ("melody", "melody-large", "stereo-melody-large")
    assert STEREO_VERSIONS == ("stereo-chord", "stereo-chord-large", "stereo-melody-large")


# --- sampling and output --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"top_k": -1}, "top_k must be an integer >= 0, got -1"),
    ({"top_k": 2.5}, "top_k must be an integer >= 0, got 2.5"),
    ({"top_k": True}, "top_k must be an integer >= 0, got True"),
    ({"top_k": "250"}, "top_k must be an integer >= 0, got '250'"),
    ({"top_p": 1.5}, "top_p must be in [0, 1], got 1.5"),
    ({"top_p": -0.1}, "top_p must be in [0, 1], got -0.1"),
    ({"top_p": float("nan")}, "top_p must be a finite number, got nan"),
    ({"top_p": True}, "top_p must be a finite number, got True"),
    ({"temperature": -0.1}, "temperature must be >= 0, got -0.1"),
    ({"temperature": float("inf")}, "temperature must be a finite number, got inf"),
    ({"temperature": False}, "temperature must be a finite number, got False"),
    ({"classifier_free_guidance": -1}, "classifier_free_guidance must be >= 0, got -1"),
    ({"classifier_free_guidance": True}, "classifier_free_guidance must be a finite number, got True"),
    ({"seed": -1}, "seed must be an integer in [0, 2**32) or None, got -1"),
    ({"seed": 2 ** 32}, "seed must be an integer in [0, 2**32) or None, got 4294967296"),
    ({"seed": 1.5}, "seed must be an integer in [0, 2**32) or None, got 1.5"),
    ({"seed": True}, "seed must be an integer in [0, 2**32) or None, got True"),
    ({"seed": "7"}, "seed must be an integer in [0, 2**32) or None, got '7'"),
    ({"seed": float(2 ** 64)}, "seed must be an integer in [0, 2**32) or None, got 18446744073709551616"),
])
def test_sampling_refuses_each_bad_value_by_name(kwargs, message):
    assert _refused(message, Sampling, **kwargs) == message


def test_sampling_takes_the_published_defaults_and_whole_float_seeds_and_top_k():
    assert Sampling() == Sampling(top_k=250, top_p=0.0, temperature=1.0, classifier_free_guidance=3.0,
                                  seed=None)
    seeded = Sampling(seed=7.0, top_k=0, top_p=1.0, temperature=0.0, classifier_free_guidance=0)
    assert seeded.seed == 7 and type(seeded.seed) is int
    # Cog's schema passes 40.0 for an integer input: it is the integer 40.
    whole = Sampling(top_k=40.0)
    assert whole.top_k == 40 and type(whole.top_k) is int
    assert Sampling(seed=np.int64(2 ** 32 - 1)).seed == 2 ** 32 - 1


@pytest.mark.parametrize("kwargs, message", [
    ({"format": "ogg"}, "output_format must be one of wav, mp3, flac, got 'ogg'"),
    ({"format": True}, "output_format must be one of wav, mp3, flac, got True"),
    ({"normalization": "loud"}, "normalization_strategy must be one of loudness, clip, peak, rms, got 'loud'"),
])
def test_output_refuses_unknown_formats_and_normalizations(kwargs, message):
    assert _refused(message, Output, **kwargs) == message


# --- the remix ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"prompt": ""}, "prompt is required: describe the style of the remix"),
    ({"prompt": "   "}, "prompt is required"),
    ({"prompt": None}, "prompt is required"),
    ({"prompt": 5}, "prompt must be text, got int"),
    ({"prompt": "x" * 481}, "prompt is 481 characters long; at most 480 are accepted (the T5 text encoder "
                            "reads at most 512 tokens)"),
    ({"model_version": "melody"}, "model_version must be one of chord, chord-large, stereo-chord, "
                                  "stereo-chord-large, got 'melody'"),
    ({"model_version": "m" * 1000}, "(1002 characters)"),
    ({"multi_band_diffusion": True}, "multi_band_diffusion decodes mono models only; 'stereo-chord' is "
                                     "stereo (choose 'chord' or turn it off)"),
    ({"large_chord_voca": "yes"}, "large_chord_voca must be true or false, got 'yes'"),
    ({"large_chord_voca": 1}, "large_chord_voca must be true or false, got 1"),
    ({"multi_band_diffusion": 0}, "multi_band_diffusion must be true or false, got 0"),
    ({"return_instrumental": None}, "return_instrumental must be true or false, got None"),
    ({"return_stems": "true"}, "return_stems must be true or false, got 'true'"),
    ({"return_analysis": 1.0}, "return_analysis must be true or false, got 1.0"),
    ({"chroma_coefficient": 0.4}, "chroma_coefficient must be between 0.5 and 2.5, got 0.4"),
    ({"chroma_coefficient": 2.6}, "chroma_coefficient must be between 0.5 and 2.5, got 2.6"),
    ({"chroma_coefficient": float("nan")}, "chroma_coefficient must be between 0.5 and 2.5, got nan"),
    ({"chroma_coefficient": True}, "chroma_coefficient must be between 0.5 and 2.5, got True"),
    ({"chroma_coefficient": "1"}, "chroma_coefficient must be between 0.5 and 2.5, got '1'"),
    ({"beat_sync_threshold": 0}, "beat_sync_threshold must be a number of seconds > 0, or -1 / unset for "
                                 "automatic (1.1 beats), got 0"),
    ({"beat_sync_threshold": -2}, "beat_sync_threshold must be a number of seconds > 0"),
    ({"beat_sync_threshold": float("inf")}, "beat_sync_threshold must be a number of seconds > 0"),
    ({"beat_sync_threshold": True}, "beat_sync_threshold must be a number of seconds > 0, or -1 / unset for "
                                    "automatic (1.1 beats), got True"),
    ({"target_bpm": True}, "target_bpm must be a number of beats per minute, got True"),
    ({"target_bpm": 300}, "target_bpm must be between 40 and 240 beats per minute, got 300"),
    ({"key_shift": True}, "key_shift must be a whole number of semitones, got True"),
    ({"key_shift": 13}, "key_shift must be between -12 and 12 semitones, got 13"),
    ({"song_bpm": 250}, "song_bpm must be between 40 and 240 beats per minute, got 250"),
    ({"song_bpm": "fast"}, "song_bpm must be a number of beats per minute, got 'fast'"),
    # The song's tempo stated, a target out of range is refused with the request, before any work.
    ({"song_bpm": 190, "target_bpm": 80}, "target_bpm 80 is 0.42x song_bpm (190.0 BPM); it must stay "
                                          "within 0.5x-2x of it (95.0-380.0 BPM)"),
    ({"song_bpm": 60, "target_bpm": 121}, "target_bpm 121 is 2.02x song_bpm (60.0 BPM)"),
    ({"section_prompts": "hook: x"}, "unknown section 'hook'"),
    ({"section_prompts": 3}, "section_prompts must be text"),
])
def test_remix_refuses_each_bad_input_by_name(kwargs, message):
    _refused(message, RemixRequest, **{"song": SONG, "prompt": "bossa nova", **kwargs})


def test_song_bpm_is_a_float_and_takes_any_target_within_2x():
    assert RemixRequest(song=SONG, prompt="x", song_bpm=95).song_bpm == 95.0
    assert RemixRequest(song=SONG, prompt="x", song_bpm=190, target_bpm=95).target_bpm == 95.0
    assert RemixRequest(song=SONG, prompt="x").song_bpm is None


def test_remix_defaults_and_the_values_that_mean_automatic():
    request = RemixRequest(song=SONG, prompt="bossa nova")
    assert (request.model_version, request.beat_sync_threshold, request.chroma_coefficient) == \
        ("stereo-chord", None, 1.0)
    assert RemixRequest(song=SONG, prompt="x", beat_sync_threshold=-1).beat_sync_threshold == -1
    assert RemixRequest(song=SONG, prompt="x", beat_sync_threshold=0.25).beat_sync_threshold == 0.25
    assert RemixRequest(song=SONG, prompt="x", chroma_coefficient=np.float32(2.5)).chroma_coefficient == 2.5
    moved = RemixRequest(song=SONG, prompt="x", target_bpm=90, key_shift=-2.0)
    assert moved.target_bpm == 90.0 and type(moved.target_bpm) is float
    assert moved.key_shift == -2 and type(moved.key_shift) is int
    assert RemixRequest(song=SONG, prompt="x", model_version="chord", multi_band_diffusion=True)
    assert RemixRequest(song=SONG, prompt="x" * 480).prompt == "x" * 480


# --- generation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"prompt": None}, "give a prompt, text_chords or an input audio"),
    ({"prompt": " ", "text_chords": "  "}, "give a prompt, text_chords or an input audio"),
    ({"duration": 0.05}, "duration must be in [0.1, 600] seconds, got 0.05"),
    ({"duration": 601}, "duration must be in [0.1, 600] seconds, got 601"),
    ({"duration": float("nan")}, "duration must be in [0.1, 600] seconds, got nan"),
    ({"duration": True}, "duration must be in [0.1, 600] seconds, got True"),
    ({"duration": "8"}, "duration must be in [0.1, 600] seconds, got '8'"),
    ({"model_version": "large"}, "model_version must be one of chord, chord-large, stereo-chord, "
                                 "stereo-chord-large, melody, melody-large, stereo-melody-large, got 'large'"),
    ({"model_version": "stereo-melody-large", "multi_band_diffusion": True}, "decodes mono models only"),
    ({"continuation": "no"}, "continuation must be true or false, got 'no'"),
    ({"chroma_coefficient": False}, "chroma_coefficient must be between 0.5 and 2.5, got False"),
    ({"time_sig": "4-4"}, "time_sig: time signature '4-4' is not NUMERATOR/DENOMINATOR"),
    ({"time_sig": "5/3"}, "time_sig: time signature '5/3': denominator 3 must be a note value"),
    ({"time_sig": "4/4" + " " * 14}, "time_sig is 17 characters long; at most 16 are accepted"),
    ({"time_sig": True}, "time_sig must be text, got bool"),
    ({"text_chords": "C G", "bpm": None}, "text_chords need bpm (the tempo that sets each bar's length)"),
    ({"text_chords": "C G", "bpm": 120, "model_version": "melody"},
     "text_chords need a chord model (one of chord, chord-large, stereo-chord, stereo-chord-large); "
     "'melody' is a melody model"),
    ({"text_chords": "C Hm", "bpm": 120}, "Hm"),
    ({"text_chords": "C G,", "bpm": 120}, "G,"),
    ({"text_chords": "C " * 4097, "bpm": 120}, "text_chords is 8194 characters long; at most 8192"),
    ({"text_chords": "C G", "bpm": True}, "bpm must be a number of beats per minute, got True"),
    ({"text_chords": "C G", "bpm": 1000}, "bpm must be between 20 and 300 beats per minute, got 1000"),
    ({"bpm": 0}, "bpm must be between 20 and 300 beats per minute, got 0"),
    ({"text_chords": "C G", "bpm": 120, "audio": SONG},
     "give either text_chords or chords from input audio, not both (both are allowed only with "
     "continuation=True)"),
    ({"continuation": True}, "continuation=True needs an input audio to continue"),
    ({"audio_start": 2.0}, "audio_start select a part of input_audio: give input_audio"),
    ({"audio_start": 1.0, "audio_end": 3.0}, "audio_start, audio_end select a part of input_audio"),
    ({"audio": SONG, "audio_start": -1}, "audio_start must be >= 0 seconds, got -1"),
    ({"audio": SONG, "audio_start": True}, "audio_start must be >= 0 seconds, got True"),
    ({"audio": SONG, "audio_start": float("nan")}, "audio_start must be >= 0 seconds, got nan"),
    ({"audio": SONG, "audio_start": 2.0, "audio_end": 2.0},
     "audio_end must be after audio_start (2.0 s), or -1 / unset for the end of the file, got 2.0"),
    ({"audio": SONG, "audio_end": True}, "audio_end must be after audio_start (0.0 s)"),
    ({"audio": SONG, "audio_end": float("inf")}, "audio_end must be after audio_start"),
])
def test_generation_refuses_each_bad_input_by_name(kwargs, message):
    _refused(message, GenerateRequest, **{"prompt": "calm", "model_version": "chord", **kwargs})


def test_generation_accepts_what_each_model_takes():
    assert GenerateRequest(prompt=None, text_chords=" C G ", bpm=90).text_chords == "C G"
    assert GenerateRequest(prompt="calm", text_chords="", bpm=None).text_chords is None
    assert GenerateRequest(prompt=None, audio=SONG, model_version="melody").audio == SONG
    both = GenerateRequest(prompt=None, audio=SONG, text_chords="C", bpm=60, continuation=True)
    assert both.continuation and both.text_chords == "C"
    clip = GenerateRequest(prompt="x", audio=SONG, audio_start=1.5, audio_end=-1)
    assert (clip.audio_start, clip.audio_end) == (1.5, -1)
    assert GenerateRequest(prompt="x", audio_end=-1).audio_end == -1  # -1 is "the end", even unset
    assert GenerateRequest(prompt="x", duration=600, time_sig=" 6 / 8 ").duration == 600


# --- which inputs belong to which request ---------------------------------------------------------

def _inputs(**given) -> dict:
    """Every kind-specific input at its default, then ``given``."""
    defaults = {name: unset[0] for name, unset in {**REMIX_ONLY, **GENERATION_ONLY}.items()}
    return {**defaults, **given}


def test_defaults_are_not_given_and_either_kind_passes():
    check_request_kind(_inputs(), remix=True, song="music_input")
    check_request_kind(_inputs(), remix=False, song="music_input")
    check_request_kind(_inputs(beat_sync_threshold=-1, audio_end=-1, key_shift=0.0, audio_start=0.0,
                               duration=8), remix=True, song="music_input")
    check_request_kind(_inputs(audio_end=-1), remix=False, song="music_input")


@pytest.mark.parametrize("name, value", [("text_chords", "C G"), ("text_chords", ""), ("bpm", 100),
                                         ("input_audio", SONG), ("continuation", True), ("audio_start", 1.0),
                                         ("audio_end", 3.0), ("duration", 20.0), ("time_sig", "3/4"),
                                         ("continuation", 0.0)])
def test_a_generation_input_in_a_remix_is_named(name, value):
    message = _refused("", check_request_kind, _inputs(**{name: value}), remix=True, song="music_input")
    assert message == (f"{name} apply only to generation without music_input; a remix takes its chords "
                       f"and tempo from the song")


@pytest.mark.parametrize("name, value", [("beat_sync_threshold", 0.5), ("return_instrumental", True),
                                         ("return_stems", True), ("return_analysis", True),
                                         ("target_bpm", 90), ("key_shift", 2), ("key_shift", False),
                                         ("section_prompts", "verse: a"), ("section_prompts", ""),
                                         ("song_bpm", 120)])
def test_a_remix_input_without_a_song_is_named(name, value):
    message = _refused("", check_request_kind, _inputs(**{name: value}), remix=False, song="music_input")
    assert message == f"{name} apply only to a remix: give music_input"


def test_every_input_of_the_other_kind_is_named_in_order_as_the_front_end_spells_it():
    cli = {"song": "a song", "spell": lambda name: "--" + name.replace("_", "-")}
    given = _inputs(target_bpm=90, key_shift=-2, return_stems=True, bpm=120, time_sig="3/4")
    assert _refused("", check_request_kind, given, remix=False, **cli) == \
        "--return-stems, --target-bpm, --key-shift apply only to a remix: give a song"
    assert _refused("", check_request_kind, given, remix=True, **cli).startswith(
        "--bpm, --time-sig apply only to generation without a song")
    with pytest.raises(KeyError):  # a front-end that forgets an input is a bug, not a client error
        check_request_kind({}, remix=True, song="music_input")


# --- files sent with the request ------------------------------------------------------------------

@pytest.mark.parametrize("value", ["https://example.com/song.mp3", "http://10.0.0.1:8000/a",
                                   "HTTPS://EXAMPLE.COM/X.WAV", "data:audio/wav;base64,UklGRg==", "data:,x"])
def test_urls_and_data_uris_are_files_sent_with_the_request(value):
    assert check_sent_file(value, "music_input") == value
    assert check_sent_file(None, "input_audio") is None


@pytest.mark.parametrize("value", ["/etc/passwd", "/etc", "song.wav", "file:///etc/passwd", "ftp://host/x.wav",
                                   " https://example.com/x", "", Path("/tmp/tmpabcdefghsong.wav"), 3, ["http://x"]])
def test_anything_else_is_refused_alike_whatever_exists_there(value):
    message = _refused("", check_sent_file, value, "input_audio")
    assert message == ("input_audio must be a file sent with the request (a URL or a data URI); "
                       "paths on the server are not accepted")


# --- one input at a time --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected", [("4/4", (4, 4)), (" 6 / 8 ", (6, 8)), ("7/8", (7, 8)), ("32/16", (32, 16))]
)
def test_time_signature_parses(text, expected):
    assert parse_time_signature(text) == expected


@pytest.mark.parametrize("text", ["4", "0/4", "4/3", "x/4", "", "33/4", "4/0", "4/4/4", "-3/4", None])
def test_bad_time_signature_is_rejected_clearly(text):
    with pytest.raises(InputError, match="time signature"):
        parse_time_signature(text)


@pytest.mark.parametrize("bpm", [0, -5, float("nan"), float("inf"), 1000, 19.9, 300.5, "120", True, np.True_, None])
def test_absurd_bpm_is_rejected_clearly(bpm):
    with pytest.raises(InputError, match="bpm"):
        validate_bpm(bpm)


def test_bpm_bounds_and_numpy_numbers_are_accepted():
    assert validate_bpm(20) == 20.0 and validate_bpm(np.float32(300.0)) == 300.0



@pytest.mark.parametrize("value, message", [
    (300, "target_bpm must be between 40 and 240 beats per minute, got 300"),
    (39.5, "target_bpm must be between 40 and 240 beats per minute, got 39.5"),
    (float("nan"), "target_bpm must be a number of beats per minute, got nan"),
    ("fast", "target_bpm must be a number of beats per minute, got 'fast'"),
    (True, "target_bpm must be a number of beats per minute, got True"),
])
def test_bad_target_bpm_is_named(value, message):
    with pytest.raises(InputError) as error:
        check_target_bpm(value)
    assert str(error.value) == message


@pytest.mark.parametrize("value, message", [
    (13, "key_shift must be between -12 and 12 semitones, got 13"),
    (-13, "key_shift must be between -12 and 12 semitones, got -13"),
    (1.5, "key_shift must be a whole number of semitones, got 1.5"),
    ("up", "key_shift must be a whole number of semitones, got 'up'"),
    (True, "key_shift must be a whole number of semitones, got True"),
    (float("nan"), "key_shift must be a whole number of semitones, got nan"),
])
def test_bad_key_shift_is_named(value, message):
    with pytest.raises(InputError) as error:
        check_key_shift(value)
    assert str(error.value) == message


def test_good_values_pass_through():
    assert check_target_bpm(None) is None and check_target_bpm(90) == 90.0
    assert check_key_shift(-12) == -12 and check_key_shift(2.0) == 2 and type(check_key_shift(2.0)) is int



# --- section prompts -------------------------------------------------------------------------------

def test_labels_are_parsed_case_insensitively():
    assert parse_section_prompts("verse: nylon guitar, brushes; Chorus : full band, horns") == \
        SectionPrompts(labels={"verse": "nylon guitar, brushes", "chorus": "full band, horns"})


def test_time_ranges_are_parsed_in_seconds_and_sorted():
    assert parse_section_prompts("0:45-: full band; 0:00-0:45: ambient pads") == SectionPrompts(ranges=(
        RangePrompt(0.0, 45.0, "ambient pads", "0:00-0:45"), RangePrompt(45.0, None, "full band", "0:45-")))


def test_time_ranges_in_plain_seconds_and_hours():
    parsed = parse_section_prompts("12.5 - 40: strings; 1:00:00-1:00:30.25: coda: slow")
    assert parsed.ranges == (RangePrompt(12.5, 40.0, "strings", "12.5 - 40"),
                             RangePrompt(3600.0, 3630.25, "coda: slow", "1:00:00-1:00:30.25"))


def test_labels_and_ranges_mix():
    parsed = parse_section_prompts("chorus: full band; 0:00-0:20: solo piano; outro: strings")
    assert parsed == SectionPrompts(labels={"chorus": "full band", "outro": "strings"},
                                    ranges=(RangePrompt(0.0, 20.0, "solo piano", "0:00-0:20"),))


def test_empty_parts_are_skipped():
    assert parse_section_prompts(" verse: a;; ;chorus: b; ") == \
        SectionPrompts(labels={"verse": "a", "chorus": "b"})


@pytest.mark.parametrize("text, message", [
    ("verse: a; Verse: b", "section_prompts gives 'verse' twice"),
    ("hook: big synths", "section_prompts part 'hook: big synths': unknown section 'hook'; All-In-One's "
                         "sections are intro, verse, chorus, bridge, inst, solo, break, outro (or give a "
                         "time range such as '0:45-1:30: horns')"),
    ("pre-chorus: build", "section_prompts part 'pre-chorus: build': unknown section 'pre-chorus'"),
    ("0:00-0:45: a; 0:30-1:00: b", "section_prompts ranges '0:00-0:45' and '0:30-1:00' overlap"),
    ("0:45-: a; 1:00-1:30: b", "section_prompts ranges '0:45-' and '1:00-1:30' overlap"),
    ("verse:", "section_prompts part 'verse:' has no prompt after its ':'"),
    ("verse: a; 0:10-0:20:  ", "section_prompts part '0:10-0:20:' has no prompt after its ':'"),
    ("nylon guitar", "section_prompts part 'nylon guitar' is neither 'label: prompt' nor "
                     "'start-end: prompt' (e.g. 'verse: nylon guitar, brushes; chorus: full band, "
                     "horns' or '0:00-0:45: ambient pads; 0:45-: full band')"),
    # Typos are named as what they are, with the part written as it was meant.
    ("0:00-0:45 ambient pads", "section_prompts part '0:00-0:45 ambient pads': a ':' is missing between "
                               "the range '0:00-0:45' and its prompt; write '0:00-0:45: ambient pads'"),
    ("0:45- full band", "a ':' is missing between the range '0:45-' and its prompt; write "
                        "'0:45-: full band'"),
    ("verse nylon guitar", "section_prompts part 'verse nylon guitar': a ':' is missing after the "
                           "section 'verse'; write 'verse: nylon guitar'"),
    ("vrese: guitar", "unknown section 'vrese'; did you mean 'verse'? All-In-One's sections are"),
    ("0:45: full band", "section_prompts part '0:45: full band' gives one time, not a range: write "
                        "start-end, e.g. '0:45-: ...' (to the end) or '0:45-1:30: ...'"),
    ("0:45-0:30: a", "section_prompts range '0:45-0:30' ends before it starts"),
    ("0:75-: a", "section_prompts part '0:75-: a': '0:75' is not a time (m:ss, h:mm:ss or seconds)"),
    (" ; ", "section_prompts has no part; write e.g. 'verse: nylon guitar, brushes; chorus: full band, horns'"),
    (3, "section_prompts must be text"),
])
def test_bad_section_prompts_name_the_part(text, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_section_prompts(text)


def test_a_prompt_may_start_with_digits_after_the_ranges_colon():
    # "1:30:80" is no time, so the ':' before "80s" ends the range; "0:45" is one, so it is kept.
    assert parse_section_prompts("0:45-1:30:80s synth").ranges == (RangePrompt(45.0, 90.0, "80s synth", "0:45-1:30"),)
    assert parse_section_prompts("0:45-:80s synth").ranges == (RangePrompt(45.0, None, "80s synth", "0:45-"),)


def test_labels_are_all_in_ones_functions():
    from allin1_infer.config import HARMONIX_LABELS
    assert set(SECTION_LABELS) == set(HARMONIX_LABELS) - {"start", "end"}


def test_request_validates_section_prompts_and_the_backend():
    with pytest.raises(InputError, match="unknown section 'hook'"):
        RemixRequest(song="s.wav", prompt="rock", section_prompts="hook: x")
    assert RemixRequest(song="s.wav", prompt="rock", section_prompts="  ").section_prompts is None
    request = RemixRequest(song="s.wav", prompt="rock", section_prompts="verse: a; 0:30-: b")
    assert request.sections("allinone").labels == {"verse": "a"}
    with pytest.raises(InputError) as error:
        request.sections("madmom")
    assert str(error.value) == (
        "section_prompts names sections (verse), but the madmom analysis finds no sections: give "
        "time ranges instead, e.g. '0:00-0:45: ambient pads; 0:45-: full band', or fetch the "
        "All-In-One weights (python -m remixer.weights fetch allinone)")
    ranges = RemixRequest(song="s.wav", prompt="rock", section_prompts="0:00-0:30: a; 0:30-: b")
    assert len(ranges.sections("madmom").ranges) == 2


def test_every_section_prompt_is_held_to_the_text_encoders_limit():
    long = "x" * 481
    with pytest.raises(InputError, match=r"section_prompts prompt 'x{40}\.\.\.' is 481 characters long; "
                                         r"at most 480 are accepted \(the T5 text encoder reads at most 512"):
        RemixRequest(song="s.wav", prompt="rock", section_prompts=f"verse: a; 0:30-: {long}")
    with pytest.raises(InputError, match="section_prompts is 7681 characters long; at most 7680"):
        RemixRequest(song="s.wav", prompt="rock", section_prompts="verse: " + "y" * 7674)


def test_time_ranges_follow_a_new_tempo():
    prompts = parse_section_prompts("verse: a; 0:00-0:30: b; 0:30-: c")
    scaled = prompts.scaled(100 / 120)
    assert scaled.labels == {"verse": "a"}
    assert [(item.start, item.end, item.prompt) for item in scaled.ranges] == [
        (0.0, 25.0, "b"), (25.0, None, "c")]


def test_a_range_past_the_song_is_refused():
    with pytest.raises(InputError, match=re.escape(
            "section_prompts range '1:30-' starts at 90 s, after the song's end (75.30 s)")):
        parse_section_prompts("0:00-1:30: a; 1:30-: b").check_duration(75.3)
