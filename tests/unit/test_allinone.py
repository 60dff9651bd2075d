import math
import shutil

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from devtools.tiny.allinone import (NUM_KEYS, NUM_PARAMS, save_random_fold, save_random_folds,
                               structured_logits)
from remixer.analysis.allinone import (HARMONIX_LABELS, INPUT_STEMS, AllInOneAnalyzer, beat_activations,
                              load_fold, sections_from_logits, weight_name)
from remixer.beats import Beats, TempoPrior, beats_from_activations
from remixer.separation import Stems
from remixer.weights import MissingWeightsError, WeightsStore


@pytest.fixture(scope="module")
def fold_paths(tmp_path_factory):
    return save_random_folds(tmp_path_factory.mktemp("allinone"))


@pytest.fixture(scope="module")
def pair(fold_paths):
    """Two folds: every code path of the 8-fold ensemble at a quarter of its CPU cost."""
    return AllInOneAnalyzer.from_checkpoints(fold_paths[:2])


def _stems(seconds: float, rate: int, loud: str | None = None) -> Stems:
    """Noise stems; with `loud`, only that stem is non-silent."""
    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    parts = {name: (0.1 * rng.standard_normal((2, n))).astype(np.float32)
             if loud in (None, name) else np.zeros((2, n), np.float32)
             for name in ("drums", "bass", "other", "vocals")}
    return Stems(sample_rate=rate, **parts)


def test_all_eight_folds_load_strictly_with_the_published_layout(fold_paths):
    checkpoint = torch.load(fold_paths[3], weights_only=True)
    assert set(checkpoint) == {"config", "state_dict"}
    assert len(checkpoint["state_dict"]) == NUM_KEYS
    assert sum(v.numel() for v in checkpoint["state_dict"].values()) == NUM_PARAMS
    analyzer = AllInOneAnalyzer.from_checkpoints(fold_paths)
    assert len(analyzer.models) == 8
    for path, model in zip(fold_paths, analyzer.models):
        saved = torch.load(path, weights_only=True)["state_dict"]
        for key, value in model.state_dict().items():
            assert torch.equal(value, saved[key]), (path.name, key)
        assert not model.training
    assert analyzer.threshold_downbeat == pytest.approx(np.mean([0.05 + 0.01 * k for k in range(8)]))


def test_logits_are_fold_averages(fold_paths, pair):
    features = np.random.default_rng(1).random((4, 150, 81)).astype(np.float32)
    single = [AllInOneAnalyzer.from_checkpoints([p]).predict(features) for p in fold_paths[:2]]
    mean = pair.predict(features)
    assert mean.beat.shape == (150,) and mean.function.shape == (10, 150)
    for field in ("beat", "downbeat", "section", "function"):
        expected = (getattr(single[0], field) + getattr(single[1], field)) / 2
        np.testing.assert_allclose(getattr(mean, field), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(single[0].beat, single[1].beat)  # the folds really differ


def test_strict_load_names_the_mismatch(tmp_path):
    path = save_random_fold(tmp_path / "fold.pth", 0)
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["state_dict"]["norm.weight"]
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"(?s)fold.pth: state_dict does not fit.*norm.weight"):
        load_fold(path)
    torch.save({"state_dict": {}}, tmp_path / "nocfg.pth")
    with pytest.raises(ValueError, match="nocfg.pth: expected an All-In-One checkpoint"):
        load_fold(tmp_path / "nocfg.pth")
    checkpoint["config"]["best_threshold_downbeat"] = None
    torch.save(checkpoint, tmp_path / "nothr.pth")
    with pytest.raises(ValueError, match="best_threshold_downbeat must be a number"):
        load_fold(tmp_path / "nothr.pth")
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        load_fold(tmp_path / "absent.pth")


def test_the_real_demucs_package_survives_allin1_infer():
    import demucs.apply
    import demucs.states

    assert sys.modules["demucs"] is demucs and "demucs_infer" not in demucs.__name__
    assert Path(demucs.__file__).parent.name == "demucs"
    assert hasattr(demucs.states, "serialize_model")  # demucs_infer's copy has none
    assert demucs.apply.HTDemucs.__module__ == "demucs.htdemucs"


def test_from_weights_reads_the_manifest_folds_from_the_store(fold_paths, tmp_path):
    store = WeightsStore(tmp_path / "cache", offline=True)
    for fold in (2, 5):
        target = store.target(weight_name(fold))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fold_paths[fold], target)
    analyzer = AllInOneAnalyzer.from_weights(store, folds=[2, 5])
    assert len(analyzer.models) == 2
    assert analyzer.threshold_downbeat == pytest.approx((0.07 + 0.10) / 2)
    with pytest.raises(MissingWeightsError, match="allinone-harmonix-fold0"):
        AllInOneAnalyzer.from_weights(store)
    with pytest.raises(ValueError, match="subset of 0..7"):
        AllInOneAnalyzer.from_weights(store, folds=[8])


def test_features_match_allin1_and_keep_stem_order(pair):
    stems = _stems(1.5, 44100, loud="drums")
    features = pair.features(stems.vocals, 44100, stems)
    frames = math.ceil(stems.num_samples / 441)
    assert features.shape == (4, frames, 81) and features.dtype == np.float32
    assert list(INPUT_STEMS) == ["bass", "drums", "other", "vocals"]
    assert np.abs(features[1]).max() > 0.1
    np.testing.assert_array_equal(features[[0, 2, 3]], 0.0)
    # Bit-identical to allin1_infer's own in-memory chain fed with the same stems.
    from allin1_infer.spectrogram import compute_spectrogram_from_stem_arrays
    from allin1_infer.stems import quantize_stem_to_madmom_mono_int16

    arrays = {name: quantize_stem_to_madmom_mono_int16(torch.from_numpy(stem))
              for name, stem in stems.as_dict().items()}
    np.testing.assert_array_equal(features, compute_spectrogram_from_stem_arrays(arrays, 44100))


