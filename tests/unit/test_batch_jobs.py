"""remixer.batch.jobs: sweeps and job files become checked, keyed jobs before anything runs."""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from remixer.batch.jobs import (INPUT_TYPES, find_songs, parse_value, plan, read_job_file, sweep_jobs,
                                to_request)
from remixer.requests import GenerateRequest, InputError, Output, RemixRequest, Sampling


@pytest.fixture
def songs(tmp_path) -> tuple[Path, Path]:
    first, second = tmp_path / "first.wav", tmp_path / "second.flac"
    first.write_bytes(b"RIFF first song's bytes")
    second.write_bytes(b"fLaC second song's bytes")
    return first, second


def test_the_inputs_are_the_predictors_with_their_types():
    from predict import Predictor
    parameters = inspect.signature(Predictor.predict).parameters
    assert [name for name in parameters if name != "self"] == list(INPUT_TYPES)
    for name, kind in INPUT_TYPES.items():
        annotation = str(parameters[name].annotation)  # "str", "str | None", "Optional[str]"
        # File inputs are pathlib.Path (predict.py fetches them itself), the others builtins.
        assert re.fullmatch(rf"(Optional\[)?(pathlib\.)?{kind.__name__}\]?( \| None)?", annotation), (name, annotation)


@pytest.mark.parametrize("name, text, value", [
    ("seed", "3", 3), ("top_p", "0.5", 0.5), ("return_stems", "true", True), ("return_stems", "No", False),
    ("large_chord_voca", "0", False), ("prompt", "bossa nova, brushes", "bossa nova, brushes"),
    ("music_input", "a b.wav", Path("a b.wav")), ("target_bpm", " ", None),
])
def test_values_given_as_text_take_their_inputs_type(name, text, value):
    assert parse_value(name, text) == value


@pytest.mark.parametrize("name, text, message", [
    ("seed", "3.5", "seed must be an integer, got '3.5'"),
    ("return_stems", "maybe", "return_stems must be true or false, got 'maybe'"),
    ("top_p", "high", "top_p must be a number, got 'high'"),
    ("promt", "x", "unknown input 'promt' (did you mean 'prompt'?); the inputs are the predictor's: prompt, "),
])
def test_a_value_of_the_wrong_type_or_an_unknown_input_is_named(name, text, message):
    with pytest.raises(InputError) as error:
        parse_value(name, text)
    assert str(error.value).startswith(message)


def test_inputs_map_onto_the_request_the_predictor_makes(songs):
    remix = to_request({"music_input": songs[0], "prompt": "jazz", "output_format": "mp3",
                        "normalization_strategy": "peak", "top_k": 50, "classifier_free_guidance": 5,
                        "seed": 9, "return_instrumental": True, "key_shift": -2, "model_version": "chord"})
    assert remix == RemixRequest(song=songs[0], prompt="jazz", model_version="chord", key_shift=-2,
                                 sampling=Sampling(top_k=50, classifier_free_guidance=5, seed=9),
                                 output=Output(format="mp3", normalization="peak"), return_instrumental=True)
    generation = to_request({"prompt": "calm", "duration": 4.0, "text_chords": "C G", "bpm": 90,
                             "seed": -1})  # -1: a random seed, as in the predictor
    assert generation == GenerateRequest(prompt="calm", duration=4.0, text_chords="C G", bpm=90)
    with pytest.raises(InputError, match="return_stems apply only to a remix: give a song"):
        to_request({"prompt": "calm", "return_stems": True})
    with pytest.raises(InputError, match="duration apply only to generation without a song"):
        to_request({"music_input": songs[0], "prompt": "calm", "duration": 4.0})


def test_a_sweep_is_every_song_times_every_prompt_times_every_repeated_input(songs):
    rows = sweep_jobs(list(songs), ["jazz", "lofi"], [("seed", 1), ("output_format", "mp3"), ("seed", 2)])
    assert [origin for origin, _ in rows] == [f"sweep job {n}" for n in range(1, 9)]
    assert [(inputs["music_input"].name, inputs["prompt"], inputs["seed"]) for _, inputs in rows] == [
        (song.name, prompt, seed) for song in songs for prompt in ("jazz", "lofi") for seed in (1, 2)]
    assert {inputs["output_format"] for _, inputs in rows} == {"mp3"}


