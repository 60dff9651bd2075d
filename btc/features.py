"""BTC input features: log-magnitude constant-Q transform of the whole song in one pass.

The reference computes the CQT on consecutive 10 s chunks and concatenates them, which costs one
CQT set-up per chunk and leaves a seam every 108 frames; one pass over the song gives the same
frames without seams (frame ``k`` is centred on sample ``k·2048`` at 22 050 Hz).
"""
from __future__ import annotations

import librosa
import numpy as np

__all__ = ["SAMPLE_RATE", "HOP_LENGTH", "N_BINS", "BINS_PER_OCTAVE", "FRAME_SECONDS", "cqt_features"]

SAMPLE_RATE = 22050
HOP_LENGTH = 2048
N_BINS = 144
BINS_PER_OCTAVE = 24
FRAME_SECONDS = HOP_LENGTH / SAMPLE_RATE
# librosa's lowest CQT octave is computed on a 64x downsampled signal and warns (or refuses)
# when that is shorter than its FFT; shorter input is zero padded and the extra frames dropped.
_MIN_SAMPLES = 2**15


def cqt_features(wav_mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log-CQT features of a mono waveform, as BTC was trained on.

    Parameters
    ----------
    wav_mono : np.ndarray [shape=(samples,)]
        Mono audio, any float dtype, finite values.
    sample_rate : int
        Its sample rate; it is resampled to 22 050 Hz.

    Returns
    -------
    features : np.ndarray [shape=(1 + samples_22k // 2048, 144), dtype=float32]
        ``ln(|CQT| + 1e-6)``, 144 bins at 24 per octave from C1, hop 2048, frame ``k`` at
        ``k · 2048 / 22050`` s.

    Raises
    ------
    ValueError
        Not 1-D, empty, non-finite samples or a non-positive sample rate.
    """
    wav = np.asarray(wav_mono)
    if wav.ndim != 1:
        raise ValueError(f"cqt_features expects mono audio shaped (samples,), got shape {wav.shape}")
    if wav.size == 0:
        raise ValueError("cqt_features got empty audio (0 samples)")
    if not np.issubdtype(wav.dtype, np.floating):
        raise ValueError(f"cqt_features expects float audio in [-1, 1], got dtype {wav.dtype}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    wav = wav.astype(np.float32, copy=False)
    if not np.isfinite(wav).all():
        raise ValueError(f"audio contains {int((~np.isfinite(wav)).sum())} NaN/Inf samples")
    if sample_rate != SAMPLE_RATE:
        wav = librosa.resample(wav, orig_sr=int(sample_rate), target_sr=SAMPLE_RATE)
    frames = 1 + len(wav) // HOP_LENGTH
    if len(wav) < _MIN_SAMPLES:
        wav = np.pad(wav, (0, _MIN_SAMPLES - len(wav)))
    cqt = librosa.cqt(
        wav, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, n_bins=N_BINS, bins_per_octave=BINS_PER_OCTAVE
    )
    return np.log(np.abs(cqt[:, :frames]) + 1e-6).T.astype(np.float32, copy=False)
