"""btc.model and checkpoint loading: the published layout, strict errors, the forward maths."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from btc.labels import VOCAB_25, VOCAB_170
from btc.model import BTC, BTCConfig
from btc.recognizer import ChordRecognizer
from devtools.tiny.btc import published_layout, published_state_dict, reference_logits, write_checkpoint

LAYER = "self_attn_layers.self_attn_layers.{}.attn_block."


@pytest.mark.parametrize("num_chords, parameters", [(25, 3_018_137), (170, 3_036_842)])
def test_model_has_the_published_keys_and_shapes(num_chords, parameters):
    layout = published_layout(num_chords)
    assert len(layout) == 221
    model = BTC(BTCConfig(num_chords=num_chords))
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == list(layout.items())
    assert sum(p.numel() for p in model.parameters()) == parameters
    # A few rows of the documented table, literally.
    assert layout["self_attn_layers.embedding_proj.weight"] == (128, 144)
    assert layout[LAYER.format(7) + "positionwise_convolution.layers.1.conv.weight"] == (128, 128, 3)
    assert layout["self_attn_layers.self_attn_layers.3.linear.weight"] == (128, 256)
    assert layout["output_layer.output_projection.weight"] == (num_chords, 128)
    assert layout["output_layer.lstm.weight_hh_l0_reverse"] == (256, 64)


@pytest.mark.parametrize("num_chords, vocab", [(25, VOCAB_25), (170, VOCAB_170)])
def test_published_checkpoint_file_loads_strictly(tmp_path, num_chords, vocab):
    state_dict = published_state_dict(num_chords, seed=num_chords)
    path = write_checkpoint(tmp_path / "btc.pt", state_dict, mean=-3.5, std=1.75)
    recognizer = ChordRecognizer.from_checkpoint(path)
    assert recognizer.vocab == vocab
    assert type(recognizer.mean) is float and recognizer.mean == -3.5 and recognizer.std == 1.75
    loaded = recognizer.model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state_dict.items())
    assert not recognizer.model.training


def test_forward_matches_the_documented_computation():
    state_dict = published_state_dict(170, seed=3)
    # Non-trivial LayerNorm gains so the unbiased std matters.
    state_dict = {k: v + 1.0 if k.endswith("gamma") else v for k, v in state_dict.items()}
    model = BTC.from_state_dict(state_dict).eval()
    x = torch.randn(1, 108, 144, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for length in (108, 41):
            logits = model(x[:, :length])
            assert logits.shape == (1, length, 170)
            torch.testing.assert_close(logits, reference_logits(state_dict, x[:, :length], 4),
                                       rtol=1e-4, atol=1e-4)


def test_config_is_inferred_from_a_tiny_state_dict():
    config = BTCConfig(feature_size=144, hidden_size=16, num_layers=3, total_key_depth=8,
                       total_value_depth=12, filter_size=24, num_chords=25)
    inferred = BTCConfig.from_state_dict(BTC(config).state_dict())
    assert inferred == config
    assert BTCConfig() == BTCConfig.from_state_dict(published_state_dict(170))


def test_forward_rejects_wrong_shapes():
    model = BTC(BTCConfig(hidden_size=16, num_layers=1, total_key_depth=16, total_value_depth=16,
                          filter_size=16, num_chords=25)).eval()
    with pytest.raises(ValueError, match="at most 108 frames, got 109"):
        model(torch.zeros(1, 109, 144))
    with pytest.raises(ValueError, match=r"\[batch, frames, 144\], got \(1, 10, 12\)"):
        model(torch.zeros(1, 10, 12))
    with pytest.raises(ValueError, match="not divisible by num_heads=4"):
        BTCConfig(total_key_depth=30)


def _save(path, checkpoint):
    torch.save(checkpoint, path)
    return path


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state_dict = published_state_dict(25)
    lost = LAYER.format(5) + "layer_norm_ffn.beta"
    missing = dict(state_dict)
    del missing[lost]
    with pytest.raises(ValueError, match=rf"missing keys \(1\): {lost}") as caught:
        ChordRecognizer.from_checkpoint(write_checkpoint(tmp_path / "missing.pt", missing))
    assert "missing.pt" in str(caught.value)
    extra = dict(state_dict, **{"output_layer.crf.transitions": torch.zeros(25, 25)})
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): output_layer.crf.transitions"):
        ChordRecognizer.from_checkpoint(write_checkpoint(tmp_path / "extra.pt", extra))
    wrong = dict(state_dict, **{"output_layer.lstm.bias_hh_l0": torch.zeros(128)})
    with pytest.raises(ValueError, match=r"wrong shapes \(1\): output_layer.lstm.bias_hh_l0 \(128,\) "
                                         r"\(expected \(256,\)\)"):
        ChordRecognizer.from_checkpoint(write_checkpoint(tmp_path / "wrong.pt", wrong))


def test_bad_checkpoint_files_give_clear_errors(tmp_path):
    weights = published_state_dict(25)
    with pytest.raises(FileNotFoundError, match="nothere.pt does not exist"):
        ChordRecognizer.from_checkpoint(tmp_path / "nothere.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x04 definitely not a checkpoint" * 10)
    with pytest.raises(ValueError, match="corrupt.pt is not a readable torch file"):
        ChordRecognizer.from_checkpoint(corrupt)
    good = write_checkpoint(tmp_path / "good.pt", weights)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.pt is not a readable torch file"):
        ChordRecognizer.from_checkpoint(truncated)
    no_std = _save(tmp_path / "nostd.pt", {"model": weights, "mean": np.float64(1)})
    with pytest.raises(ValueError, match=r"must hold 'model', 'mean' and 'std'; found \['mean', 'model'\]"):
        ChordRecognizer.from_checkpoint(no_std)
    bare = _save(tmp_path / "bare.pt", weights)
    with pytest.raises(ValueError, match="must hold 'model', 'mean' and 'std'"):
        ChordRecognizer.from_checkpoint(bare)
    other = _save(tmp_path / "other.pt", {"model": {"weight": torch.zeros(3)}, "mean": 0.0, "std": 1.0})
    with pytest.raises(ValueError, match="other.pt: not a BTC state dict"):
        ChordRecognizer.from_checkpoint(other)
    bad_std = write_checkpoint(tmp_path / "badstd.pt", weights, std=0.0)
    with pytest.raises(ValueError, match="badstd.pt: feature normalisation needs finite mean and std > 0"):
        ChordRecognizer.from_checkpoint(bad_std)
    text_mean = _save(tmp_path / "textmean.pt", {"model": weights, "mean": "x", "std": 1.0})
    with pytest.raises(ValueError, match="'mean' must be a number"):
        ChordRecognizer.from_checkpoint(text_mean)


def test_unsupported_class_count_is_rejected():
    model = BTC(BTCConfig(hidden_size=16, num_layers=1, total_key_depth=16, total_value_depth=16,
                          filter_size=16, num_chords=30))
    with pytest.raises(ValueError, match="30 classes has no vocabulary"):
        ChordRecognizer(model, 0.0, 1.0)


def test_from_state_dict_takes_numpy_and_tensor_scalars():
    recognizer = ChordRecognizer.from_state_dict(published_state_dict(170), np.float64(-2.5), torch.tensor(3.0))
    assert (type(recognizer.mean), type(recognizer.std)) == (float, float)
    assert (recognizer.mean, recognizer.std, len(recognizer.vocab)) == (-2.5, 3.0, 170)
    with pytest.raises(ValueError, match="finite mean"):
        ChordRecognizer.from_state_dict(published_state_dict(25), np.float64("nan"), 1.0)
