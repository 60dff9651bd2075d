"""`python -m remixer batch` in this process, on tiny weights: a sweep reads its song once, every
job gets its folder and record, and running it again redoes only what failed."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from devtools.tiny.cache import build_tiny_weights
from fixtures.music import synth_song
from remixer.__main__ import main
from remixer.batch.jobs import plan, read_job_file
from remixer.batch.remote import output_names

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SECONDS = 2.5
PROMPTS = ("bossa nova", "lofi hip hop", "dark techno")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Five jobs (a sweep of three prompts, a fourth remix whose chords the 25-class BTC reads,
    a song that is no audio), run twice with the same command."""
    root = tmp_path_factory.mktemp("batch")
    weights = root / "weights"
    weights.mkdir()
    manifest = build_tiny_weights(weights)
    song = synth_song(120, duration=SECONDS, sample_rate=22_050, channels=1)
    sf.write(root / "song.wav", song.audio.T, song.sample_rate)
    (root / "broken.wav").write_text("these are notes, not audio")
    jobs = root / "jobs.csv"
    jobs.write_text("song,prompt,large_chord_voca\n" + "".join(f"song.wav,{p},\n" for p in PROMPTS)
                    + "song.wav,bossa nova,false\nbroken.wav,bossa nova,\n")
    command = ["batch", "--jobs", str(jobs), "-i", "model_version=chord", "-i", "seed=5", "-i", "return_analysis=true",
               "--out", str(root / "out"), "--weights-dir", str(weights), "--offline", "--analysis-backend", "madmom",
               "-q"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REMIXER_WEIGHTS_MANIFEST", str(manifest))
        yield root, jobs, command


@pytest.fixture(scope="module")
def first_run(batch):
    root, jobs, command = batch
    code = main(command)
    return code, (root / "out" / "batch.log").read_text(), _records(root)


def _records(root) -> list[dict]:
    return [json.loads(line) for line in (root / "out" / "results.jsonl").read_text().splitlines()]


def _starts(log: str, stage: str) -> int:
    return sum(line.endswith(f"remixer.pipeline: {stage} ...") for line in log.splitlines())


def test_a_sweep_on_one_song_separates_it_once(first_run):
    code, log, records = first_run
    assert code == 1  # the broken song's job failed
    assert _starts(log, "separation") == 1 and _starts(log, "analysis (song)") == 1
    assert _starts(log, "chords") == 2  # 170 classes for three jobs, then 25 for the fourth
    # The same windows for every prompt: read once per chord reader too.
    assert _starts(log, "chords per window") == 2
    assert log.count("chords of the 2 windows: as read for an earlier remix of this song") == 2
    assert _starts(log, "decode") == 2  # the song, and the file that is not audio
    assert _starts(log, "generation") == 4
    assert [r["status"] for r in records] == ["succeeded"] * 4 + ["failed"]
    first, *others = records[:4]
    assert {"separation", "chords", "analysis (song)", "generation"} <= set(first["timings"])
    assert first["reused_analysis"] is False and all(r["reused_analysis"] for r in others)
    assert [set(r["timings"]) & {"separation", "chords"} for r in others] == [set(), set(), {"chords"}]
    assert ["chords per window" in r["timings"] for r in records[:4]] == [True, False, False, True]


def test_every_job_gets_its_folder_named_as_the_predictor_orders_its_outputs(batch, first_run):
    root, jobs, _ = batch
    _, _, records = first_run
    planned = plan(read_job_file(jobs, {"model_version": "chord", "seed": 5, "return_analysis": True})).jobs
    for job, record in zip(planned[:4], records):
        assert record["key"] == job.key and record["origin"] == job.origin and record["seed"] == 5
        assert record["outputs"] == [f"{job.folder}/{name}" for name in output_names(job.request)]
        assert sorted(p.name for p in (root / "out" / job.folder).iterdir()) == sorted(output_names(job.request))
        info = sf.info(root / "out" / job.folder / "remix.wav")
        assert (info.samplerate, info.frames) == (32_000, SECONDS * 32_000)
        analysis = json.loads((root / "out" / job.folder / "analysis.json").read_text())
        assert analysis["prompt"] == job.inputs["prompt"] and analysis["seed"] == 5
    # The three prompts were three remixes of the same chords; the fourth read 25 classes.
    chords = [json.loads((root / "out" / job.folder / "analysis.json").read_text())["chords"] for job in planned[:4]]
    assert chords[0] == chords[1] == chords[2]
    assert {c["label"].split(":")[1] if ":" in c["label"] else "maj" for c in chords[3]} <= {"maj", "min", "N"}
    assert chords[3] != chords[0]
    mixes = [sf.read(root / "out" / job.folder / "remix.wav")[0] for job in planned[:3]]
    assert not np.array_equal(mixes[0], mixes[1])


def test_a_song_that_is_not_audio_fails_its_job_with_its_message(batch, first_run):
    root, _, _ = batch
    _, log, records = first_run
    broken = records[4]
    assert broken["origin"] == "jobs.csv line 6" and broken["outputs"] == []
    assert broken["error"].startswith(f"{root / 'broken.wav'}: not an audio file")
    assert "Traceback" not in log


def test_running_it_again_redoes_only_what_failed(batch, first_run, capsys):
    root, _, command = batch
    before = len((root / "out" / "batch.log").read_text())
    capsys.readouterr()
    assert main(command) == 1
    log = (root / "out" / "batch.log").read_text()[before:]
    assert _starts(log, "decode") == 1 and _starts(log, "separation") == 0 and _starts(log, "generation") == 0
    records = _records(root)
    assert len(records) == 6 and records[5]["origin"] == "jobs.csv line 6" and records[5]["status"] == "failed"
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        "0 succeeded, 1 failed, 0 canceled, 4 already done (skipped) in ")