def test_a_folder_gives_its_audio_files_sorted_and_nothing_else(tmp_path):
    for name in ("b.mp3", "a.wav", "sub/c.FLAC", "cover.jpg", "notes.txt", ".hidden/d.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert find_songs([tmp_path]) == [tmp_path / "a.wav", tmp_path / "b.mp3", tmp_path / "sub/c.FLAC"]
    # A batch writing into its folder of songs does not take its own remixes for songs next time.
    assert find_songs([tmp_path], outside=tmp_path / "sub") == [tmp_path / "a.wav", tmp_path / "b.mp3"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no audio file in this folder"):
        find_songs([tmp_path / "empty"])


def test_a_csv_job_file_reads_typed_cells_with_paths_beside_it_and_defaults(songs, tmp_path):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("song,prompt,seed,return_instrumental\nfirst.wav,jazz,3,true\nsecond.flac,lofi,,\n")
    rows = read_job_file(jobs, {"output_format": "flac", "seed": 7})
    assert rows == [
        ("jobs.csv line 2", {"output_format": "flac", "seed": 3, "music_input": songs[0], "prompt": "jazz",
                             "return_instrumental": True}),
        ("jobs.csv line 3", {"output_format": "flac", "seed": 7, "music_input": songs[1], "prompt": "lofi"}),
    ]


def test_a_jsonl_job_file_keeps_json_types_and_takes_generations(songs, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"song": "first.wav", "prompt": "jazz", "top_p": 0.9}\n\n'
                    '{"prompt": "calm", "text_chords": "C G", "bpm": 90, "duration": 3}\n')
    rows = read_job_file(jobs, {})
    assert rows == [("jobs.jsonl line 1", {"music_input": songs[0], "prompt": "jazz", "top_p": 0.9}),
                    ("jobs.jsonl line 3", {"prompt": "calm", "text_chords": "C G", "bpm": 90, "duration": 3})]


@pytest.mark.parametrize("name, text, message", [
    ("jobs.jsonl", '{"song": "a.wav", "prompt": "x"}\n{"song": "a.wav", prompt: "x"}\n',
     "jobs.jsonl line 2: not JSON (Expecting property name enclosed in double quotes)"),
    ("jobs.jsonl", '["a.wav", "x"]\n', "jobs.jsonl line 1: a job is a JSON object"),
    ("jobs.jsonl", '{"song": "a.wav", "promt": "x"}\n', "jobs.jsonl line 1: unknown input 'promt'"),
    ("jobs.jsonl", '{"song": "a.wav", "music_input": "b.wav"}\n',
     "jobs.jsonl line 1: give the song as song or music_input, not both"),
    ("jobs.jsonl", '{"song": 3, "prompt": "x"}\n', "jobs.jsonl line 1: music_input must be a file name, got 3"),
    ("jobs.csv", "song,prompt,temprature\na.wav,x,1\n", "jobs.csv line 1: column unknown input 'temprature' "
                                                      "(did you mean 'temperature'?)"),
    ("jobs.csv", "song,prompt,seed\na.wav,x,1\nb.wav,y,two\n", "jobs.csv line 3: seed must be an integer, got 'two'"),
    ("jobs.csv", "song,prompt\na.wav,x,extra\n", "jobs.csv line 2: more cells than the header has columns"),
    ("jobs.txt", "a.wav\n", "jobs.txt: a job file is JSON Lines (.jsonl) or CSV (.csv)"),
])
def test_a_bad_job_file_line_is_named(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError) as error:
        read_job_file(tmp_path / name, {})
    assert message in str(error.value)


def test_every_bad_job_is_reported_with_its_origin_and_none_is_kept(songs, tmp_path):
    rows = [("jobs.csv line 2", {"music_input": songs[0], "prompt": "jazz"}),
            ("jobs.csv line 3", {"music_input": songs[0]}),
            ("jobs.csv line 4", {"music_input": tmp_path / "missing.wav", "prompt": "x"}),
            ("jobs.csv line 5", {"music_input": songs[1], "prompt": "x", "key_shift": 20}),
            ("jobs.csv line 6", {"music_input": tmp_path, "prompt": "x"})]
    checked = plan(rows)
    assert [job.origin for job in checked.jobs] == ["jobs.csv line 2"] and checked.repeats == []
    assert checked.errors == [
        "jobs.csv line 3: prompt is required: describe the style of the remix, e.g. 'bossa nova'",
        f"jobs.csv line 4: song '{tmp_path / 'missing.wav'}': no such file",
        "jobs.csv line 5: key_shift must be between -12 and 12 semitones, got 20",
        f"jobs.csv line 6: song '{tmp_path}': not a file"]


def test_a_jobs_key_is_its_songs_content_and_its_request_with_defaults_filled_in(songs, tmp_path):
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(songs[0].read_bytes())
    rows = [("a", {"music_input": songs[0], "prompt": "jazz", "seed": 3}),
            ("b", {"music_input": copy, "prompt": "jazz", "seed": 3.0, "output_format": "wav"}),
            ("c", {"music_input": songs[0], "prompt": "jazz", "seed": 4}),
            ("d", {"music_input": songs[1], "prompt": "jazz", "seed": 3}),
            ("e", {"music_input": songs[0], "prompt": "jazz", "seed": 3, "return_stems": True})]
    checked = plan(rows)
    jobs = checked.jobs
    # b is a: the same bytes under another name, the same request spelled another way.
    assert checked.repeats == ["b is the same job as a (same song content and inputs): it runs once"]
    assert checked.errors == []
    assert [job.origin for job in jobs] == ["a", "c", "d", "e"]
    assert len({job.key for job in jobs}) == 4 and all(len(job.key) == 16 for job in jobs)
    assert jobs[0].song_digest == jobs[1].song_digest != jobs[2].song_digest
    # The key does not depend on the run: planning again gives the same keys.
    assert [job.key for job in plan(rows).jobs] == [job.key for job in jobs]


def test_job_folders_are_readable_and_unique(songs):
    jobs = plan([("a", {"music_input": songs[0], "prompt": "Bossa Nova, nylon guitar!"}),
                 ("b", {"prompt": "calm"})]).jobs
    assert jobs[0].folder == f"first-bossa-nova-nylon-guitar-{jobs[0].key[:8]}"
    assert jobs[1].folder == f"generation-calm-{jobs[1].key[:8]}"
    assert json.loads(json.dumps(jobs[0].shown_inputs())) == {"music_input": str(songs[0]),
                                                               "prompt": "Bossa Nova, nylon guitar!"}