def test_features_of_other_rates_and_of_audio_without_stems(pair):
    stems = _stems(1.0, 22050)
    features = pair.features(stems.other, 22050, stems)
    assert features.shape == (4, math.ceil(44100 / 441), 81)
    mix = _stems(1.2, 44100).other
    alone = pair.features(mix, 44100)
    assert alone.shape == (4, math.ceil(mix.shape[1] / 441), 81)
    np.testing.assert_array_equal(alone[0], alone[1])
    np.testing.assert_array_equal(alone[2], alone[1])
    np.testing.assert_array_equal(alone[3], 0.0)  # an instrumental has silent vocals
    assert np.abs(alone[0]).max() > 0.1


def test_analyze_returns_consistent_beats_with_and_without_stems(tmp_path):
    confident = AllInOneAnalyzer.from_checkpoints(
        [save_random_fold(tmp_path / "fold.pth", 0, head_biases=(3.0, -1.0))])
    stems = _stems(3.0, 44100)
    mix = stems.accompaniment + stems.vocals
    logits = confident.predict(confident.features(mix, 44100, stems))
    activations = beat_activations(logits)
    assert activations.shape == (math.ceil(stems.num_samples / 441), 2)
    assert np.all((activations >= 0) & (activations <= 1))
    assert np.all(activations[:, 0] >= activations[:, 1])
    expected = beats_from_activations(activations, 100.0, beats_per_bar=(3, 4),
                                      threshold=confident.threshold_downbeat, backend="allinone")
    result = confident.analyze(mix, 44100, stems)
    assert isinstance(result, Beats) and result.backend == "allinone"
    assert result.beats.size >= 5 and result.bpm is not None
    np.testing.assert_array_equal(result.beats, expected.beats)
    np.testing.assert_array_equal(result.beat_positions, expected.beat_positions)
    assert result.sections == sections_from_logits(logits, 100.0)
    for beats in (result, confident.analyze(mix, 44100)):
        assert beats.beats.size >= 5
        assert np.all(np.diff(beats.beats) > 0) and 0 <= beats.beats[0] and beats.beats[-1] <= 3.0
        np.testing.assert_array_equal(beats.downbeats, beats.beats[beats.beat_positions == 1])
        assert set(beats.beat_positions.tolist()) <= {1, 2, 3, 4}
        spans = [(s.start, s.end) for s in beats.sections]
        assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(activations.shape[0] / 100)
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(spans, spans[1:]))
        assert {s.label for s in beats.sections} <= set(HARMONIX_LABELS)


def test_analyze_decodes_within_the_prior(pair, monkeypatch):
    logits = structured_logits([], [0], frames=2000)  # 120 BPM, 4/4
    monkeypatch.setattr(pair, "predict", lambda features: logits)
    wav = np.zeros((2, 44_100), np.float32)
    assert pair.analyze(wav, 44_100).bpm == pytest.approx(120.0, rel=0.01)
    half = pair.analyze(wav, 44_100, prior=TempoPrior(60.0, 4))
    assert half.bpm == pytest.approx(60.0, rel=0.01)
    np.testing.assert_allclose(np.diff(half.beats), 1.0, atol=0.011)


def test_bad_inputs_are_rejected(pair):
    stems = _stems(1.0, 44100)
    with pytest.raises(ValueError, match="stems .* are not those of this audio"):
        pair.analyze(stems.vocals[:, :-1], 44100, stems)
    with pytest.raises(ValueError, match="stems .* are not those of this audio"):
        pair.analyze(stems.vocals, 48000, stems)
    with pytest.raises(ValueError, match="NaN"):
        pair.analyze(np.full((2, 100), np.nan, np.float32), 44100)
    with pytest.raises(ValueError, match=r"got \(3, 100\)"):
        pair.analyze(np.zeros((3, 100), np.float32), 44100)
    with pytest.raises(ValueError, match="sample_rate"):
        pair.analyze(np.zeros((2, 100), np.float32), 0)
    with pytest.raises(ValueError, match="features must be shaped"):
        pair.predict(np.zeros((2, 10, 81), np.float32))


def test_beat_activations_follow_the_allinone_normalisation():
    logits = structured_logits([], [0], frames=2)
    logits.beat[:] = [0.0, 2.0]
    logits.downbeat[:] = [0.0, -1.0]
    p_b, p_d = 1 / (1 + np.exp([-0.0, -2.0])), 1 / (1 + np.exp([-0.0, 1.0]))
    xbeat = np.maximum(1e-8, p_b - p_d)
    total = xbeat + p_d + (2 - p_b - p_d) / 2
    np.testing.assert_allclose(beat_activations(logits),
                               np.stack([(xbeat + p_d) / total, p_d / total], axis=1))


def test_ideal_logits_decode_to_the_planted_bars_and_sections():
    logits = structured_logits([1000, 2200, 3400], [8, 9, 5, 3], frames=4400)
    beats = beats_from_activations(beat_activations(logits), 100.0, beats_per_bar=(3, 4),
                                   threshold=0.1, backend="allinone")
    np.testing.assert_allclose(beats.downbeats, np.arange(0, 44, 2.0), atol=0.011)
    assert beats.bpm == pytest.approx(120.0, rel=0.01)
    assert set(beats.beat_positions.tolist()) == {1, 2, 3, 4}
    sections = sections_from_logits(logits, 100.0)
    assert [(s.start, s.end, s.label) for s in sections] == [
        (0.0, 10.0, "verse"), (10.0, 22.0, "chorus"), (22.0, 34.0, "bridge"), (34.0, 44.0, "outro")]
