"""Local batches: every job in this process, models loaded once, each song read once.

The jobs of one song (same content) run one after the other. The first separates the song and
reads its chords and beats (:meth:`~remixer.pipeline.Pipeline.analyze_song`); every other remix
of it takes that :class:`~remixer.pipeline.SongAnalysis` (``remix(..., song_analysis=...)``), so
a sweep of K prompts costs one separation and K generations. Remixes whose chords another BTC
reads (another ``model_version`` with 170 classes, or ``large_chord_voca`` off) reuse the stems
and beats and read the chords again. A song that cannot be decoded fails all its jobs with its
message, decoded once. The analysis is dropped when the song's last job ends, so a catalogue
holds one song in memory at a time.
"""
from __future__ import annotations

import logging
import time
import typing as tp
from pathlib import Path

from remixer.batch.jobs import Job
from remixer.batch.progress import Progress
from remixer.batch.results import CANCELED, FAILED, SUCCEEDED, Record, Results
from remixer.cancellation import Cancelled
from remixer.pipeline import Pipeline, Result, SongAnalysis, chord_reader
from remixer.progress import Progress as StageProgress
from remixer.progress import ProgressListener
from remixer.requests import InputError, RemixRequest

__all__ = ["LocalRunner"]

logger = logging.getLogger(__name__)


class _SongReading:
    """The analyses of one song, by chord reader, or why it could not be read."""

    def __init__(self, pipeline: Pipeline, progress: ProgressListener) -> None:
        self.pipeline = pipeline
        self.progress = progress
        self.analyses: dict[tuple[str, float | None], SongAnalysis] = {}
        self.failure: InputError | None = None

    def get(self, request: RemixRequest) -> tuple[SongAnalysis, dict[str, float]]:
        """The song's analysis for ``request``'s chord reader and ``song_bpm``, and the seconds of
        the stages run for it now (none when it was read before)."""
        if self.failure is not None:
            raise InputError(str(self.failure))
        key = (chord_reader(request), request.song_bpm)
        if key in self.analyses:
            return self.analyses[key], {}
        separated = next(iter(self.analyses.values()), None)
        try:
            analysis = self.pipeline.analyze_song(request, separated=separated, progress=self.progress)
        except InputError as error:  # the song's own problem: every job of it has it
            self.failure = error
            raise
        self.analyses[key] = analysis
        return analysis, analysis.timings


class LocalRunner:
    """Runs jobs through one :class:`~remixer.pipeline.Pipeline`, reporting each stage as it starts."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._job: Job | None = None
        self._progress: Progress | None = None
        self.pipeline = pipeline

    def _on_progress(self, report: StageProgress) -> None:
        if self._job is not None and self._progress is not None and report.fraction == 0 and not report.ended:
            self._progress.stage(self._job, report.stage)

    def run(self, jobs: tp.Sequence[Job], results: Results, progress: Progress) -> None:
        """Run ``jobs`` (the jobs of a song together), recording each as it ends.

        Raises
        ------
        KeyboardInterrupt
            After recording the running job as canceled.
        """
        self._progress = progress
        for song_jobs in _by_song(jobs):
            reading = _SongReading(self.pipeline, self._on_progress)
            for job in song_jobs:
                record = self._run_one(job, reading, results)
                results.add(record)
                progress.finished(job, record)
                if record.status == CANCELED:
                    raise KeyboardInterrupt

    def _run_one(self, job: Job, reading: _SongReading, results: Results) -> Record:
        start = time.perf_counter()
        self._job = job
        logger.info("job %s (%s): start", job.folder, job.origin)
        try:
            with results.staging(job) as staging:
                result, shared = self._predict(job, reading, staging)
                outputs = results.commit(job, staging, result.outputs)
        except InputError as error:
            return self._record(job, FAILED, start, error=str(error))
        except (KeyboardInterrupt, Cancelled):
            return self._record(job, CANCELED, start, error="interrupted")
        except Exception as error:  # a bug or a broken model file: this job fails, the batch goes on
            logger.exception("job %s failed", job.folder)
            return self._record(job, FAILED, start, error=f"{type(error).__name__}: {error}")
        finally:
            self._job = None
        return self._record(job, SUCCEEDED, start, seed=result.seed, outputs=outputs,
                            timings={**shared, **result.timings},
                            reused_analysis=isinstance(job.request, RemixRequest) and "separation" not in shared)

    def _predict(self, job: Job, reading: _SongReading, workdir: Path) -> tuple[Result, dict[str, float]]:
        """Run ``job`` into ``workdir``; also the seconds of the song analysis it ran for the
        jobs after it."""
        if isinstance(job.request, RemixRequest):
            analysis, seconds = reading.get(job.request)
            return self.pipeline.remix(job.request, workdir, progress=self._on_progress,
                                       song_analysis=analysis), seconds
        return self.pipeline.generate(job.request, workdir, progress=self._on_progress), {}

    @staticmethod
    def _record(job: Job, status: str, start: float, **fields: tp.Any) -> Record:
        logger.info("job %s: %s", job.folder, status)
        return Record.of(job, status, seconds=time.perf_counter() - start, **fields)


def _by_song(jobs: tp.Sequence[Job]) -> list[list[Job]]:
    """The jobs grouped by song content, groups in order of first appearance; each generation
    is a group of its own."""
    groups: dict[tp.Any, list[Job]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.song_digest or ("generation", index), []).append(job)
    return list(groups.values())
