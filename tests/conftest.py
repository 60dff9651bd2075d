"""The whole suite (``make test``): ``unit/`` one product module at a time, ``pipeline/`` end to end
on tiny weights, ``server/`` the predictor behind the real Cog server, ``harness/`` the benchmark
scripts and dev tools. ``fixtures/`` is the test-only harness; tiny models and synthesized songs
come from ``devtools``."""
import logging
import os
import sys
from pathlib import Path

import pytest

# Tests import their harness as `fixtures.<area>`, and the package and `devtools` from the repo root.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
# Tests never touch the network or the user's weight cache.
os.environ.setdefault("REMIXER_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tiny models are latency-bound: one thread, as one_torch_thread says, also wherever Models.load
# (or a server, a CLI process) sets the threads. tests/pipeline/test_threads.py lifts it.
os.environ.setdefault("REMIXER_THREADS", "1")

import remixer  # noqa: E402,F401 - before torch: OpenMP's waiting threads sleep (remixer.threads)
import torch  # noqa: E402


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models are latency-bound: OpenMP wake-ups cost more than their matmuls on a busy
    2-core box. Modules that run them use it with ``pytestmark``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def remixer_log_level():
    """The CLI sets the ``remixer`` logger's level (-q, -v) for its process: every test starts
    from the same one."""
    log = logging.getLogger("remixer")
    level = log.level
    yield
    log.setLevel(level)
