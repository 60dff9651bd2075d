"""Put the song's vocals back over the (beat-synchronised) generated instrumental.

Each part is peak-normalised and given a fixed gain, the original Remixer's balance
(instrumental 0.5 = -6 dB, vocals 0.25 = -12 dB of their peaks). Unlike the original, a vocal stem
that is essentially silent - what the separator leaves of an instrumental song - is dropped
instead of being normalised up to -12 dB of audible residue, and all-zero parts never produce
NaN. The mix keeps the instrumental's channel layout and length; loudness normalisation of the
result is the caller's (``remixer.audio.normalize``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from remixer.audio import check_positive_int, fit_length

INSTRUMENTAL_GAIN_DB = float(20 * np.log10(0.5))
VOCAL_GAIN_DB = float(20 * np.log10(0.25))
# Level of the vocals' loud parts: the 95th percentile of 50 ms RMS windows, so a song that only
# sings in its chorus still counts as sung, while separation residue stays low throughout.
LEVEL_WINDOW_S = 0.05
LEVEL_PERCENTILE = 95.0


@dataclass
class MixResult:
    """Outcome of :func:`mix`.

    Attributes
    ----------
    audio : np.ndarray [shape=(channels, samples)], float32
        The mix, with the instrumental's channels and length; peaks at most 0.75 with the
        default gains.
    vocals_used : bool
        False when the vocals were below the floor (or silent) and left out.
    vocal_level_db : float
        Level of the vocals' loud parts in dBFS (see ``LEVEL_PERCENTILE``); ``-inf`` for silence.
    """

    audio: np.ndarray
    vocals_used: bool
    vocal_level_db: float


def _audio(name: str, wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav)
    if wav.ndim != 2 or wav.shape[0] == 0:
        raise ValueError(f"{name} must be shaped (channels, samples), got {wav.shape}")
    if not np.issubdtype(wav.dtype, np.floating):
        raise ValueError(f"{name} must be floating point samples, got dtype {wav.dtype}")
    if not np.all(np.isfinite(wav)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return wav.astype(np.float32)


def active_level_db(wav: np.ndarray, sample_rate: int) -> float:
    """Level of the loud parts of ``wav`` (channels, samples) in dBFS; ``-inf`` when silent.

    The ``LEVEL_PERCENTILE`` percentile of the RMS of consecutive ``LEVEL_WINDOW_S`` windows over
    all channels (a clip shorter than a window is one window).
    """
    window = max(1, int(round(LEVEL_WINDOW_S * sample_rate)))
    n = wav.shape[1] // window
    if n == 0:
        frames = wav[None].astype(np.float64)
    else:
        frames = wav[:, :n * window].reshape(wav.shape[0], n, window).transpose(1, 0, 2)
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=(1, 2)))
    level = float(np.percentile(rms, LEVEL_PERCENTILE)) if rms.size else 0.0
    return 20 * float(np.log10(level)) if level > 0 else float("-inf")


def _peak_scaled(wav: np.ndarray, gain_db: float) -> np.ndarray:
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak == 0:
        return np.zeros_like(wav)
    return wav * np.float32(10 ** (gain_db / 20) / peak)


def _match_channels(vocals: np.ndarray, channels: int) -> np.ndarray:
    if vocals.shape[0] == channels:
        return vocals
    if vocals.shape[0] == 1:
        # Mono vocals sit in the centre of a multichannel instrumental.
        return np.repeat(vocals, channels, axis=0)
    if channels == 1:
        return vocals.mean(axis=0, keepdims=True)
    raise ValueError(f"cannot mix {vocals.shape[0]}-channel vocals into a {channels}-channel "
                     f"instrumental (only equal counts, mono vocals or a mono instrumental)")


def mix(instrumental: np.ndarray, vocals: np.ndarray, sample_rate: int, *,
        vocal_floor_db: float = -50.0, vocal_gain_db: float = VOCAL_GAIN_DB,
        instrumental_gain_db: float = INSTRUMENTAL_GAIN_DB) -> MixResult:
    """Mix ``vocals`` over ``instrumental``, both at ``sample_rate``.

    Parameters
    ----------
    instrumental : np.ndarray [shape=(C, T)]
        Sets the output's channels and length.
    vocals : np.ndarray [shape=(C', T')]
        Trimmed or zero-padded to ``T``; mono vocals are copied to every channel, multichannel
        vocals are averaged for a mono instrumental.
    sample_rate : int > 0
        Rate of both inputs (used to measure the vocal level).
    vocal_floor_db : float
        Vocals whose :func:`active_level_db`, over the part that fits the instrumental, is below
        this are dropped.
    vocal_gain_db, instrumental_gain_db : float
        Peak level of each part in the mix, in dB relative to full scale.

    Returns
    -------
    result : MixResult

    Raises
    ------
    ValueError
        On malformed or non-finite audio, a bad rate, or incompatible channel counts.
    """
    instrumental = _audio("instrumental", instrumental)
    vocals = _audio("vocals", vocals)
    check_positive_int(sample_rate, "sample_rate")
    for name, value in (("vocal_floor_db", vocal_floor_db), ("vocal_gain_db", vocal_gain_db),
                        ("instrumental_gain_db", instrumental_gain_db)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number of dB, got {value}")
    channels, length = instrumental.shape
    fitted = fit_length(_match_channels(vocals, channels), length)
    level = active_level_db(fitted, sample_rate) if length else float("-inf")
    out = _peak_scaled(instrumental, instrumental_gain_db)
    used = level >= vocal_floor_db
    if used:
        out += _peak_scaled(fitted, vocal_gain_db)
    return MixResult(audio=out.astype(np.float32), vocals_used=bool(used), vocal_level_db=level)
