"""Where a batch's results go: one folder per job and ``results.jsonl``, written to survive a crash.

``results.jsonl`` gets one :class:`Record` per job run, appended and flushed as each job ends;
when a job ran several times (a re-run retried it), its last record counts. A job is finished
when that record says ``succeeded`` and its output files are there: a re-run skips it and runs
the others, failed ones included. A job's files are written into a hidden staging folder under
the output folder and moved to the job's folder in one rename before its record is appended, so
a batch killed at any moment leaves either a finished job or one that runs again, never half a
folder taken for a result.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import shutil
import tempfile
import threading
import typing as tp
from dataclasses import dataclass, field
from pathlib import Path

from remixer.batch.jobs import Job

__all__ = ["Record", "Results", "SUCCEEDED", "FAILED", "CANCELED"]

logger = logging.getLogger(__name__)

SUCCEEDED, FAILED, CANCELED = "succeeded", "failed", "canceled"
RESULTS_FILE = "results.jsonl"


@dataclass
class Record:
    """What one job's run produced, as a line of ``results.jsonl``.

    Attributes
    ----------
    key, origin, inputs : as the :class:`~remixer.batch.jobs.Job`'s (paths as text).
    status : str
        ``succeeded``, ``failed`` or ``canceled`` (interrupted; runs again next time).
    seed : int or None
        The seed the generation used.
    timings : dict
        Seconds per stage of this job (a job that reused its song's analysis has no
        separation, chords or song analysis of its own: ``reused_analysis``).
    outputs : list of str
        Its files, relative to the output folder, main one first.
    error : str or None
        Why it failed.
    seconds : float
        Wall-clock seconds, retries included.
    where : str
        ``local``, or the endpoint that ran it.
    attempts : int
        Predictions sent (remote; a server at capacity does not count).
    """

    key: str
    origin: str
    inputs: dict[str, tp.Any]
    status: str
    seed: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    where: str = "local"
    attempts: int = 1
    reused_analysis: bool = False
    finished_at: str = ""

    @classmethod
    def of(cls, job: Job, status: str, **fields: tp.Any) -> Record:
        return cls(key=job.key, origin=job.origin, inputs=job.shown_inputs(), status=status, **fields)


class Results:
    """The output folder of a batch: job folders, staging, and ``results.jsonl``.

    Thread-safe: remote workers add records from their threads.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out / RESULTS_FILE
        self._lock = threading.Lock()
        out.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[str, Record]:
        """The last record of every job, by key (a line cut short by a crash is skipped)."""
        records: dict[str, Record] = {}
        if not self.path.exists():
            return records
        names = {f.name for f in dataclasses.fields(Record)}
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            try:
                data = json.loads(line)
                record = Record(**{k: v for k, v in data.items() if k in names})
            except (json.JSONDecodeError, TypeError):
                logger.warning("%s line %d is not a record; skipped", self.path, number)
                continue
            records[record.key] = record
        return records

    def finished(self, records: tp.Mapping[str, Record], job: Job) -> bool:
        """Whether ``job`` succeeded in an earlier run and its files are all there."""
        record = records.get(job.key)
        return (record is not None and record.status == SUCCEEDED and bool(record.outputs)
                and all((self.out / name).is_file() for name in record.outputs))

    def add(self, record: Record) -> None:
        """Append ``record`` (flushed to disk: a crash right after does not lose it)."""
        record.finished_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        line = json.dumps(dataclasses.asdict(record)) + "\n"
        with self._lock, self.path.open("a") as stream:
            stream.write(line)
            stream.flush()
            os.fsync(stream.fileno())

    @contextlib.contextmanager
    def staging(self, job: Job) -> tp.Iterator[Path]:
        """A fresh hidden folder for ``job``'s files, removed on exit unless :meth:`commit`
        moved it."""
        path = Path(tempfile.mkdtemp(prefix=f".staging-{job.key[:8]}-", dir=self.out))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def commit(self, job: Job, staging: Path, files: tp.Sequence[Path]) -> list[str]:
        """Move the staged ``files`` (all inside ``staging``) to the job's folder in one rename,
        replacing what an earlier run left there; returns their paths relative to the output
        folder, in order."""
        target = self.out / job.folder
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        return [f"{job.folder}/{file.relative_to(staging).as_posix()}" for file in files]
