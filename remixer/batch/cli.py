"""``python -m remixer batch``: many remixes (or generations) at once, resumable.

    python -m remixer batch song.mp3 --prompt "bossa nova" --prompt "lofi hip hop" --out sweep/
    python -m remixer batch songs/ --prompts-file styles.txt -i seed=1 -i seed=2 -i output_format=mp3 --out out/
    python -m remixer batch --jobs jobs.csv --out out/ --endpoint http://gpu-box:5000 --in-flight 4

Jobs are songs (files, or folders of audio files) x prompts x every value of each repeated
``-i NAME=VALUE`` (the predictor's input names, e.g. ``-i return_instrumental=true``), or the
lines of a job file (``--jobs``: JSON Lines or CSV with a ``song`` and any inputs; ``-i`` fills
what a line leaves out). Every job is checked before the first one runs. Each job's files go
to ``OUT/<song>-<prompt>-<key>/`` under the names a remix gives them (``remix.wav``,
``instrumental.wav``, ``stem-vocals.wav``, ``analysis.json`` ...), and ``OUT/results.jsonl``
gets a line per job: inputs, status, seed, stage timings, files, error. Running the same command
again skips the jobs that succeeded (by the song's content and the inputs) and retries the
others. ``OUT/batch.log`` has every stage of every job.

Locally (default) the models load once and the jobs of one song share its separation, chords
and beats. With ``--endpoint URL`` (repeatable) the jobs go to Cog HTTP servers (``cog serve``,
a container, a load balancer), ``--in-flight`` predictions at once; Ctrl-C cancels those on
the servers. Exit status: 0 all done, 1 some failed, 2 nothing ran (bad jobs), 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
import typing as tp
from pathlib import Path

from tqdm import tqdm

from remixer.batch.jobs import find_songs, parse_value, plan, read_job_file, sweep_jobs
from remixer.batch.progress import Progress, summary
from remixer.batch.remote import Endpoint, EndpointError, RemoteRunner
from remixer.batch.results import SUCCEEDED, Record, Results
from remixer.cli_options import add_runtime_options
from remixer.requests import InputError
from remixer.weights import WeightsError

INTERRUPTED = 130
_PER_ENDPOINT = 2  # predictions in flight per endpoint by default: cog.yaml's concurrency


def _parser() -> argparse.ArgumentParser:
    doc = __doc__.replace("``", "").split("\n\n")
    parser = argparse.ArgumentParser(
        prog="python -m remixer batch", description="Many remixes (or generations) at once, resumable.",
        epilog="examples:\n" + "\n\n".join(doc[1:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("songs", nargs="*", type=Path, metavar="SONG",
                        help="songs to remix: files, or folders (their audio files); none: generations")
    parser.add_argument("--out", type=Path, required=True, help="output folder (results.jsonl, one folder per job)")
    parser.add_argument("-p", "--prompt", action="append", default=[], help="a style; repeat to sweep")
    parser.add_argument("--prompts-file", type=Path, help="prompts, one per line (# comments)")
    parser.add_argument("-i", "--input", action="append", default=[], metavar="NAME=VALUE",
                        help="a predictor input for every job, e.g. -i output_format=mp3; "
                             "repeat a name to sweep its values (-i seed=1 -i seed=2)")
    parser.add_argument("--jobs", type=Path, help="job file: .jsonl or .csv, one job per line")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    remote = parser.add_argument_group("remote: Cog HTTP servers")
    remote.add_argument("--endpoint", action="append", default=[], metavar="URL",
                        help="a Cog server, e.g. http://localhost:5000 (repeat for several)")
    remote.add_argument("--in-flight", type=int,
                        help=f"predictions at once (default {_PER_ENDPOINT} per endpoint)")
    remote.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds a prediction may take before it is cancelled (default 3600)")
    remote.add_argument("--retries", type=int, default=3,
                        help="times a job is sent again after a dropped connection or server error (default 3)")
    add_runtime_options(parser.add_argument_group("local"))
    return parser


def _rows(args: argparse.Namespace) -> list[tuple[str, dict[str, tp.Any]]]:
    """The jobs as given, before any check."""
    options = []
    for item in args.input:
        name, equals, value = item.partition("=")
        if not equals:
            raise InputError(f"-i {item!r}: write NAME=VALUE, e.g. -i seed=3")
        options.append((name.strip(), parse_value(name.strip(), value)))
    prompts = list(args.prompt)
    if args.prompts_file is not None:
        try:
            lines = args.prompts_file.read_text().splitlines()
        except OSError as error:
            raise InputError(f"{args.prompts_file}: {error.strerror}") from None
        prompts += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if args.jobs is not None:
        repeated = sorted({name for name, _ in options if [n for n, _ in options].count(name) > 1})
        if args.songs or prompts or repeated:
            raise InputError("--jobs takes its songs and prompts from the file; -i gives one value per "
                             "input, used where a line leaves it out")
        return read_job_file(args.jobs, dict(options))
    if not (args.songs or prompts or options):
        raise InputError("nothing to run: give songs and --prompt, or --jobs FILE")
    return sweep_jobs(find_songs(args.songs, outside=args.out), prompts, options)


class _TqdmHandler(logging.Handler):
    """Log lines printed above the progress bar, not through it; one line each (a traceback
    goes to the log file only)."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(f"{record.name}: {record.getMessage()}", file=sys.stderr)


