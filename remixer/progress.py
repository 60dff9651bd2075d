"""A request's progress: which stage runs, how far it is and how long it has left.

:meth:`remixer.pipeline.Pipeline.remix` and ``generate`` take ``progress``, a callable given a
:class:`Progress` as each stage starts (fraction 0), after every step of the stages that count
steps (separation: demucs chunks; generation: decoding steps over all its windows) and as each
stage ends (``ended``, fraction 1, ETA 0). The ETA is the stage's own: its steps left at its rate
so far. Steps reach the pipeline through the stage's cancel token
(:meth:`remixer.cancellation.CancelToken.reporting`), the per-step call cancellation already
hangs on; :class:`StageClock` turns them into reports.

Two listeners are ready-made: :class:`ProgressBars`, a tqdm bar for each stage that counts steps
(the CLI), and :class:`ProgressLog`, a log line at every quarter of such a stage (the server, whose
log Cog streams to the client).
"""
from __future__ import annotations

import logging
import sys
import time
import typing as tp
from dataclasses import dataclass

__all__ = ["Progress", "ProgressListener", "StageClock", "ProgressBars", "ProgressLog"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """One report on a running stage.

    Attributes
    ----------
    stage : str
        The stage's name, as the log and ``Result.timings`` name it (``"separation"``, ...).
    fraction : float
        How much of the stage is done, 0 to 1.
    eta_s : float or None
        Seconds the stage has left at its rate so far; None until a step is done.
    elapsed_s : float
        Seconds since the stage started.
    done, total : int
        Steps done and to do (0, 0 for a stage that does not count them).
    unit : str
        What a step is (``"chunk"``, ``"step"``).
    ended : bool
        True in the stage's last report.
    """

    stage: str
    fraction: float
    eta_s: float | None
    elapsed_s: float
    done: int = 0
    total: int = 0
    unit: str = ""
    ended: bool = False


ProgressListener = tp.Callable[[Progress], None]


class StageClock:
    """Times one stage and reports it to ``listener``: started on construction, then
    :meth:`step` per step and :meth:`finish` once.

    >>> reports = []
    >>> clock = StageClock("generation", "step", reports.append)
    >>> clock.step(50, 200)
    >>> reports[-1].fraction, reports[-1].done, reports[-1].total
    (0.25, 50, 200)
    """

    def __init__(self, stage: str, unit: str = "", listener: ProgressListener | None = None, *,
                 clock: tp.Callable[[], float] = time.perf_counter) -> None:
        self.stage, self.unit, self.listener = stage, unit, listener
        self.done = self.total = 0
        self._clock = clock
        self._start = clock()
        self._report(0.0, None)

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    def step(self, done: int, total: int) -> None:
        """``done`` of ``total`` steps are done (the signature of the models' progress callbacks)."""
        self.done, self.total = done, total
        fraction = min(done / total, 1.0) if total > 0 else 0.0
        eta = self.elapsed * max(total - done, 0) / done if done > 0 else None
        self._report(fraction, eta)

    def finish(self) -> float:
        """Report the stage's end; returns its seconds."""
        seconds = self.elapsed
        self._report(1.0, 0.0, ended=True, elapsed=seconds)
        return seconds

    def summary(self, seconds: float) -> str:
        """The stage's log line: ``"separation done in 12.30 s (24 chunks)"``."""
        counted = f" ({self.total} {self.unit}s)" if self.total else ""
        return f"{self.stage} done in {seconds:.2f} s{counted}"

    def _report(self, fraction: float, eta: float | None, *, ended: bool = False,
                elapsed: float | None = None) -> None:
        if self.listener is not None:
            self.listener(Progress(self.stage, fraction, eta, self.elapsed if elapsed is None else elapsed,
                                   self.done, self.total, self.unit, ended))


class ProgressBars:
    """A listener that draws a tqdm bar for each stage that counts steps, and removes it when
    the stage ends (its log line stays).

    Parameters
    ----------
    file : text stream, optional
        Where to draw; default ``sys.stderr`` (as it is when the bars are made).
    disable : bool or None
        True: draw nothing; None (default): draw only when ``file`` is a terminal.
    mininterval : float
        Least seconds between two redraws (tqdm's).
    """

    def __init__(self, file: tp.TextIO | None = None, disable: bool | None = None, *,
                 mininterval: float = 0.1) -> None:
        self.file = sys.stderr if file is None else file
        self.disable = disable
        self.mininterval = mininterval
        self._bar: tp.Any = None

    def __call__(self, progress: Progress) -> None:
        if progress.total and self._bar is None and not progress.ended:
            from tqdm import tqdm
            self._bar = tqdm(total=progress.total, desc=progress.stage, unit=progress.unit or "it",
                             file=self.file, disable=self.disable, leave=False, dynamic_ncols=True,
                             mininterval=self.mininterval)
        if self._bar is None:
            return
        self._bar.update(progress.done - self._bar.n)
        if progress.ended:
            self._bar.close()
            self._bar = None


class ProgressLog:
    """A listener that logs each stage that counts steps at every ``every`` of it, with the
    stage's ETA (one per request: it remembers what it logged)."""

    def __init__(self, every: float = 0.25, log: logging.Logger = logger) -> None:
        if not 0 < every < 1:
            raise ValueError(f"every must be in (0, 1), got {every}")
        self.every, self.log = every, log
        self._logged: dict[str, int] = {}

    def __call__(self, progress: Progress) -> None:
        if not progress.total or progress.ended or progress.fraction >= 1.0:
            return  # the stage's own log line says when it is done
        mark = int(progress.fraction / self.every + 1e-9)
        if mark <= self._logged.get(progress.stage, 0):
            return
        self._logged[progress.stage] = mark
        left = "" if progress.eta_s is None else f", about {duration_text(progress.eta_s)} left"
        self.log.info("%s: %d%% (%d of %d %ss)%s", progress.stage, round(100 * progress.fraction),
                      progress.done, progress.total, progress.unit, left)


def duration_text(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``: a duration as people read it.

    >>> duration_text(41.6), duration_text(185)
    ('42 s', '3 min 05 s')
    """
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"
