"""Development tools shared by the tests, the benchmarks and the example: not part of the product.

* :mod:`devtools.synth`: synthesized songs whose beats, chords and stems are known exactly.
* :mod:`devtools.tiny`: tiny models in the real file formats, and a whole weights cache of them
  (:func:`devtools.tiny.cache.build_tiny_weights`), loaded by the product's own loaders.
* :mod:`devtools.accept`: the acceptance run on the real weights (``make accept``).
* :mod:`devtools.cog_schema`: the OpenAPI schema ``cog build`` would give ``predict.py`` (a port of
  Cog's static parser), and what Cog's server does with a request under it.

Import them from a checkout (the repository root on ``sys.path``); ``pip install`` ships only
``remixer`` and ``btc``, what a deployment runs.
"""
