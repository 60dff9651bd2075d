"""Which weight files the remix's models need: named before any model code loads, so that one
check lists every missing file at once."""
from __future__ import annotations

import typing as tp

# BTC's two vocabularies: 170 chord classes (large) and 25.
BTC_WEIGHTS = {True: "btc-model-large-voca", False: "btc-model"}


def weights_needed(versions: tp.Sequence[str], analysis_backend: str) -> tuple[list[str], list[str]]:
    """The weight files (and groups) the models of ``versions`` and ``analysis_backend`` need, and
    those they can do without (All-In-One's under ``"auto"``: madmom reads the beats instead)."""
    required = [*BTC_WEIGHTS.values(), "htdemucs", *(f"musicgen-{version}" for version in versions)]
    allinone = ["allinone"] if analysis_backend in ("auto", "allinone") else []
    return (required + allinone, []) if analysis_backend == "allinone" else (required, allinone)