@contextlib.contextmanager
def _batch_log(path: Path) -> tp.Iterator[None]:
    """The package's log: everything to ``path`` (each stage's start and end, every window),
    warnings to the terminal too."""
    package = logging.getLogger("remixer")
    to_file = logging.FileHandler(path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s: %(message)s", "%H:%M:%S"))
    to_terminal = _TqdmHandler(logging.WARNING)
    level = package.level
    package.setLevel(logging.DEBUG)
    package.addHandler(to_file)
    package.addHandler(to_terminal)
    try:
        yield
    finally:
        package.removeHandler(to_file)
        package.removeHandler(to_terminal)
        package.setLevel(level)
        to_file.close()


def _remote_runner(args: argparse.Namespace) -> RemoteRunner:
    """The runner for ``--endpoint``, with the endpoints that answer.

    Raises
    ------
    InputError
        When no endpoint answers as a Cog server.
    """
    try:
        endpoints = [Endpoint(url) for url in args.endpoint]
    except ValueError as error:
        raise InputError(str(error)) from None
    usable = []
    for endpoint in endpoints:
        try:
            status = endpoint.health()
        except EndpointError as error:
            logging.getLogger(__name__).warning("left out: %s", error)
            continue
        if status == "SETUP_FAILED":
            logging.getLogger(__name__).warning("left out: %s: its setup failed", endpoint)
            continue
        usable.append(endpoint)
    if not usable:
        raise InputError(f"no endpoint answers as a Cog server: {', '.join(args.endpoint)}")
    return RemoteRunner(usable, in_flight=args.in_flight or _PER_ENDPOINT * len(usable),
                        timeout=args.timeout, retries=args.retries)


def _local_runner(args: argparse.Namespace, versions: tp.Sequence[str]) -> tp.Any:
    """The runner in this process, with every model the jobs use loaded once."""
    from remixer.batch.local import LocalRunner
    from remixer.pipeline import Models, Pipeline
    from remixer.smoke import smoke_from_env
    from remixer.weights import WeightsStore

    smoke = args.smoke or smoke_from_env()
    store = None if smoke else WeightsStore(args.weights_dir, offline=args.offline or None)
    models = Models.load(store, device=args.device, analysis_backend=args.analysis_backend, preload=versions,
                         threads=args.threads, smoke=smoke)
    return LocalRunner(Pipeline(models, max_duration=args.max_duration))


class _Recorded(Results):
    """Results that also keep this run's records, for the summary."""

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self.added: list[Record] = []

    def add(self, record: Record) -> None:
        super().add(record)
        self.added.append(record)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.in_flight is not None and not args.endpoint:
        parser.error("--in-flight applies to --endpoint")
    if args.in_flight is not None and args.in_flight < 1:
        parser.error("--in-flight must be at least 1")
    try:
        rows = _rows(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    checked = plan(rows)
    for message in checked.errors + [f"note: {repeat}" for repeat in checked.repeats]:
        print(message, file=sys.stderr)
    if checked.errors or not checked.jobs:
        print(f"error: {len(checked.errors)} of {len(rows)} jobs are invalid; nothing ran" if checked.errors
              else "error: no job to run", file=sys.stderr)
        return 2
    jobs = checked.jobs
    results = _Recorded(args.out)
    earlier = results.load()
    to_run = [job for job in jobs if not results.finished(earlier, job)]
    skipped = len(jobs) - len(to_run)
    start = time.perf_counter()
    interrupted = False
    with _batch_log(args.out / "batch.log"):
        logging.getLogger(__name__).info("batch: %d jobs, %d already done", len(jobs), skipped)
        try:
            if to_run:
                runner = (_remote_runner(args) if args.endpoint
                          else _local_runner(args, tuple(dict.fromkeys(j.request.model_version for j in to_run))))
                with Progress(len(to_run), quiet=args.quiet) as progress:
                    runner.run(to_run, results, progress)
        except (InputError, WeightsError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            interrupted = True
    print(summary(results.added, skipped=skipped, seconds=time.perf_counter() - start))
    if interrupted:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return INTERRUPTED
    return 0 if all(record.status == SUCCEEDED for record in results.added) else 1
