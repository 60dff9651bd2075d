"""Section prompts end to end with tiny weights, through the Pipeline and the CLI: the text condition
the LM receives changes exactly at the planned windows, and the output keeps the song's length.

The tiny MusicGen has a 2 s window and a 1.2 s stride (50 frames a second), so a 6 s song
already needs several windows per section.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from audiocraft.models.lm import LMModel

from devtools.tiny.cache import build_tiny_weights
from fixtures.music import synth_song
from remixer.__main__ import main
from remixer.beats import Beats, Section
from remixer.pipeline import Models, Pipeline
from remixer.requests import RemixRequest, Sampling
from remixer.weights import Manifest, WeightsStore

FRAME_RATE = 50
SECONDS = 6.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    return root, build_tiny_weights(root)


@pytest.fixture(scope="module")
def models(weights) -> Models:
    root, manifest = weights
    store = WeightsStore(root, offline=True, manifest=Manifest.load(manifest))
    return Models.load(store, analysis_backend="madmom", preload=("chord",))


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    # 120 BPM in 4/4 with the first downbeat at 0.25 s: bars start at 0.25, 2.25 and 4.25 s.
    synth = synth_song(120, duration=SECONDS, sample_rate=32_000, channels=1)
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(path, synth.audio.T, synth.sample_rate, subtype="FLOAT")
    return path


@pytest.fixture
def lm_calls(monkeypatch) -> list[tuple[int, int, str]]:
    """(prompt frames, frames up to the window's end, description) of every LM window."""
    calls: list[tuple[int, int, str]] = []
    generate = LMModel.generate

    def spy(self, prompt, conditions, max_gen_len, **kwargs):
        calls.append((0 if prompt is None else prompt.shape[-1], max_gen_len,
                      conditions[0].text["description"]))
        return generate(self, prompt, conditions, max_gen_len=max_gen_len, **kwargs)
    monkeypatch.setattr(LMModel, "generate", spy)
    return calls


class FormAnalyzer:
    """All-In-One's record with known sections and bars (what its real weights would report)."""

    name = "allinone"
    needs_stems = True

    def analyze(self, wav: np.ndarray, sample_rate: int, stems=None, prior=None) -> Beats:
        beats = np.arange(0.0, wav.shape[-1] / sample_rate, 0.5)
        return Beats(bpm=120.0, beats=beats, downbeats=beats[::4].copy(),
                     beat_positions=np.arange(beats.size) % 4 + 1, backend=self.name,
                     sections=(Section(0.0, 1.9, "intro"), Section(1.9, 4.1, "verse"),
                               Section(4.1, SECONDS, "chorus")))


def _calls_of(windows: list[dict]) -> list[tuple[int, int, str]]:
    """What the LM must receive for the windows listed in analysis.json."""
    return [(round((w["new_start"] - w["start"]) * FRAME_RATE), round((w["new_end"] - w["start"]) * FRAME_RATE),
             w["description"]) for w in windows]


def test_pipeline_generates_each_section_with_its_prompt_from_its_first_bar(models, song, tmp_path,
                                                                            monkeypatch, lm_calls):
    monkeypatch.setattr(models, "analyzer", FormAnalyzer())
    request = RemixRequest(song=song, prompt="bossa nova", model_version="chord", sampling=Sampling(seed=1),
                           section_prompts="verse: nylon guitar; chorus: full band", return_analysis=True)
    result = Pipeline(models).remix(request, tmp_path)
    bossa, nylon, band = (f"{text}{result.analysis['description'].removeprefix('bossa nova')}"
                          for text in ("bossa nova", "nylon guitar", "full band"))
    assert bossa == result.analysis["description"] and bossa != "bossa nova"  # the bpm suffix
    # Sections start on their bars (2 and 4 s); the intro fits one window, the verse and chorus
    # take two each, every later window re-reading 1 s (its 2 s window less 1 s of new content).
    assert [(w["start"], w["new_start"], w["new_end"], w["section"]) for w in result.analysis["windows"]] == [
        (0.0, 0.0, 2.0, "intro"), (1.0, 2.0, 3.0, "verse"), (2.0, 3.0, 4.0, "verse"),
        (3.0, 4.0, 5.0, "chorus"), (4.0, 5.0, 6.0, "chorus")]
    assert lm_calls == [(0, 100, bossa), (50, 100, nylon), (50, 100, nylon), (50, 100, band), (50, 100, band)]
    assert lm_calls == _calls_of(result.analysis["windows"])
    assert json.loads(next(p for p in result.outputs if p.suffix == ".json").read_text())["windows"] == result.analysis["windows"]
    assert sf.info(result.outputs[0]).frames == SECONDS * 32_000


def test_pipeline_refuses_labels_without_sections_before_any_model_runs(models, song, tmp_path,
                                                                       monkeypatch, lm_calls):
    def never(*args, **kwargs):
        raise AssertionError("separation ran")
    monkeypatch.setattr(models.separator, "separate", never)
    request = RemixRequest(song=song, prompt="rock", section_prompts="chorus: horns")
    with pytest.raises(ValueError, match="names sections \\(chorus\\), but the madmom analysis finds no "
                                         "sections: give time ranges instead"):
        Pipeline(models).remix(request, tmp_path)
    late = RemixRequest(song=song, prompt="rock", section_prompts="0:00-0:07: a; 0:07-: b")
    with pytest.raises(ValueError, match="range '0:07-' starts at 7 s, after the song's end \\(6.00 s\\)"):
        Pipeline(models).remix(late, tmp_path)
    assert lm_calls == []


def test_cli_time_ranges_switch_the_prompt_at_the_bar(weights, song, tmp_path, monkeypatch, capsys, lm_calls):
    root, manifest = weights
    monkeypatch.setenv("REMIXER_WEIGHTS_MANIFEST", str(manifest))
    out = tmp_path / "remix.wav"
    code = main([str(song), "--prompt", "bossa nova", "-o", str(out), "--weights-dir", str(root),
                 "--offline", "--model-version", "chord", "--seed", "5", "--analysis-backend", "madmom",
                 "--section-prompts", "0:00-0:02: soft pads; 0:02-: full band", "--return-analysis", "-q"])
    assert code == 0, capsys.readouterr().err
    analysis = json.loads(out.with_name("remix.analysis.json").read_text())
    windows = analysis["windows"]
    suffix = analysis["description"].removeprefix("bossa nova")
    # The cut at 2 s moves to the song's bar line (madmom's downbeat near 2.25 s), to the frame.
    bar = min(analysis["song"]["downbeats"], key=lambda t: abs(t - 2.0))
    assert abs(bar - 2.25) < 0.05
    cut = round(bar * FRAME_RATE) / FRAME_RATE
    assert [w["description"] for w in windows] == [
        f"soft pads{suffix}" if w["new_start"] < cut else f"full band{suffix}" for w in windows]
    assert cut in [w["new_start"] for w in windows]
    assert {w["section"] for w in windows} == {"0:00-0:02", "0:02-"}
    assert lm_calls == _calls_of(windows)
    assert windows[0]["new_start"] == 0 and windows[-1]["new_end"] == SECONDS
    assert all(a["new_end"] == b["new_start"] for a, b in zip(windows, windows[1:]))
    assert sf.info(out).frames == SECONDS * 32_000


def test_cli_section_prompts_need_a_song(weights, tmp_path, capsys):
    root, _ = weights
    code = main(["--prompt", "x", "--section-prompts", "verse: a", "-o", str(tmp_path / "a.wav"),
                 "--weights-dir", str(root), "--offline"])
    assert code == 2 and "--section-prompts apply only to a remix" in capsys.readouterr().err
