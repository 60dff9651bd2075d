import os
import sys
from pathlib import Path

import pytest
import torch

# Tests import their builders as `fixtures.<area>` and the package from the repo root.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
# Tests never touch the network or the user's weight cache.
os.environ.setdefault("REMIXER_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models are latency-bound: OpenMP wake-ups cost more than their matmuls on a busy
    2-core box. Modules that run them use it with ``pytestmark``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
