"""A long-running server's memory: what one request allocated goes back once it is done.

Two things kept it (``bench/soak.py``, 200 predictions of mixed kinds through the Cog server: the
worker's memory grew 18 % between the 20th and the 200th):

* glibc's ``malloc`` keeps freed heap memory for reuse, in one arena per thread that allocated,
  so requests allocating arrays of ever-changing sizes (songs of any length, stems, activations)
  leave the high-water mark of every arena resident;
* a failed or cancelled request leaves reference cycles (its exception, traceback and frames,
  which hold what the client sent: a data URI can be 100 MB) that only Python's full collection
  frees, and that runs rarely next to the hundreds of thousands of objects the models are made of.

:func:`freeze_loaded_objects` (once, after the models are loaded) moves those objects out of the
collector's way, so that :func:`release_request_memory` (after each request) can run a full
collection in well under a millisecond, then return the free heap to the system
(``malloc_trim(0)``; other C libraries than glibc: the collection only).
"""
from __future__ import annotations

import ctypes
import gc
import typing as tp

__all__ = ["freeze_loaded_objects", "release_request_memory"]


def _malloc_trim() -> tp.Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (musl, macOS)
        return None


_MALLOC_TRIM = _malloc_trim()


def freeze_loaded_objects() -> None:
    """Collect what loading left unreachable, then exempt every object alive now (the models)
    from later collections (:func:`gc.freeze`)."""
    gc.collect()
    gc.freeze()


def release_request_memory() -> bool:
    """Free a finished request's reference cycles, then return the free heap memory of every
    arena to the operating system.

    Returns
    -------
    released : bool
        Whether glibc gave memory back (False on other C libraries).
    """
    gc.collect()
    return _MALLOC_TRIM is not None and bool(_MALLOC_TRIM(0))
