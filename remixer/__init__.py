"""MusicGen Remixer: remix a song in a new style with MusicGen Chord.

The map of the package (data flow, every module in one line, import layers, where each kind of
change goes) is ``docs/ARCHITECTURE.md``. Entry points: :class:`remixer.pipeline.Pipeline` from
Python, ``python -m remixer`` on the command line, ``predict.py`` under Cog.
"""

__version__ = "0.1.0"
