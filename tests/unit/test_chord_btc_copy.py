"""The 170-class BTC inside a MusicGen Chord checkpoint: extracted, run for chord models, verified."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from btc.recognizer import ChordRecognizer
from devtools.accept import btc_copy_report, compare_btc_copies
from devtools.tiny import btc as btc_fx
from devtools.tiny import musicgen as fx
from remixer.musicgen.conditioners import BTC_PREFIX
from remixer.musicgen.loaders import checkpoint_btc_weights
from remixer.pipeline import Models
from remixer.weights import Manifest, WeightsStore
from remixer.weights.__main__ import main

MEAN, STD = -3.5, 1.7


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A weights cache: both BTC files, a chord checkpoint whose copy equals the 170-class file
    (as published) and a stereo one whose copy differs, with a manifest naming them."""
    root = tmp_path_factory.mktemp("btc-copy")
    files = {"btc-model": "btc/btc_model.pt", "btc-model-large-voca": "btc/btc_model_large_voca.pt",
             "musicgen-chord": "musicgen-chord/musicgen-chord.th",
             "musicgen-stereo-chord": "musicgen-chord/musicgen-stereo-chord.th"}
    for path in files.values():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
    btc_fx.write_checkpoint(root / files["btc-model"], btc_fx.published_state_dict(25, seed=1))
    btc_fx.write_checkpoint(root / files["btc-model-large-voca"], btc_fx.published_state_dict(170),
                            mean=MEAN, std=STD)
    fx.chord_checkpoint(root / files["musicgen-chord"],
                        btc_state=btc_fx.published_state_dict(170))
    fx.chord_checkpoint(root / files["musicgen-stereo-chord"], stereo=True,
                        btc_state=btc_fx.published_state_dict(170, seed=5))
    entries = [{"name": name, "path": path, "urls": ["https://example.invalid/" + name], "license": "MIT",
                "description": "test"} for name, path in files.items()]
    (root / "manifest.json").write_text(json.dumps({"files": entries, "groups": {}}))
    return root


def _store(cache: Path) -> WeightsStore:
    return WeightsStore(cache, offline=True, manifest=Manifest.load(cache / "manifest.json"))


def _models(cache: Path) -> Models:
    """Models with only what chord recognition needs (the separate BTC files)."""
    store = _store(cache)
    recognizers = {large: ChordRecognizer.from_checkpoint(store.path(name))
                   for large, name in ((True, "btc-model-large-voca"), (False, "btc-model"))}
    return Models(store=store, separator=None, analyzer=None, generators=None, recognizers=recognizers)


def test_the_checkpoint_copy_is_the_221_btc_keys_without_their_prefix(cache):
    weights = checkpoint_btc_weights(cache / "musicgen-chord/musicgen-stereo-chord.th")
    expected = btc_fx.published_state_dict(170, seed=5)
    assert sorted(weights) == sorted(expected) and len(weights) == 221
    for key, value in expected.items():
        assert torch.equal(weights[key], value), key


def test_chord_models_recognise_170_classes_with_their_own_copy(cache):
    models = _models(cache)
    recognizer = models.chord_recognizer("stereo-chord", large_voca=True)
    # The checkpoint's weights (seed 5), not the separate file's (seed 0) ...
    state = recognizer.model.state_dict()
    assert torch.equal(state["output_layer.output_projection.weight"],
                       btc_fx.published_state_dict(170, seed=5)["output_layer.output_projection.weight"])
    assert not torch.equal(state["output_layer.output_projection.weight"],
                           models.recognizers[True].model.state_dict()["output_layer.output_projection.weight"])
    # ... with the separate file's normalisation, which the checkpoint does not carry.
    assert (recognizer.mean, recognizer.std) == (MEAN, STD) and len(recognizer.vocab) == 170
    assert models.chord_recognizer("stereo-chord", large_voca=True) is recognizer  # built once
    # The two copies really label differently, so which one runs matters.
    features = np.random.default_rng(0).normal(MEAN, STD, (216, 144)).astype(np.float32)
    assert not np.array_equal(recognizer.frame_labels(features),
                              models.recognizers[True].frame_labels(features))


def test_the_25_class_option_keeps_the_separate_file(cache):
    models = _models(cache)
    assert models.chord_recognizer("stereo-chord", large_voca=False) is models.recognizers[False]
    assert len(models.recognizers[False].vocab) == 25


def test_compare_names_the_differing_tensors():
    same = compare_btc_copies(btc_fx.published_state_dict(170), btc_fx.published_state_dict(170))
    assert same.equal and same.describe() == "equal (221 tensors)"
    other = btc_fx.published_state_dict(170)
    other["self_attn_layers.layer_norm.beta"] = other["self_attn_layers.layer_norm.beta"] + 0.25
    differs = compare_btc_copies(other, btc_fx.published_state_dict(170))
    assert differs.different == ("self_attn_layers.layer_norm.beta",)
    assert differs.describe() == ("DIFFERENT: 1 of 221 tensors differ (max |difference| 0.25), "
                                  "e.g. self_attn_layers.layer_norm.beta")


def test_a_checkpoint_without_btc_keys_is_refused(tmp_path):
    path = tmp_path / "musicgen-chord.th"
    torch.save({"xp.cfg": {}, "model": {"condition_provider.x": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match=f"carries no BTC weights .*{BTC_PREFIX}"):
        checkpoint_btc_weights(path)


def test_the_acceptance_run_reports_whether_the_copies_are_equal(cache):
    lines = btc_copy_report(_store(cache))
    assert lines[0] == "musicgen-chord: BTC copy vs btc-model-large-voca: equal (221 tensors)"
    assert lines[1].startswith("musicgen-stereo-chord: BTC copy vs btc-model-large-voca: DIFFERENT: 221 of 221")
    assert len(lines) == 2


def test_weights_verify_checks_the_files_and_leaves_the_copies_to_the_acceptance_run(cache, capsys):
    assert main(["verify", "--dir", str(cache), "--manifest", str(cache / "manifest.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["btc-model", "btc-model-large-voca", "musicgen-chord",
                                                      "musicgen-stereo-chord"]
    assert all(": ok (no digest in the manifest; sha256 " in line for line in lines), lines
