"""python -m remixer.read_chords: outputs, vocabulary check, missing weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from devtools.tiny.btc import published_state_dict, synth_progression, write_checkpoint
from remixer.read_chords import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("read_chords")
    wav, _ = synth_progression(["C", "G", "A:min"], [1.0, 1.0, 1.5], 44100, seed=0)
    sf.write(folder / "song.wav", np.stack([wav, wav]).T, 44100)
    sf.write(folder / "silent.flac", np.zeros(44100 * 2, np.float32), 44100)
    write_checkpoint(folder / "small.pt", published_state_dict(25, seed=1))
    return folder


def test_json_lab_and_stdout_outputs(files, capsys):
    assert main([str(files / "song.wav"), "--vocab", "small", "--weights", str(files / "small.pt"),
                 "--json", str(files / "out.json")]) == 0
    segments = json.loads((files / "out.json").read_text())
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(3.5)
    assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:]))
    assert main([str(files / "song.wav"), "--vocab", "small", "--weights", str(files / "small.pt"),
                 "--lab", str(files / "out.lab")]) == 0
    lab = (files / "out.lab").read_text()
    assert lab == "".join(f"{s['start']:.3f} {s['end']:.3f} {s['label']}\n" for s in segments)
    assert main([str(files / "silent.flac"), "--vocab", "small", "--weights", str(files / "small.pt")]) == 0
    assert capsys.readouterr().out == "0.000 2.000 N\n"


def test_vocab_mismatch_missing_song_and_missing_weights(files, capsys, monkeypatch, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main([str(files / "song.wav"), "--vocab", "large", "--weights", str(files / "small.pt")])
    assert exit_.value.code == 2
    assert "small.pt has 25 chord classes but --vocab large expects 170" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(files / "nosong.wav"), "--vocab", "small", "--weights", str(files / "small.pt")])
    assert "nosong.wav" in capsys.readouterr().err
    monkeypatch.setenv("REMIXER_OFFLINE", "1")
    monkeypatch.setenv("REMIXER_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        main([str(files / "song.wav"), "--vocab", "small"])
    assert exit_.value.code == 2
    assert "btc-model" in capsys.readouterr().err
