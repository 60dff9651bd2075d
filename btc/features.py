"""BTC input features: log-magnitude constant-Q transform on the published 10 s chunk grid.

The published conditioner (``ChordExtractor.forward``) computes the CQT of consecutive 10 s
chunks of 22 050 Hz audio and concatenates them: each full chunk gives 108 frames, frame ``i`` of
chunk ``c`` centred on sample ``c·220500 + i·2048``, and its chord times count frames as
``k · 10/108`` s. The chord models were trained on chords read that way, so the frames are kept:
all full chunks go through ONE batched CQT call (one filter bank, bit-identical to chunk by chunk),
a last, shorter chunk through a second, as published. Only a last chunk shorter than librosa's
lowest octave needs (1.5 s) is zero padded, its extra frames dropped.
"""
from __future__ import annotations

import librosa
import numpy as np

__all__ = ["SAMPLE_RATE", "HOP_LENGTH", "N_BINS", "BINS_PER_OCTAVE", "CHUNK_SAMPLES", "CHUNK_FRAMES",
           "FRAME_SECONDS", "cqt_features", "frame_times"]

SAMPLE_RATE = 22050
HOP_LENGTH = 2048
N_BINS = 144
BINS_PER_OCTAVE = 24
# The published chunk (``inst_len`` 10 s) and its frames; 108 frames are also one BTC window.
CHUNK_SAMPLES = 10 * SAMPLE_RATE
CHUNK_FRAMES = 1 + CHUNK_SAMPLES // HOP_LENGTH
# The published time of a frame step (``feature_per_second = inst_len / timestep``): frame ``k``
# of a reading is labelled ``k · FRAME_SECONDS``, which restarts exactly at each chunk.
FRAME_SECONDS = 10.0 / CHUNK_FRAMES
# librosa's lowest CQT octave is computed on a 64x downsampled signal and warns (or refuses)
# when that is shorter than its FFT; shorter input is zero padded and the extra frames dropped.
_MIN_SAMPLES = 2**15


def cqt_features(wav_mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log-CQT features of a mono waveform, as BTC was trained on and the published code read.

    Parameters
    ----------
    wav_mono : np.ndarray [shape=(samples,)]
        Mono audio, any float dtype, finite values.
    sample_rate : int
        Its sample rate; it is resampled to 22 050 Hz.

    Returns
    -------
    features : np.ndarray [shape=(frames, 144), dtype=float32]
        ``ln(|CQT| + 1e-6)``, 144 bins at 24 per octave from C1, hop 2048, on the chunk grid of
        :func:`frame_times`: 108 frames per full 10 s chunk, then the last chunk's.

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
    # The published loop cuts chunks while MORE than a chunk is left: the last one holds 1 to
    # CHUNK_SAMPLES samples; when it is whole (a 30 s window) it joins the batch.
    full = len(wav) // CHUNK_SAMPLES
    parts = []
    if full:
        chunks = _cqt(wav[:full * CHUNK_SAMPLES].reshape(full, CHUNK_SAMPLES))
        parts.append(chunks.transpose(0, 2, 1).reshape(-1, N_BINS))
    if full * CHUNK_SAMPLES < len(wav):
        parts.append(_cqt_of_last(wav[full * CHUNK_SAMPLES:]).T)
    return np.log(np.abs(np.concatenate(parts)) + 1e-6).astype(np.float32, copy=False)


def frame_times(frames: int) -> np.ndarray:
    """Where in the audio (seconds) the first ``frames`` feature frames are centred: frame ``i`` of
    chunk ``c`` at ``10·c + i·2048/22050``, a little after its published label ``k · FRAME_SECONDS``."""
    index = np.arange(frames)
    return (index // CHUNK_FRAMES) * (CHUNK_SAMPLES / SAMPLE_RATE) + (index % CHUNK_FRAMES) * (
        HOP_LENGTH / SAMPLE_RATE)


def _cqt(wav: np.ndarray) -> np.ndarray:
    return librosa.cqt(wav, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, n_bins=N_BINS,
                       bins_per_octave=BINS_PER_OCTAVE)


def _cqt_of_last(wav: np.ndarray) -> np.ndarray:
    if len(wav) >= _MIN_SAMPLES:
        return _cqt(wav)
    return _cqt(np.pad(wav, (0, _MIN_SAMPLES - len(wav))))[:, :1 + len(wav) // HOP_LENGTH]
