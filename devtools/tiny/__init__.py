"""Tiny models in the real file formats (and the test material around them).

Each module writes or builds one model family small enough for a CPU test: :mod:`.btc`,
:mod:`.demucs`, :mod:`.musicgen` (T5, EnCodec, chord and melody LMs, MBD), :mod:`.allinone`;
:mod:`.cache` lays all of them out as a complete weights cache with its own manifest.
"""
