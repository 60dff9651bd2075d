"""The acceptance run refuses, in one line and with status 1, when the real weights are absent."""
from __future__ import annotations

from devtools.accept import EXPECTED_KEYS, main


def test_missing_weights_are_one_clear_line_and_a_failure(tmp_path, capsys):
    assert main(["--weights-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith(f"accept: real weights missing in {tmp_path}: 18 of 18 files "
                          f"(musicgen-stereo-chord, encodec-32khz-config, encodec-32khz-model, ...)")
    assert out.rstrip().endswith("run `python -m remixer.weights fetch remix-default` first")
    assert not any(tmp_path.iterdir())  # nothing written, nothing downloaded


def test_published_key_counts():
    assert EXPECTED_KEYS == {"chord": 619, "chord-large": 619, "stereo-chord": 627, "stereo-chord-large": 627}
