"""The command-line options both commands take (``python -m remixer`` and ``python -m remixer
batch``): where the weights are, whether to download, the smoke switch, CPU threads, the device,
the beat analysis backend and the longest song accepted. Torch-free, like the commands' own option
parsing; each help text states its default itself, once."""
from __future__ import annotations

import argparse
from pathlib import Path

from remixer.requests import ANALYSIS_BACKENDS, DEFAULT_MAX_DURATION
from remixer.threads import THREADS_ENV

__all__ = ["add_runtime_options"]


def add_runtime_options(group: argparse._ActionsContainer) -> None:
    """Add ``--weights-dir``, ``--offline``, ``--smoke``, ``--threads``, ``--device``,
    ``--analysis-backend`` and ``--max-duration`` to ``group`` (a parser or an argument group)."""
    group.add_argument("--weights-dir", type=Path,
                       help="weights cache (default: $REMIXER_WEIGHTS_DIR, else weights/ in the checkout)")
    group.add_argument("--offline", action="store_true", help="never download; fail at once if a file is missing")
    group.add_argument("--smoke", action="store_true",
                       help="try it without downloading: tiny RANDOM models built on the spot (needs a "
                            "checkout); every stage runs, the music is NOISE (also REMIXER_SMOKE=1)")
    group.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                       help=f"CPU threads for torch and BLAS (default: ${THREADS_ENV}, else the cores "
                            f"available to this process)")
    group.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    group.add_argument("--analysis-backend", default="auto", choices=ANALYSIS_BACKENDS,
                       help="beat analysis: allinone, madmom, or auto: All-In-One when its weights are "
                            "there, else madmom (default: %(default)s)")
    group.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION, metavar="SECONDS",
                       help="longest song accepted (default: %(default)s)")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)
