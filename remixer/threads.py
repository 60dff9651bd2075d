"""CPU threads: how many the libraries may use, set once per process from the cores it may run on.

torch's intra-op pool, MKL and OpenBLAS each default to one thread per core of the machine and
spin while they wait for work. On a CPU shared with other processes that is ruinous: the
remix's many small ops each wait at an OpenMP barrier for a thread the scheduler has parked, so
a 1-minute remix with tiny models took 541 s with torch's defaults and 78 s with one thread, on
this project's 2-core machine under load (``bench/threads.py`` measures the CLI against the
server). What is set:

* ``OMP_WAIT_POLICY=PASSIVE`` (unless set): waiting OpenMP threads sleep instead of spinning.
  OpenMP reads it once, when torch loads it, so ``import remixer`` sets it before torch is
  imported (:func:`passive_wait_default`); with it the same remix used both cores in 98 s.
* torch's intra-op threads, MKL's and OpenBLAS's: the cores available to this process
  (:func:`available_cores`: its CPU affinity, capped by a cgroup CPU quota), or
  ``REMIXER_THREADS`` / the CLI's ``--threads``;
* torch's inter-op threads: 1 (nothing here runs torch ops in parallel with each other).

:func:`configure_threads` applies them; the front-ends call it once (``Models.load`` does).
"""
from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ThreadSettings", "available_cores", "configure_threads", "passive_wait_default",
           "threads_from_env", "THREADS_ENV"]

logger = logging.getLogger(__name__)

THREADS_ENV = "REMIXER_THREADS"
# Read by the libraries when they load: setting them before the first import is what works.
_POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_CGROUP_ROOT = Path("/sys/fs/cgroup")
# `import remixer` imports this module first: torch already loaded means OpenMP read its wait
# policy before passive_wait_default() could set it.
TORCH_BEFORE_REMIXER = "torch" in sys.modules


@dataclass(frozen=True)
class ThreadSettings:
    """The thread counts a process runs with, as read back from the libraries.

    Attributes
    ----------
    threads : int
        What was asked for: intra-op and BLAS threads.
    source : str
        Where that number came from: ``"asked for"`` (``--threads``, ``threads=``),
        ``"REMIXER_THREADS"`` or ``"cores available"``.
    cores : int
        The cores this process may run on (:func:`available_cores`).
    torch_intra_op, torch_inter_op : int or None
        ``torch.get_num_threads()`` / ``torch.get_num_interop_threads()`` (None: torch not loaded).
    blas : int or None
        The BLAS libraries' thread count (threadpoolctl; None: none loaded).
    wait_policy : str
        ``OMP_WAIT_POLICY`` as OpenMP read it when torch loaded (``"unset"`` if it was).
    """

    threads: int
    source: str
    cores: int
    torch_intra_op: int | None
    torch_inter_op: int | None
    blas: int | None
    wait_policy: str

    def describe(self) -> str:
        return (f"{self.threads} CPU thread(s) ({self.source}; {self.cores} core(s) available): torch "
                f"intra-op {self.torch_intra_op}, inter-op {self.torch_inter_op}, BLAS {self.blas}, "
                f"OMP_WAIT_POLICY {self.wait_policy}")


def passive_wait_default() -> None:
    """Make OpenMP's waiting threads sleep, unless the user chose a policy; effective only before
    torch is first imported (OpenMP reads the variable once, as it loads)."""
    if not os.environ.get("OMP_WAIT_POLICY", "").strip():  # empty is no choice (libgomp calls it invalid)
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2/v1 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota(root: Path = _CGROUP_ROOT) -> float | None:
    """CPUs granted by the cgroup CPU quota (``cpu.max``, or v1's ``cpu.cfs_quota_us``), None if unlimited."""
    try:
        fields = (root / "cpu.max").read_text().split()
        if fields and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def threads_from_env() -> int | None:
    """``REMIXER_THREADS`` as a positive int, None when unset.

    Raises
    ------
    ValueError
        When it is set to anything but a positive whole number.
    """
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV} must be a whole number of threads >= 1, got {value!r}")
    return int(value)


def configure_threads(threads: int | None = None) -> ThreadSettings:
    """Set torch's and the BLAS libraries' threads for this process, and report what they became.

    Parameters
    ----------
    threads : int, optional
        Intra-op and BLAS threads. Default: ``REMIXER_THREADS``, else :func:`available_cores`.

    Before torch or numpy is imported this only sets the libraries' variables (they read them as
    they load); afterwards it also calls their setters, and logs what they report. Calling it
    again with the same number changes nothing; torch's inter-op count, which may be set only
    once, is left as it is then.
    """
    cores = available_cores()
    source = "asked for"
    if threads is None:
        threads = threads_from_env()
        source = THREADS_ENV
    if threads is None:
        threads, source = cores, "cores available"
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    for name in _POOL_VARIABLES:
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        if torch.get_num_interop_threads() != 1:
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:  # only before the first inter-op work; then it stays
                logger.debug("torch's inter-op threads were already in use; left at %d",
                             torch.get_num_interop_threads())
    blas = _set_blas_threads(threads) if "numpy" in sys.modules else None
    settings = ThreadSettings(threads=threads, source=source, cores=cores,
                              torch_intra_op=None if torch is None else torch.get_num_threads(),
                              torch_inter_op=None if torch is None else torch.get_num_interop_threads(),
                              blas=blas, wait_policy=_wait_policy())
    if torch is not None:
        logger.info("%s", settings.describe())
    return settings


def _set_blas_threads(threads: int) -> int | None:
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(threads, user_api="blas")
    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else None


def _wait_policy() -> str:
    """The OpenMP wait policy torch runs with, as far as this process can tell."""
    if TORCH_BEFORE_REMIXER:
        return "as it was when torch was imported, before remixer"
    return os.environ.get("OMP_WAIT_POLICY") or "unset"
