"""`python -m remixer`: the same remix as the predictor, written where the user asks."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch
from threadpoolctl import threadpool_info

from devtools.synth import demo_song
from devtools.tiny.cache import build_tiny_weights
from fixtures.cog_server import ROOT
from fixtures.music import synth_song
from remixer import pipeline
from remixer.__main__ import _parser, main
from remixer.threads import available_cores
from remixer.weights import DEFAULT_MANIFEST, Manifest


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    return root, build_tiny_weights(root)


def test_cli_remix_writes_the_mix_and_extras_beside_it(weights, tmp_path, monkeypatch, capsys):
    root, manifest = weights
    monkeypatch.setenv("REMIXER_WEIGHTS_MANIFEST", str(manifest))
    song = synth_song(120, duration=2.5, sample_rate=22_050, channels=1)
    sf.write(tmp_path / "song.wav", song.audio.T, song.sample_rate)
    out = tmp_path / "out" / "remix.mp3"
    code = main([str(tmp_path / "song.wav"), "--prompt", "bossa nova", "-o", str(out),
                 "--weights-dir", str(root), "--offline", "--model-version", "chord", "--seed", "5",
                 "--analysis-backend", "madmom", "--return-analysis", "--return-instrumental", "-q"])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out), str(out.with_name("remix.instrumental.mp3")),
                       str(out.with_name("remix.analysis.json")), str(out.with_name("remix.analysis.png")),
                       str(out.with_name("remix.analysis.html"))]
    info = sf.info(out)
    # Output rate: max(song rate, model rate 32 kHz); mp3 decodes within 50 ms of the song's length.
    assert info.samplerate == 32_000 and info.channels == 1
    assert abs(info.duration - 2.5) < 0.05
    analysis = json.loads(out.with_name("remix.analysis.json").read_text())
    assert analysis["seed"] == 5 and analysis["prompt"].startswith("bossa nova")
    assert analysis["song"]["backend"] == "madmom"
    # Without section prompts the windows are audiocraft's: the tiny model's 2 s window every 1.2 s.
    assert [(w["start"], w["new_start"], w["new_end"], w["section"], w["description"]) for w in analysis["windows"]] \
        == [(0.0, 0.0, 2.0, None, analysis["description"]), (1.2, 2.0, 2.5, None, analysis["description"])]


def test_cli_reports_bad_input_without_a_traceback(weights, tmp_path, capsys):
    root, _ = weights
    code = main(["--prompt", "x", "--text-chords", "C H", "--bpm", "120", "-o", str(tmp_path / "a.wav"),
                 "--weights-dir", str(root), "--offline"])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "'H'" in err and "Traceback" not in err


def test_cli_remix_options_need_a_song(weights, tmp_path, capsys):
    root, _ = weights
    code = main(["--prompt", "x", "--return-stems", "-o", str(tmp_path / "a.wav"), "--weights-dir", str(root),
                 "--offline"])
    assert code == 2 and "--return-stems apply only to a remix" in capsys.readouterr().err


def test_cli_rejects_an_unknown_output_suffix(weights, tmp_path, capsys):
    root, _ = weights
    code = main(["--prompt", "x", "-o", str(tmp_path / "a.ogg"), "--weights-dir", str(root), "--offline"])
    assert code == 2 and ".wav" in capsys.readouterr().err


def test_cli_help_documents_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--prompt", "--text-chords", "--beat-sync-threshold", "--return-stems", "--offline"):
        assert option in text


def test_cli_remix_at_a_new_tempo_and_key(weights, tmp_path, monkeypatch, capsys):
    root, manifest = weights
    monkeypatch.setenv("REMIXER_WEIGHTS_MANIFEST", str(manifest))
    song = synth_song(120, duration=4.0, sample_rate=32_000, channels=1)
    sf.write(tmp_path / "song.wav", song.audio.T, song.sample_rate)
    out = tmp_path / "remix.wav"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny LM is latency-bound; two threads crawl on a busy machine
    try:
        code = main([str(tmp_path / "song.wav"), "--prompt", "lofi", "-o", str(out), "--weights-dir", str(root),
                     "--offline", "--model-version", "chord", "--seed", "1", "--analysis-backend", "madmom",
                     "--target-bpm", "150", "--key-shift", "-2", "--return-analysis", "-q"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0, capsys.readouterr().err
    analysis = json.loads(out.with_name("remix.analysis.json").read_text())
    ratio = analysis["transform"]["stretch_ratio"]
    assert ratio == pytest.approx(analysis["song"]["bpm"] / 150) and analysis["transform"]["key_shift"] == -2
    assert analysis["description"] == "lofi, bpm : 150"
    assert abs(sf.info(out).frames - 4.0 * 32_000 * ratio) <= 1
    assert out.with_name("remix.analysis.png").read_bytes()[:4] == b"\x89PNG"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_draws_a_bar_for_generation_and_logs_windows_only_with_verbose(weights, tmp_path, monkeypatch,
                                                                         caplog):
    root, manifest = weights
    monkeypatch.setenv("REMIXER_WEIGHTS_MANIFEST", str(manifest))
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    options = ["--prompt", "calm", "--duration", "2.5", "--model-version", "chord", "--seed", "3",
               "--weights-dir", str(root), "--offline", "--analysis-backend", "madmom"]
    assert main([*options, "-o", str(tmp_path / "plain.wav")]) == 0
    plain = caplog.messages[:]
    caplog.clear()
    assert main([*options, "-o", str(tmp_path / "verbose.wav"), "-v"]) == 0
    verbose = caplog.messages
    # One line per stage; the windows (2.5 s in the tiny model's 2 s windows: two) only with -v.
    assert [m.split(" done in ")[0] for m in plain if " done in " in m] == ["generation", "export"]
    assert next(m for m in plain if m.startswith("generation done in")).endswith(" s (125 steps)")
    assert not [m for m in plain if m.startswith("window ")]
    assert [m.split(":")[0] for m in verbose if m.startswith("window ")] == ["window 1/2", "window 2/2"]
    # The bar counted the decoding steps on the terminal, then cleared its line.
    drawn = terminal.getvalue()
    assert "generation:" in drawn and "/125 [" in drawn and "step/s" in drawn


@pytest.mark.parametrize("options, message", [
    (["--key-shift", "13"], "key_shift must be between -12 and 12 semitones, got 13"),
    (["--target-bpm", "300"], "target_bpm must be between 40 and 240 beats per minute, got 300"),
])
def test_cli_rejects_bad_tempo_and_key_before_loading_models(weights, tmp_path, capsys, options, message):
    root, _ = weights
    code = main([str(tmp_path / "missing.wav"), "--prompt", "x", "-o", str(tmp_path / "a.wav"),
                 "--weights-dir", str(root), "--offline", *options])
    assert code == 2 and capsys.readouterr().err.strip() == f"error: {message}"


def test_cli_tempo_and_key_need_a_song(weights, tmp_path, capsys):
    root, _ = weights
    code = main(["--prompt", "x", "--target-bpm", "90", "--key-shift", "1", "-o", str(tmp_path / "a.wav"),
                 "--weights-dir", str(root), "--offline"])
    assert code == 2 and "--target-bpm, --key-shift apply only to a remix" in capsys.readouterr().err
@pytest.fixture
def no_models(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("models were loaded before the inputs were checked")
    monkeypatch.setattr(pipeline.Models, "load", refuse)


def test_cli_refuses_a_too_long_song_before_loading_any_model(tmp_path, no_models, capsys):
    song = tmp_path / "too_long.ogg"
    sf.write(song, np.full((30 * 8000, 1), 0.1, dtype=np.float32), 8000)
    start = time.perf_counter()
    code = main([str(song), "--prompt", "x", "-o", str(tmp_path / "a.wav"), "--max-duration", "20", "--offline"])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and "too_long.ogg: audio is 30.0 s long" in err, err
    assert elapsed < 5.0  # the models take ~15 s; no_models is the real check


@pytest.mark.parametrize("option", [["--bpm", "100"], ["--duration", "20"], ["--time-sig", "3/4"],
                                    ["--audio-start", "1"]])
def test_cli_generation_options_are_refused_with_a_song(tmp_path, no_models, capsys, option):
    song = tmp_path / "song.wav"
    sf.write(song, np.full((2 * 8000, 1), 0.1, dtype=np.float32), 8000)
    code = main([str(song), "--prompt", "x", "-o", str(tmp_path / "a.wav"), "--offline", *option])
    assert code == 2 and f"{option[0]} apply only to generation without a song" in capsys.readouterr().err


# --- a new user's first hour: tempo, weights, the smoke switch, threads, --help --------------------


def test_song_bpm_gives_a_half_tempo_read_song_its_tempo_in_the_description(weights, tmp_path, monkeypatch,
                                                                           caplog):
    root, manifest = weights
    monkeypatch.setenv("REMIXER_WEIGHTS_MANIFEST", str(manifest))
    song = demo_song(6.0, 190, 4, sample_rate=32_000, channels=1, seed=0)
    sf.write(tmp_path / "fast.wav", song.audio.T, song.sample_rate)
    common = [str(tmp_path / "fast.wav"), "--prompt", "punk", "--weights-dir", str(root), "--offline",
              "--model-version", "chord", "--seed", "3", "--analysis-backend", "madmom", "--return-analysis", "-q"]

    assert main([*common, "-o", str(tmp_path / "read.wav")]) == 0
    read = json.loads((tmp_path / "read.analysis.json").read_text())
    # madmom hears every other beat: prompted at half tempo, but told which input fixes it.
    assert re.fullmatch(r"punk, bpm : 9[45]", read["description"])
    alternative = read["tempo"]["alternative"]
    assert alternative["factor"] == 2.0 and abs(alternative["bpm"] - 190) < 1.5
    assert "song_bpm=190" in alternative["message"] and "--song-bpm 190" in alternative["message"]
    assert alternative["message"] in caplog.text

    assert main([*common, "-o", str(tmp_path / "told.wav"), "--song-bpm", "190"]) == 0
    told = json.loads((tmp_path / "told.analysis.json").read_text())
    assert told["description"] == "punk, bpm : 190"
    assert told["tempo"]["source"] == "song_bpm" and told["tempo"]["alternative"] is None
    # Read at 194: the most common beat interval in whole 10 ms frames (All-In-One's rule).
    assert told["song"]["bpm"] == 190 and told["tempo"]["read_bpm"] in (188, 194)
    # The beats were decoded at the stated tempo: one every 60/190 s, not every other one.
    assert abs(float(np.median(np.diff(told["song"]["beats"]))) - 60 / 190) < 0.011


def test_a_remix_without_weights_fails_in_seconds_listing_every_file_and_the_command(tmp_path, capsys):
    song = synth_song(120, duration=2.5, sample_rate=16_000, channels=1)
    sf.write(tmp_path / "song.wav", song.audio.T, song.sample_rate)
    empty = tmp_path / "no-weights"
    start = time.perf_counter()
    code = main([str(tmp_path / "song.wav"), "--prompt", "x", "-o", str(tmp_path / "a.wav"),
                 "--weights-dir", str(empty), "--offline"])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 10, (elapsed, err)
    assert "Traceback" not in err and err.startswith("error: 10 weight file(s) needed here are missing")
    listed = {line.split()[0] for line in err.splitlines() if line.startswith("  ") and "http" in line}
    assert listed == set(Manifest.load().groups["remix-default"])  # 10 needed + All-In-One's 8, optional
    assert "htdemucs" in err and "84.1 MB" in err and "891.6 MB" in err and "unknown" in err
    assert f"  python -m remixer.weights fetch remix-default --dir {empty}\n" in err


def test_a_remix_without_weights_fails_before_the_model_code_loads(tmp_path):
    """torch and audiocraft take seconds to import (tens on a busy machine): the files are looked
    at first, so the message comes at once (run fresh: this test process has them loaded)."""
    song = synth_song(120, duration=2.5, sample_rate=16_000, channels=1)
    sf.write(tmp_path / "song.wav", song.audio.T, song.sample_rate)
    done = _fresh_cli([str(tmp_path / "song.wav"), "--prompt", "x", "-o", str(tmp_path / "a.wav"),
                       "--weights-dir", str(tmp_path / "no-weights"), "--offline"],
                      ("torch", "audiocraft", "demucs", "madmom"), without="REMIXER_WEIGHTS_MANIFEST")
    assert "error: 10 weight file(s) needed here are missing" in done.stderr, done.stderr
    assert done.stderr.endswith("exit 2\n[]\n")  # failed, and no model library was imported


def _fresh_cli(argv: list[str], libraries: tuple[str, ...], *, without: str) -> subprocess.CompletedProcess:
    """``python -m remixer ARGV`` in a fresh process (environment ``without`` one variable); its
    stderr ends with the exit status and which of ``libraries`` it imported."""
    code = (f"import runpy, sys; sys.argv = ['remixer', *{argv!r}]\n"
            "try: runpy.run_module('remixer', run_name='__main__')\n"
            "except SystemExit as exit: print('exit', exit.code, file=sys.stderr)\n"
            f"print(sorted(m for m in {libraries!r} if m in sys.modules), file=sys.stderr)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if k != without})


def test_an_unreachable_host_fails_in_seconds_without_retries(tmp_path, capsys, monkeypatch):
    manifest = json.loads(DEFAULT_MANIFEST.read_text())
    for entry in manifest["files"]:  # RFC 6761: .invalid never resolves
        entry["urls"] = [f"https://weights.invalid/{entry['path']}"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("REMIXER_WEIGHTS_MANIFEST", str(tmp_path / "manifest.json"))
    monkeypatch.setenv("REMIXER_OFFLINE", "0")
    song = synth_song(120, duration=2.5, sample_rate=16_000, channels=1)
    sf.write(tmp_path / "song.wav", song.audio.T, song.sample_rate)
    start = time.perf_counter()
    code = main([str(tmp_path / "song.wav"), "--prompt", "x", "-o", str(tmp_path / "a.wav"),
                 "--weights-dir", str(tmp_path / "cache")])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 10, (elapsed, err)
    assert "could not be downloaded (weights.invalid: cannot resolve the host name" in err
    assert "retrying" not in err and "fetch remix-default" in err


def test_smoke_switch_remixes_a_song_end_to_end_labelled_as_noise(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("REMIXER_WEIGHTS_MANIFEST", raising=False)
    song = synth_song(120, duration=3.0, sample_rate=44_100, channels=2)
    sf.write(tmp_path / "song.wav", song.audio.T, song.sample_rate)
    out = tmp_path / "smoke.mp3"
    code = main([str(tmp_path / "song.wav"), "--prompt", "bossa nova", "-o", str(out), "--smoke",
                 "--weights-dir", str(tmp_path / "not-used"), "--return-analysis", "-q"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.split() == [str(out), str(out.with_name("smoke.analysis.json")),
                                    str(out.with_name("smoke.analysis.png")), str(out.with_name("smoke.analysis.html"))]
    info = sf.info(out)
    assert info.channels == 2 and abs(info.duration - 3.0) < 0.05  # the default stereo model, tiny
    analysis = json.loads(out.with_name("smoke.analysis.json").read_text())
    assert list(analysis)[0] == "smoke" and "NOISE" in analysis["smoke"]
    assert analysis["song"]["backend"] == "madmom"  # the real pretrained beat model, not random folds
    assert "SMOKE RUN" in captured.err and "NOISE" in captured.err
    # The picture and the page say it too (their title, from the same record).
    assert "SMOKE RUN (noise from tiny random models): bossa nova" in out.with_name("smoke.analysis.html").read_text()
    assert not (tmp_path / "not-used").exists()


def test_the_cli_sets_the_threads_from_the_cores_and_runs_no_slower_than_one(weights, tmp_path, monkeypatch,
                                                                             caplog):
    """The thread settings as the libraries report them after each run, and the runs' times: the
    default (every core the process may use, waiting passively) is not slower than one thread.
    Spinning threads made it 7x slower on a busy machine (bench/threads.py measures that)."""
    root, manifest = weights
    monkeypatch.setenv("REMIXER_WEIGHTS_MANIFEST", str(manifest))
    monkeypatch.delenv("REMIXER_THREADS")
    song = synth_song(120, duration=3.0, sample_rate=32_000, channels=1)
    sf.write(tmp_path / "song.wav", song.audio.T, song.sample_rate)
    previous = torch.get_num_threads()
    cores = available_cores()

    def run(*options: str) -> float:
        start = time.perf_counter()
        assert main([str(tmp_path / "song.wav"), "--prompt", "x", "-o", str(tmp_path / "a.wav"),
                     "--weights-dir", str(root), "--offline", "--model-version", "chord", "--seed", "1",
                     "--analysis-backend", "madmom", "-q", *options]) == 0
        return time.perf_counter() - start

    try:
        with caplog.at_level(logging.INFO, logger="remixer.threads"):
            one = run("--threads", "1")
            assert torch.get_num_threads() == 1 and _blas_threads() == {1}
            default = run()
            assert torch.get_num_threads() == cores and _blas_threads() == {cores}
    finally:
        torch.set_num_threads(previous)
    assert f"{cores} CPU thread(s) (cores available; {cores} core(s) available): torch intra-op {cores}, " \
           f"inter-op 1, BLAS {cores}, OMP_WAIT_POLICY PASSIVE" in caplog.text
    # Generous, so that a busy machine cannot fail it; the spinning default was 7x.
    assert default <= 2 * one + 5, (default, one)


def test_a_fresh_cli_process_runs_openmp_with_the_threads_and_the_passive_wait(weights, tmp_path):
    """As OpenMP itself reports its settings when torch loads it (OMP_DISPLAY_ENV)."""
    root, manifest = weights
    song = synth_song(120, duration=2.5, sample_rate=16_000, channels=1)
    sf.write(tmp_path / "song.wav", song.audio.T, song.sample_rate)
    env = {key: value for key, value in os.environ.items()
           if key not in ("REMIXER_THREADS", "OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-m", "remixer", str(tmp_path / "song.wav"), "--prompt", "x",
                           "-o", str(tmp_path / "a.wav"), "--weights-dir", str(root), "--offline",
                           "--model-version", "chord", "--analysis-backend", "madmom", "--threads", "1", "-q"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**env, "OMP_DISPLAY_ENV": "TRUE", "REMIXER_WEIGHTS_MANIFEST": str(manifest)})
    assert done.returncode == 0 and sf.info(tmp_path / "a.wav").duration == pytest.approx(2.5, abs=0.05)
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in done.stderr and "OMP_NUM_THREADS = '1'" in done.stderr


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_help_answers_without_loading_a_model_library_and_without_warnings():
    done = _fresh_cli(["--help"], ("numpy", "torch", "audiocraft", "xformers", "librosa", "madmom"),
                      without="PYTHONWARNINGS")
    assert done.returncode == 0 and "usage: python -m remixer" in done.stdout
    assert done.stderr == "exit 0\n[]\n"  # nothing heavy imported, no warning printed


def test_every_option_has_help_and_states_its_default_once():
    for action in _parser()._actions:
        if action.dest == "help":
            continue
        assert action.help, action.option_strings
        text = action.help % {"default": action.default}
        assert text.count("default") <= 1, action.option_strings
        if action.default not in (None, False) and action.option_strings:
            assert "(default: " in text and str(action.default) in text, action.option_strings
