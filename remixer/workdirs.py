"""Per-request output directories for a long-running server, removed once they are done with.

Cog (coglet 0.23) reads a prediction's output files after ``predict`` returns, one after the
other, so a directory cannot be removed by ``predict`` itself. :class:`RequestDirs` keeps each
succeeded request's directory for ``keep_s`` seconds after it finished and then removes it
(at the next request and from a timer the predictor schedules); a failed or cancelled request's
directory goes at once. Only directories this object created are ever removed.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["RequestDirs"]


class RequestDirs:
    """Creates one directory per request under ``parent`` and removes them when done.

    Parameters
    ----------
    parent : Path, optional
        Where the directories go (default: the system temp directory).
    keep_s : float
        Seconds a succeeded request's outputs stay on disk for the server to take them.
    """

    def __init__(self, parent: Path | None = None, *, keep_s: float = 60.0) -> None:
        if not keep_s >= 0:
            raise ValueError(f"keep_s must be >= 0 seconds, got {keep_s!r}")
        self.parent = parent
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self._finished: dict[Path, float] = {}  # directory -> time.monotonic() it finished

    def create(self) -> Path:
        """A new empty directory for one request (expired ones are removed first)."""
        self.sweep()
        return Path(tempfile.mkdtemp(prefix="remixer-", dir=self.parent))

    def succeeded(self, path: Path) -> None:
        """The request returned its outputs: keep them ``keep_s`` seconds, then remove them."""
        with self._lock:
            self._finished[path] = time.monotonic()

    def discard(self, path: Path) -> None:
        """The request failed or was cancelled: remove its directory and any partial output now."""
        with self._lock:
            self._finished.pop(path, None)
        shutil.rmtree(path, ignore_errors=True)

    def sweep(self) -> None:
        """Remove the succeeded requests' directories older than ``keep_s``."""
        now = time.monotonic()
        with self._lock:
            expired = [path for path, at in self._finished.items() if now - at >= self.keep_s]
            for path in expired:
                del self._finished[path]
        for path in expired:
            shutil.rmtree(path, ignore_errors=True)
