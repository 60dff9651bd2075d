"""`python -m remixer batch`: what it refuses before any model loads, and what it skips."""
from __future__ import annotations

import socket

import pytest

from remixer import pipeline
from remixer.__main__ import main
from remixer.batch.jobs import plan
from remixer.batch.results import SUCCEEDED, Record, Results


@pytest.fixture(autouse=True)
def no_models(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("models were loaded")
    monkeypatch.setattr(pipeline.Models, "load", refuse)


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "song.wav"
    path.write_bytes(b"RIFF a song")
    return path


def test_the_help_shows_examples_and_the_cli_points_to_it(capsys):
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = capsys.readouterr().out
    assert "python -m remixer batch songs/ --prompts-file styles.txt -i seed=1 -i seed=2" in text
    for option in ("--jobs", "--endpoint", "--in-flight", "--timeout", "--retries", "--out", "-i NAME=VALUE"):
        assert option in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "python -m remixer batch --help" in " ".join(capsys.readouterr().out.split())


def test_bad_jobs_are_all_reported_and_nothing_runs(song, tmp_path, capsys):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("song,prompt,key_shift\nsong.wav,jazz,2\nsong.wav,,0\nmissing.wav,lofi,0\n")
    assert main(["batch", "--jobs", str(jobs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["jobs.csv line 3: prompt is required: describe the style of the remix, e.g. 'bossa nova'",
                   f"jobs.csv line 4: song '{tmp_path / 'missing.wav'}': no such file",
                   "error: 2 of 3 jobs are invalid; nothing ran"]
    assert not (tmp_path / "out" / "results.jsonl").exists()


@pytest.mark.parametrize("options, message", [
    (["-p", "x", "-i", "seed"], "error: -i 'seed': write NAME=VALUE, e.g. -i seed=3"),
    (["-p", "x", "-i", "sed=3"], "error: unknown input 'sed' (did you mean 'seed'?)"),
    (["-p", "x", "-i", "top_k=many"], "error: top_k must be an integer, got 'many'"),
    ([], "error: nothing to run: give songs and --prompt, or --jobs FILE"),
])
def test_bad_options_are_refused(song, tmp_path, capsys, options, message):
    assert main(["batch", *([str(song)] if options else []), *options, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_a_job_file_takes_no_sweep(song, tmp_path, capsys):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"song": "song.wav", "prompt": "x"}\n')
    assert main(["batch", "--jobs", str(jobs), "-p", "y", "--out", str(tmp_path / "out")]) == 2
    assert "--jobs takes its songs and prompts from the file" in capsys.readouterr().err


def test_in_flight_needs_an_endpoint(song, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", str(song), "-p", "x", "--in-flight", "3", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "--in-flight applies to --endpoint" in capsys.readouterr().err


def test_no_endpoint_that_answers_is_an_error_before_any_job(song, tmp_path, capsys):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        assert main(["batch", str(song), "-p", "x", "--endpoint", url, "--out", str(tmp_path / "out")]) == 2
    assert f"error: no endpoint answers as a Cog server: {url}" in capsys.readouterr().err


def test_a_batch_already_done_loads_nothing_and_says_so(song, tmp_path, capsys):
    (job,) = plan([("sweep job 1", {"music_input": song, "prompt": "jazz"})]).jobs
    results = Results(tmp_path / "out")
    (results.out / job.folder).mkdir()
    (results.out / job.folder / "remix.wav").write_bytes(b"done")
    results.add(Record.of(job, SUCCEEDED, seed=1, outputs=[f"{job.folder}/remix.wav"]))
    assert main(["batch", str(song), "-p", "jazz", "--out", str(results.out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        "0 succeeded, 0 failed, 0 canceled, 1 already done (skipped) in ")
