"""What a batch shows while it runs and when it ends.

:class:`Progress` draws one tqdm bar for the whole batch on standard error: jobs done of those to
run, failed so far, the ETA from the pace so far, and the current stage of every running job
(the pipeline's stage locally, the endpoint and retries remotely); each failure is printed as it
happens. ``quiet`` turns all of that off. :func:`summary` is the table printed at the end.
"""
from __future__ import annotations

import sys
import threading
import typing as tp

from tqdm import tqdm

from remixer.batch.jobs import Job
from remixer.batch.results import CANCELED, FAILED, SUCCEEDED, Record

__all__ = ["Progress", "summary"]

_SHOWN_ROWS = 50
_ERROR_CHARS = 70


class Progress:
    """The batch's progress bar (thread-safe); use as a context manager."""

    def __init__(self, total: int, *, quiet: bool = False) -> None:
        self._bar = tqdm(total=total, unit="job", disable=quiet or None, file=sys.stderr,
                         dynamic_ncols=True)
        self._lock = threading.Lock()
        self._stages: dict[str, str] = {}
        self.counts = {SUCCEEDED: 0, FAILED: 0, CANCELED: 0}

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()

    def stage(self, job: Job, text: str) -> None:
        """``job`` is now at ``text`` (a stage, "running on HOST", "retry in 2 s: ...")."""
        with self._lock:
            self._stages[job.folder] = text
            self._show()

    def finished(self, job: Job, record: Record) -> None:
        with self._lock:
            self._stages.pop(job.folder, None)
            self.counts[record.status] += 1
            if record.status == FAILED and not self._bar.disable:
                self._bar.write(f"failed: {job.folder} ({job.origin}): {record.error}", file=sys.stderr)
            self._bar.update(1)
            self._show()

    def _show(self) -> None:
        running = "; ".join(f"{name[:24]}: {stage}" for name, stage in self._stages.items())
        failed = self.counts[FAILED]
        self._bar.set_postfix_str(f"{failed} failed" + (f" | {running}" if running else ""), refresh=True)


def summary(records: tp.Sequence[Record], *, skipped: int, seconds: float) -> str:
    """The end-of-batch table: one row per job run (status, seed, seconds, its folder or its
    error), at most 50 shown, then the totals."""
    rows = [("status", "seed", "seconds", "job")]
    for record in records[:_SHOWN_ROWS]:
        folder = record.outputs[0].split("/")[0] if record.outputs else record.origin
        detail = folder if record.error is None else f"{record.origin}: {_short(record.error)}"
        rows.append((record.status, "-" if record.seed is None else str(record.seed),
                     f"{record.seconds:.1f}", detail))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}" for row in rows]
    if len(records) > _SHOWN_ROWS:
        lines.append(f"... {len(records) - _SHOWN_ROWS} more in results.jsonl")
    counts = {status: sum(r.status == status for r in records) for status in (SUCCEEDED, FAILED, CANCELED)}
    lines.append(f"{counts[SUCCEEDED]} succeeded, {counts[FAILED]} failed, {counts[CANCELED]} canceled, "
                 f"{skipped} already done (skipped) in {seconds:.1f} s")
    return "\n".join(lines)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[:_ERROR_CHARS - 3] + "..."
