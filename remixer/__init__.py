"""MusicGen Remixer: remix a song in a new style with MusicGen Chord.

The map of the package (data flow, every module in one line, import layers, where each kind of
change goes) is ``docs/ARCHITECTURE.md``. Entry points: :class:`remixer.pipeline.Pipeline` from
Python, ``python -m remixer`` on the command line, ``predict.py`` under Cog.
"""
import logging as _logging

from remixer import threads as _threads

__version__ = "0.1.0"

# Before any module of the package imports torch: OpenMP reads its wait policy once, as it loads.
_threads.passive_wait_default()


class _XFormersWithoutExtensions(_logging.Filter):
    """xFormers warns at import, six lines on stderr, that its C++/CUDA extensions do not fit this
    torch. audiocraft imports it but runs torch's own attention, so the warning is noise here: it
    goes to the debug log instead."""

    def filter(self, record: _logging.LogRecord) -> bool:
        if "can't load C++/CUDA extensions" in record.getMessage():
            record.levelno, record.levelname = _logging.DEBUG, "DEBUG"
            return _logging.getLogger(record.name).isEnabledFor(_logging.DEBUG)
        return True


_logging.getLogger("xformers").addFilter(_XFormersWithoutExtensions())
