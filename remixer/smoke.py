"""The smoke switch: try every stage before downloading anything, on tiny RANDOM models.

``--smoke`` (CLI), ``REMIXER_SMOKE=1`` (CLI, Python API, server) or ``Models.load(smoke=True)``
build a weights cache of tiny random models in the real file formats into a temporary directory
(``devtools/tiny``) and load it exactly as the real files are loaded. Separation, chords, beats
(madmom's real pretrained model), generation, beat-sync, mix and export all run for real, but the
generated music is NOISE, and the log, ``analysis.json`` and the CLI's output say so.

The builder is development code: it ships in a checkout of the repository (``devtools/``), not in
an installed package. From a checkout it is found beside this package; elsewhere the switch says
that it needs one.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import typing as tp
from dataclasses import dataclass
from pathlib import Path

from remixer.requests import InputError
from remixer.weights import Manifest, WeightsError, WeightsStore

__all__ = ["SMOKE_ENV", "SMOKE_VERSIONS", "NOISE", "SmokeWeights", "smoke_from_env", "smoke_weights",
           "check_smoke_version"]

logger = logging.getLogger(__name__)

SMOKE_ENV = "REMIXER_SMOKE"
# The versions the tiny cache holds (the chord "large" ones are as tiny as the others).
SMOKE_VERSIONS = ("chord", "chord-large", "stereo-chord", "stereo-chord-large", "melody")
NOISE = ("SMOKE RUN: tiny RANDOM models, so the generated music is NOISE; every stage ran for real. "
         "Fetch the real weights with: python -m remixer.weights fetch remix-default")
_CHECKOUT = Path(__file__).resolve().parents[1]


def smoke_from_env() -> bool:
    """Whether ``REMIXER_SMOKE`` asks for the smoke switch (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class SmokeWeights:
    """The tiny cache: its store, and the directory that holds it for as long as this lives."""

    store: WeightsStore
    directory: tempfile.TemporaryDirectory


def smoke_weights() -> SmokeWeights:
    """Build the tiny random weights in a new temporary directory.

    Raises
    ------
    remixer.weights.WeightsError
        When the tiny-model builder (``devtools``, in a checkout of the repository) is not here.
    """
    build = _tiny_builder()
    directory = tempfile.TemporaryDirectory(prefix="remixer-smoke-weights-")
    root = Path(directory.name)
    manifest = Manifest.load(build(root, with_melody=True, with_mbd=True, with_large=True))
    store = WeightsStore(root, offline=True, manifest=manifest)
    logger.warning("%s", NOISE)
    return SmokeWeights(store=store, directory=directory)


def check_smoke_version(version: str) -> None:
    """Refuse a model version the tiny cache does not hold (a client's choice: InputError)."""
    if version not in SMOKE_VERSIONS:
        raise InputError(f"model_version {version!r} has no tiny model in smoke mode; choose one of "
                         f"{', '.join(SMOKE_VERSIONS)}, or fetch the real weights")


def _tiny_builder() -> tp.Callable[..., Path]:
    """``devtools.tiny.cache.build_tiny_weights``, from the checkout this package is in."""
    if not (_CHECKOUT / "devtools" / "tiny" / "cache.py").is_file():
        raise WeightsError(
            f"the smoke switch builds tiny random models with devtools/, which ships only in a checkout "
            f"of the repository, and {_CHECKOUT} has none: run it from a clone (git clone, then "
            f"python -m remixer --smoke ...), or fetch the real weights "
            f"(python -m remixer.weights fetch remix-default)")
    if str(_CHECKOUT) not in sys.path:
        sys.path.insert(0, str(_CHECKOUT))
    from devtools.tiny import cache

    if Path(cache.__file__).resolve().parents[2] != _CHECKOUT:
        raise WeightsError(f"the smoke switch needs {_CHECKOUT / 'devtools'}, but Python imports "
                           f"another package named devtools ({cache.__file__})")
    return cache.build_tiny_weights
