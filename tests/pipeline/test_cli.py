"""`python -m remixer`: the same remix as the predictor, written where the user asks."""
from __future__ import annotations

import io
import json
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from devtools.tiny.cache import build_tiny_weights
from fixtures.music import synth_song
from remixer import __main__ as cli
from remixer.__main__ import main


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
    monkeypatch.setattr(cli.Models, "load", refuse)


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
