"""remixer.batch.results and .progress: results.jsonl, job folders, the summary table."""
from __future__ import annotations

import json

import pytest

from remixer.batch.jobs import plan
from remixer.batch.progress import summary
from remixer.batch.results import CANCELED, FAILED, SUCCEEDED, Record, Results


@pytest.fixture
def jobs(tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    return plan([("sweep job 1", {"music_input": song, "prompt": "jazz"}),
                 ("sweep job 2", {"music_input": song, "prompt": "lofi"})]).jobs


def _commit(results: Results, job, files: dict[str, bytes]) -> list[str]:
    with results.staging(job) as staging:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        return results.commit(job, staging, [staging / name for name in files])


def test_a_job_is_finished_when_its_last_record_succeeded_and_its_files_are_there(tmp_path, jobs):
    results = Results(tmp_path / "out")
    first, second = jobs
    results.add(Record.of(first, FAILED, error="boom"))
    outputs = _commit(results, first, {"remix.wav": b"mix", "analysis.json": b"{}"})
    assert outputs == [f"{first.folder}/remix.wav", f"{first.folder}/analysis.json"]
    results.add(Record.of(first, SUCCEEDED, seed=4, outputs=outputs, timings={"generation": 1.5}))
    results.add(Record.of(second, CANCELED, error="interrupted"))
    records = results.load()
    assert records[first.key].status == SUCCEEDED and records[first.key].seed == 4
    assert records[first.key].inputs == {"music_input": str(first.inputs["music_input"]), "prompt": "jazz"}
    assert results.finished(records, first) and not results.finished(records, second)
    (tmp_path / "out" / first.folder / "analysis.json").unlink()  # an output lost: run it again
    assert not results.finished(records, first)
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == [FAILED, SUCCEEDED, CANCELED]


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path, jobs):
    results = Results(tmp_path)
    results.add(Record.of(jobs[0], FAILED, error="boom"))
    with results.path.open("a") as stream:
        stream.write('{"key": "abc", "orig')
    assert list(results.load()) == [jobs[0].key]


def test_a_committed_folder_replaces_the_last_runs_and_an_uncommitted_one_leaves_nothing(tmp_path, jobs):
    results = Results(tmp_path / "out")
    _commit(results, jobs[0], {"remix.wav": b"old", "stem-vocals.wav": b"old"})
    _commit(results, jobs[0], {"remix.wav": b"new"})
    assert sorted(p.name for p in (results.out / jobs[0].folder).iterdir()) == ["remix.wav"]
    assert (results.out / jobs[0].folder / "remix.wav").read_bytes() == b"new"
    with pytest.raises(RuntimeError), results.staging(jobs[1]) as staging:
        (staging / "remix.wav").write_bytes(b"half")
        raise RuntimeError("the job failed")
    assert sorted(p.name for p in results.out.iterdir()) == [jobs[0].folder]


def test_the_summary_has_a_row_per_job_and_the_totals(jobs):
    records = [Record.of(jobs[0], SUCCEEDED, seed=7, seconds=12.34, outputs=[f"{jobs[0].folder}/remix.wav"]),
               Record.of(jobs[1], FAILED, seconds=0.5, error="music_input: not an audio file, " + "x" * 80)]
    lines = summary(records, skipped=3, seconds=20.0).splitlines()
    assert lines[0].split() == ["status", "seed", "seconds", "job"]
    assert lines[1].split() == [SUCCEEDED, "7", "12.3", jobs[0].folder]
    assert lines[2].split()[:4] == [FAILED, "-", "0.5", "sweep"]
    assert "sweep job 2: music_input: not an audio file, xxx" in lines[2] and lines[2].endswith("...")
    assert lines[3] == "1 succeeded, 1 failed, 0 canceled, 3 already done (skipped) in 20.0 s"
