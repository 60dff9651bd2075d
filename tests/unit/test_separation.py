import numpy as np
import pytest
import torch
from demucs.apply import BagOfModels
from demucs.htdemucs import HTDemucs

from devtools.tiny.demucs import ScaledSources, save_hf_bag, save_legacy, tiny_htdemucs
from remixer.separation import STEM_NAMES, Separator, Stems


def _sine(seconds: float, rate: int, freq: float = 441.0, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([wav * (1 + 0.1 * c) for c in range(channels)]).astype(np.float32)


def test_stems_mix_properties():
    parts = {name: np.full((2, 5), i + 1, np.float32) for i, name in enumerate(STEM_NAMES)}
    stems = Stems(sample_rate=44100, **parts)
    assert list(stems.as_dict()) == ["drums", "bass", "other", "vocals"]
    assert stems.num_samples == 5
    np.testing.assert_array_equal(stems.accompaniment, np.full((2, 5), 1 + 2 + 3))
    np.testing.assert_array_equal(stems.chord_source, np.full((2, 5), 2 + 3 + 4))  # no drums


@pytest.mark.parametrize("bad, match", [
    ({"vocals": np.zeros((2, 4), np.float32)}, "vocals has shape"),
    ({"bass": np.zeros((1, 5), np.float32)}, r"bass must be a \(2, samples\)"),
    ({"other": np.zeros((2, 5), np.float64)}, "other must be float32"),
])
def test_stems_reject_inconsistent_arrays(bad, match):
    parts = {name: np.zeros((2, 5), np.float32) for name in STEM_NAMES} | bad
    with pytest.raises(ValueError, match=match):
        Stems(sample_rate=44100, **parts)


def test_stems_are_looked_up_by_source_name_and_chunked():
    order = ["vocals", "other", "drums", "bass"]
    model = ScaledSources(order, gains=[4.0, 3.0, 1.0, 2.0], segment=1.0)
    separator = Separator(model)
    wav = _sine(3.5, 44100)
    stems = separator.separate(wav, 44100)
    assert separator.calls == 1
    assert stems.sample_rate == 44100 and stems.num_samples == wav.shape[1]
    for name, gain in [("vocals", 4.0), ("other", 3.0), ("drums", 1.0), ("bass", 2.0)]:
        np.testing.assert_allclose(getattr(stems, name), gain * wav, atol=1e-4, err_msg=name)
    # A 3.5 s song never reaches the model in one piece: segments of 1 s at 44.1 kHz.
    assert model.longest_chunk == 44100


def test_stems_come_back_at_the_input_rate_and_length():
    separator = Separator(ScaledSources(STEM_NAMES, gains=[1.0, 0.0, 0.0, 2.0]))
    wav = _sine(2.0, 22050, channels=1)[:, :44099]  # odd length on purpose
    stems = separator.separate(wav, 22050)
    assert stems.sample_rate == 22050
    assert stems.vocals.shape == (2, 44099) and stems.vocals.dtype == np.float32
    inner = slice(200, -200)  # resampling filters lean on replicated edges
    np.testing.assert_allclose(stems.vocals[0, inner], 2 * wav[0, inner], atol=2e-3)
    np.testing.assert_array_equal(stems.vocals[0], stems.vocals[1])  # mono became stereo
    np.testing.assert_allclose(stems.bass, 0.0, atol=1e-6)


@pytest.mark.parametrize("length, rate", [(1, 44100), (1, 22050), (7, 48000)])
def test_very_short_audio_separates(length, rate):
    separator = Separator(ScaledSources(STEM_NAMES, gains=[1.0, 1.0, 1.0, 3.0]))
    stems = separator.separate(np.full((1, length), 0.5, np.float32), rate)
    assert stems.vocals.shape == (2, length)
    np.testing.assert_allclose(stems.vocals, 1.5, rtol=1e-4)


def test_legacy_checkpoint_loads_and_separates(tmp_path):
    model = tiny_htdemucs()
    path = save_legacy(model, tmp_path / "955717e8-tiny.th")
    package = torch.load(path, weights_only=False)
    assert set(package) == {"klass", "args", "kwargs", "state", "training_args"}

    separator = Separator.from_checkpoint(path)
    loaded = separator.model
    assert isinstance(loaded, HTDemucs) and loaded.sources == list(STEM_NAMES)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value.half().float(), msg=key)

    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal((2, 64000))).astype(np.float32)
    stems = separator.separate(wav, 32000)
    assert separator.calls == 1
    assert stems.sample_rate == 32000
    for name, stem in stems.as_dict().items():
        assert stem.shape == (2, 64000) and stem.dtype == np.float32, name
        assert np.isfinite(stem).all() and np.abs(stem).max() > 0, name


def test_hf_safetensors_bag_loads(tmp_path):
    model = tiny_htdemucs(seed=1)
    bag_path = save_hf_bag(model, tmp_path)
    bag = Separator.from_checkpoint(bag_path).model
    single = Separator.from_checkpoint(tmp_path / "0123abcd.safetensors").model
    assert isinstance(bag, BagOfModels) and len(bag.models) == 1
    for loaded in (bag.models[0], single):
        for key, value in model.state_dict().items():
            torch.testing.assert_close(loaded.state_dict()[key], value, msg=key)


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.th"):
        Separator.from_checkpoint(tmp_path / "nope.th")
    wrong = tmp_path / "wrong.th"
    torch.save({"state_dict": {}}, wrong)
    with pytest.raises(ValueError, match="wrong.th: not a demucs model file.*klass"):
        Separator.from_checkpoint(wrong)
    garbage = tmp_path / "garbage.th"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="garbage.th: not a readable torch checkpoint"):
        Separator.from_checkpoint(garbage)
    other = tmp_path / "model.onnx"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown demucs checkpoint type '.onnx'"):
        Separator.from_checkpoint(other)
    bag = tmp_path / "bag.yaml"
    bag.write_text("models: [deadbeef]\n")
    with pytest.raises(FileNotFoundError, match="deadbeef.safetensors"):
        Separator.from_checkpoint(bag)


@pytest.mark.parametrize("wav, rate, match", [
    (np.zeros((3, 100), np.float32), 44100, r"1 or 2 channels, got shape \(3, 100\)"),
    (np.zeros((100, 2), np.float32), 44100, r"got shape \(100, 2\)"),
    (np.zeros((2, 0), np.float32), 44100, "empty"),
    (np.full((2, 10), np.nan, np.float32), 44100, "NaN"),
    (np.zeros((2, 10), np.float32), 0, "sample_rate must be a positive integer"),
    ([0.0, 1.0], 44100, "numpy array"),
])
def test_bad_audio_is_rejected(wav, rate, match):
    separator = Separator(ScaledSources(STEM_NAMES, gains=[1.0] * 4))
    with pytest.raises(ValueError, match=match):
        separator.separate(wav, rate)
    assert separator.calls == 0


def test_models_and_settings_that_cannot_serve_are_rejected():
    with pytest.raises(ValueError, match=r"lack \['vocals'\]"):
        Separator(ScaledSources(["drums", "bass", "other", "guitar"], gains=[1.0] * 4))
    with pytest.raises(ValueError, match=r"segment must be in \(0, 2.0\]"):
        Separator(tiny_htdemucs(), segment=5.0)
    with pytest.raises(ValueError, match="overlap"):
        Separator(ScaledSources(STEM_NAMES, gains=[1.0] * 4), overlap=1.0)
