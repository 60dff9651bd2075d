"""Cooperative cancellation: a request's work stops at the next check of its token.

The pipeline runs in a worker thread, which nothing can interrupt from outside (Cog delivers a
cancel to an async ``predict`` as ``asyncio.CancelledError`` in the awaiting task only). So the
front-end hands each request a :class:`CancelToken`, sets it on cancel, and the work checks it
between stages, between demucs chunks and between MusicGen decoding steps and windows, raising
:class:`Cancelled` there. The longest run between two checks is one chunk or one decoding step.

The same per-step call carries the work's progress out: a stage's token, made with
:meth:`CancelToken.reporting`, tells a listener each ``(done, total)`` after checking itself
(the pipeline turns those into :class:`remixer.progress.Progress` reports).
"""
from __future__ import annotations

import threading
import typing as tp

__all__ = ["Cancelled", "CancelToken"]


class Cancelled(BaseException):
    """The request was cancelled; raised at the next check of its token.

    A ``BaseException`` (like ``KeyboardInterrupt`` and ``asyncio.CancelledError``) so that
    ``except Exception`` blocks, ours or a library's, do not swallow it.
    """


class CancelToken:
    """A thread-safe flag: set once by the front-end, checked by the work (which also reports
    its steps through it: :meth:`progress_callback`).

    >>> token = CancelToken()
    >>> token.check()          # not cancelled: returns
    >>> token.cancel()
    >>> token.cancelled
    True
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._on_progress: tp.Callable[[int, int], None] | None = None

    def reporting(self, on_progress: tp.Callable[[int, int], None]) -> CancelToken:
        """A token sharing this one's flag (cancelling either cancels both) whose
        :meth:`progress_callback` also tells ``on_progress`` each step's ``(done, total)``."""
        token = CancelToken()
        token._event, token._on_progress = self._event, on_progress
        return token

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

    def progress_callback(self, done: int, total: int) -> None:
        """Called by the work after each of its ``total`` steps (audiocraft's signature): raises
        :class:`Cancelled` if cancelled, so that a model stops between its steps, else tells
        the listener of :meth:`reporting`, if any."""
        self.check()
        if self._on_progress is not None:
            self._on_progress(done, total)
