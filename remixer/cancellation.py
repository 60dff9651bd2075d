"""Cooperative cancellation: a request's work stops at the next check of its token.

The pipeline runs in a worker thread, which nothing can interrupt from outside (Cog delivers a
cancel to an async ``predict`` as ``asyncio.CancelledError`` in the awaiting task only). So the
front-end hands each request a :class:`CancelToken`, sets it on cancel, and the work checks it
between stages, between demucs chunks and between MusicGen decoding steps and windows, raising
:class:`Cancelled` there. The longest run between two checks is one chunk or one decoding step.
"""
from __future__ import annotations

import threading

__all__ = ["Cancelled", "CancelToken"]


class Cancelled(BaseException):
    """The request was cancelled; raised at the next check of its token.

    A ``BaseException`` (like ``KeyboardInterrupt`` and ``asyncio.CancelledError``) so that
    ``except Exception`` blocks, ours or a library's, do not swallow it.
    """


class CancelToken:
    """A thread-safe flag: set once by the front-end, checked by the work.

    >>> token = CancelToken()
    >>> token.check()          # not cancelled: returns
    >>> token.cancel()
    >>> token.cancelled
    True
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next check (idempotent)."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled("the request was cancelled")

    def progress_callback(self, *_progress: object) -> None:
        """:meth:`check` with the signature of progress callbacks (audiocraft's ``(step, total)``,
        demucs' ``(info)``), so that cancelling stops a model between its steps."""
        self.check()
