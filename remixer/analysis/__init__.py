"""Tempo, beats, downbeats and sections of a piece of audio: the analysers and the choice between them.

Two backends produce the same :class:`~remixer.beats.Beats` record: All-In-One
(:mod:`remixer.analysis.allinone`, needs its downloaded weights; reads our stems and also finds
sections) and madmom's joint beat/downbeat RNN (:mod:`remixer.analysis.madmom`, always offline).
Both decode frame-wise beat and downbeat probabilities with the same bar-aware DBN
(:func:`remixer.beats.beats_from_activations`), so their outputs differ only by the network that
scored the frames. :func:`make_analyzer` picks one.

Audio without a detectable pulse (silence, noise, speech) yields an *empty* ``Beats``
(``bpm=None``, no beats) rather than an error; callers skip beat-synchronisation for it.
"""
from __future__ import annotations

import logging
import typing as tp

import numpy as np

from remixer.analysis.madmom import MadmomAnalyzer
from remixer.beats import Beats, TempoPrior
from remixer.requests import ANALYSIS_BACKENDS

__all__ = ["Analyzer", "ANALYSIS_BACKENDS", "make_analyzer"]

logger = logging.getLogger(__name__)

class Analyzer(tp.Protocol):
    """Anything that turns audio into :class:`Beats`; ``needs_stems``: it reads a song's separated
    stems (so a song's analysis waits for the separation)."""

    name: str
    needs_stems: bool

    def analyze(self, wav: np.ndarray, sample_rate: int, stems: tp.Any = None, *,
                prior: TempoPrior | None = None) -> Beats:
        """Analyse ``wav`` (channels, samples); ``stems`` are its separated sources, if any;
        ``prior`` the tempo and bar length it is known to have (see `remixer.beats`)."""
        ...


def make_analyzer(backend: str = "auto", *, weights: tp.Any = None, device: tp.Any = "cpu") -> Analyzer:
    """Build the beat analyser named by ``backend``.

    Parameters
    ----------
    backend : {"auto", "allinone", "madmom"}
        ``"auto"`` prefers All-In-One (better downbeats, plus sections) and falls back to madmom,
        with a logged warning, when its weights cannot be had (missing offline, or their download
        failed).
    weights : optional
        Passed to ``AllInOneAnalyzer.from_weights`` (where to find / fetch its checkpoints).
    device : str or torch.device
        Where All-In-One's network runs (madmom runs on the CPU).

    Raises
    ------
    ValueError
        On an unknown ``backend``.
    remixer.weights.WeightsError
        For ``"allinone"`` without its weights.
    """
    if backend == "madmom":
        return MadmomAnalyzer()
    if backend not in ANALYSIS_BACKENDS:
        raise ValueError(f"unknown beat analysis backend {backend!r}; "
                         f"choose {', '.join(map(repr, ANALYSIS_BACKENDS))}")
    from remixer.analysis.allinone import AllInOneAnalyzer
    from remixer.weights import WeightsError

    if backend == "allinone":
        return AllInOneAnalyzer.from_weights(weights, device=device)
    try:
        return AllInOneAnalyzer.from_weights(weights, device=device)
    except WeightsError as err:
        logger.warning("beats and downbeats will be read by madmom, without sections: All-In-One's "
                       "weights cannot be had (%s). For All-In-One, fetch them: "
                       "python -m remixer.weights fetch allinone", str(err).splitlines()[0])
        return MadmomAnalyzer()
