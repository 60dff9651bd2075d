"""Development tools shared by the tests, the benchmarks and the example: not part of the product.

* :mod:`devtools.synth`: synthesized songs whose beats, chords and stems are known exactly.
* :mod:`devtools.tiny`: tiny models in the real file formats, and a whole weights cache of them
  (:func:`devtools.tiny.cache.build_tiny_weights`), loaded by the product's own loaders.
* :mod:`devtools.accept`: the acceptance run on the real weights (``make accept``).

Import them from a checkout (the repository root on ``sys.path``); ``pip install`` ships only
``remixer`` and ``btc``, what a deployment runs.
"""
