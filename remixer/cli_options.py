"""The command-line options both commands take (``python -m remixer`` and ``python -m remixer
batch``): where the weights are, whether to download, the device, the beat analysis backend and
the longest song accepted. Torch-free, like the commands' own option parsing."""
from __future__ import annotations

import argparse
from pathlib import Path

from remixer.analysis import ANALYSIS_BACKENDS
from remixer.requests import DEFAULT_MAX_DURATION

__all__ = ["add_runtime_options"]


def add_runtime_options(group: argparse._ActionsContainer) -> None:
    """Add ``--weights-dir``, ``--offline``, ``--device``, ``--analysis-backend`` and
    ``--max-duration`` to ``group`` (a parser or an argument group)."""
    group.add_argument("--weights-dir", type=Path, help="weights cache (default $REMIXER_WEIGHTS_DIR or weights/)")
    group.add_argument("--offline", action="store_true", help="never download; fail if a file is missing")
    group.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    group.add_argument("--analysis-backend", default="auto", choices=ANALYSIS_BACKENDS)
    group.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION,
                       help="longest song accepted, in seconds")
