"""`python -m remixer`: the same remix as the predictor, written where the user asks."""
from __future__ import annotations

import json

import pytest
import soundfile as sf

from fixtures.music import synth_song
from fixtures.weights_dir import build_tiny_weights
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
                       str(out.with_name("remix.analysis.json"))]
    info = sf.info(out)
    # Output rate: max(song rate, model rate 32 kHz); mp3 decodes within 50 ms of the song's length.
    assert info.samplerate == 32_000 and info.channels == 1
    assert abs(info.duration - 2.5) < 0.05
    analysis = json.loads(out.with_name("remix.analysis.json").read_text())
    assert analysis["seed"] == 5 and analysis["prompt"].startswith("bossa nova")
    assert analysis["song"]["backend"] == "madmom"
    # Without section prompts the windows are audiocraft's: the tiny model's 2 s window every 1.2 s.
    assert [(w["start"], w["new_start"], w["new_end"], w["section"], w["description"]) for w in analysis["windows"]] \
        == [(0.0, 0.0, 2.0, None, analysis["prompt"]), (1.2, 2.0, 2.5, None, analysis["prompt"])]


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
