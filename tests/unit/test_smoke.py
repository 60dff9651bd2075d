"""The smoke switch: tiny random models from the checkout, refused versions, no checkout."""
from __future__ import annotations

import pytest

from remixer import smoke
from remixer.requests import InputError
from remixer.weights import WeightsError


def test_smoke_builds_a_store_of_every_tiny_version_and_says_it_is_noise(caplog):
    built = smoke.smoke_weights()
    store = built.store
    assert store.offline and str(store.root).startswith(built.directory.name)
    for version in smoke.SMOKE_VERSIONS:
        lm = f"musicgen-{version}" if "chord" in version else f"musicgen-{version}-lm"
        assert store.target(lm).is_file(), version
    assert "SMOKE RUN" in caplog.text and "NOISE" in caplog.text
    built.directory.cleanup()
    assert not store.root.exists()


def test_versions_without_a_tiny_model_are_refused_by_name():
    smoke.check_smoke_version("stereo-chord-large")
    with pytest.raises(InputError, match="model_version 'melody-large' has no tiny model in smoke mode; "
                                         "choose one of chord, chord-large, stereo-chord"):
        smoke.check_smoke_version("melody-large")


def test_without_a_checkout_the_switch_says_what_it_needs(tmp_path, monkeypatch):
    monkeypatch.setattr(smoke, "_CHECKOUT", tmp_path)
    with pytest.raises(WeightsError, match=r"devtools/, which ships only in a checkout of the repository, "
                                           r"and .* has none: run it from a clone"):
        smoke.smoke_weights()


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("0", False), ("", False)])
def test_the_environment_switch(monkeypatch, value, on):
    monkeypatch.setenv("REMIXER_SMOKE", value)
    assert smoke.smoke_from_env() is on
