"""Model weights: one manifest of every file the product needs, a verified local cache, a CLI.

* :mod:`remixer.weights.manifest`: what the files are (:class:`WeightSpec`, :class:`Manifest`,
  named groups such as ``remix-default``), read from ``weights/manifest.json``.
* :mod:`remixer.weights.store`: where they are (:class:`WeightsStore`: verified cache, resumable
  downloads, offline errors such as :class:`MissingWeightsError`).
* ``python -m remixer.weights list|fetch|verify``: the command line (:mod:`remixer.weights.__main__`).

The package imports nothing from the rest of :mod:`remixer`, so every layer may use it.
"""
from remixer.weights.manifest import DEFAULT_MANIFEST, Manifest, UnknownWeightError, WeightSpec
from remixer.weights.store import (DEFAULT_CACHE_DIR, ChecksumError, DownloadError, FileDigests,
                                   MissingWeightsError, WeightsError, WeightState, WeightStatus,
                                   WeightsStore, file_digests)

__all__ = [
    "WeightSpec", "Manifest", "WeightsStore", "WeightState", "WeightStatus", "FileDigests",
    "WeightsError", "MissingWeightsError", "DownloadError", "ChecksumError", "UnknownWeightError",
    "file_digests", "DEFAULT_MANIFEST", "DEFAULT_CACHE_DIR",
]
