"""Audio in and out: decode any audio file, resample, convert channels, normalize levels, export.

Audio is ``numpy.float32`` shaped ``(channels, samples)``; the sample rate travels beside it.

* :func:`load_audio` decodes WAV, FLAC, MP3, Ogg Vorbis/Opus and the other libsndfile formats
  with ``soundfile`` and everything else (M4A/AAC, video containers, ...) with PyAV. Every
  problem (missing, not audio, truncated, empty, silent, NaN/Inf, too long, odd sample rate)
  raises :class:`AudioError` naming the file, before any model sees the data.
* :func:`resample` (soxr, high quality) and :func:`to_channels` (mean, duplicate, or the
  ITU-R BS.775 stereo downmix of surround layouts).
* :func:`normalize` reproduces audiocraft's ``normalize_audio`` strategies (``loudness``,
  ``peak``, ``clip``, ``rms``) with a numpy BS.1770-4 meter, :func:`loudness_lufs`, several
  times faster than torchaudio's (``bench/audio_normalize.py``).
* :func:`export_audio` sanitizes, normalizes and writes WAV (16/24-bit PCM, 32-bit float), FLAC
  (16/24-bit) or MP3 (libmp3lame through PyAV, with a gapless header) atomically;
  :func:`mp3_settings` picks the rate and bitrate an mp3 of any audio can use.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
import scipy.signal
import soundfile as sf
import soxr

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
# About one 16-bit LSB: a file whose peak stays below this holds no usable signal.
SILENCE_PEAK = 10 ** (-90 / 20)
EXPORT_FORMATS = ("wav", "flac", "mp3")
_STRATEGIES = ("loudness", "peak", "clip", "rms", None, "", "none")
BitDepth = int | Literal["float"]
# Formats decoded by libsndfile; the rest go to PyAV. (FFmpeg drops 128 samples at the start of
# some Vorbis streams, libvorbisfile does not.)
_SOUNDFILE_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "FLAC", "MP3", "OGG", "AIFF",
                                "CAF", "AU"})
_OGG_MAX_PAGE = 27 + 255 + 255 * 255
# Frames decoded before a container's declared length is believed (a few hundred ms of audio).
_PROBE_FRAMES = 8
# libsndfile returns Ogg Vorbis/Opus surround channels in Vorbis order (FL FC FR ... LFE last);
# these permutations give the FLAC/WAV order that to_channels and the loudness weights assume.
_VORBIS_TO_WAV_ORDER = {3: (0, 2, 1), 5: (0, 2, 1, 3, 4), 6: (0, 2, 1, 5, 3, 4),
                        7: (0, 2, 1, 6, 5, 3, 4), 8: (0, 2, 1, 7, 5, 6, 3, 4)}
# MP3 bitrates (kbps) per MPEG version: MPEG-1 for 32-48 kHz, MPEG-2/2.5 below.
_MP3_BITRATES = {
    **dict.fromkeys((32_000, 44_100, 48_000),
                    (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)),
    **dict.fromkeys((8_000, 11_025, 12_000, 16_000, 22_050, 24_000),
                    (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)),
}
# Stereo downmix rows (left, right) for the default FLAC/WAV channel orders: centre and surrounds
# at -3 dB, a back centre split at -6 dB to each side, LFE dropped (ITU-R BS.775, as ffmpeg does).
_H = math.sqrt(0.5)
_DOWNMIX = {
    3: ((1, 0, _H), (0, 1, _H)),  # FL FR FC
    4: ((1, 0, _H, 0), (0, 1, 0, _H)),  # FL FR BL BR
    5: ((1, 0, _H, _H, 0), (0, 1, _H, 0, _H)),  # FL FR FC BL BR
    6: ((1, 0, _H, 0, _H, 0), (0, 1, _H, 0, 0, _H)),  # FL FR FC LFE BL BR
    7: ((1, 0, _H, 0, 0.5, _H, 0), (0, 1, _H, 0, 0.5, 0, _H)),  # FL FR FC LFE BC SL SR
    8: ((1, 0, _H, 0, _H, 0, _H, 0), (0, 1, _H, 0, 0, _H, 0, _H)),  # FL FR FC LFE BL BR SL SR
}
# BS.1770-4 channel weights: 1.41 for surrounds, 0 for LFE. Up to five channels this is
# torchaudio's (and pyloudnorm's) L R C Ls Rs table; beyond, the orders of _DOWNMIX.
_LOUDNESS_WEIGHTS = {
    1: (1.0,), 2: (1.0, 1.0), 3: (1.0, 1.0, 1.0), 4: (1.0, 1.0, 1.0, 1.41),
    5: (1.0, 1.0, 1.0, 1.41, 1.41), 6: (1.0, 1.0, 1.0, 0.0, 1.41, 1.41),
    7: (1.0, 1.0, 1.0, 0.0, 1.0, 1.41, 1.41), 8: (1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.41, 1.41),
}


class AudioError(ValueError):
    """An audio file (or array) that cannot be used; the message names the file and the problem."""


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming ``name`` unless it is a positive
    integer (``bool`` is refused although it is an ``int``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def load_audio(path: str | os.PathLike[str], sample_rate: int | None = None,
               channels: int | None = None, *, allow_silent: bool = False,
               max_duration: float | None = None,
               max_channels: int | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 ``(channels, samples)``.

    Parameters
    ----------
    path : str or PathLike
        Any file libsndfile or FFmpeg decodes: wav, flac, mp3, ogg (Vorbis/Opus), m4a/aac, ...
    sample_rate : int, optional
        Resample to this rate (8-192 kHz); ``None`` keeps the file's rate.
    channels : int, optional
        Convert to this many channels with :func:`to_channels`; ``None`` keeps the file's.
    allow_silent : bool
        Accept a file whose peak is below -90 dBFS (otherwise an error).
    max_duration : float, optional
        Refuse files longer than this many seconds, judged from the container's header before
        decoding when it declares a length, and while decoding otherwise.
    max_channels : int, optional
        Downmix files with more channels to this many (surround to stereo with
        :func:`to_channels`); files with fewer keep theirs.

    Returns
    -------
    wav : np.ndarray [shape=(channels, samples), dtype=float32]
    sample_rate : int
        ``sample_rate`` when given, else the file's rate.

    Raises
    ------
    AudioError
        Missing or empty file, not audio or unsupported format, truncated or corrupt data, no
        samples, all-silent audio, NaN/Inf samples, longer than ``max_duration``, or a file rate
        outside 8-192 kHz.
    ValueError
        Invalid ``sample_rate``, ``channels`` or ``max_duration``.
    """
    if sample_rate is not None:
        _check_rate(sample_rate, "requested sample rate")
    if channels is not None and (not isinstance(channels, int) or channels < 1):
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    if max_duration is not None and not max_duration > 0:
        raise ValueError(f"max_duration must be positive seconds, got {max_duration!r}")
    if max_channels is not None:
        max_channels = check_positive_int(max_channels, "max_channels")
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")

    wav, rate = _decode_soundfile(path, max_duration)
    if wav is None:
        wav, rate = _decode_av(path, max_duration)
    if wav.shape[1] == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if not np.isfinite(wav).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    if not allow_silent and np.abs(wav).max() < SILENCE_PEAK:
        raise AudioError(f"{path}: audio is silent (peak below -90 dBFS)")

    if channels is None and max_channels is not None and wav.shape[0] > max_channels:
        channels = max_channels
    # Downmix before resampling (less to resample), upmix after.
    if channels is not None and channels < wav.shape[0]:
        wav = _convert_channels(path, wav, channels)
    if sample_rate is not None and sample_rate != rate:
        wav, rate = resample(wav, rate, sample_rate), sample_rate
    if channels is not None and channels > wav.shape[0]:
        wav = _convert_channels(path, wav, channels)
    return wav, rate


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample ``(channels, samples)`` (or 1-D) audio with soxr's high-quality (20-bit) filter.

    The output has ``round(samples * target_sr / orig_sr)`` samples and dtype float32; equal
    rates return a float32 copy. Three minutes of stereo take about 0.15 s on one core.
    """
    check_positive_int(orig_sr, "orig_sr")
    check_positive_int(target_sr, "target_sr")
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim not in (1, 2):
        raise ValueError(f"expected audio shaped (samples,) or (channels, samples), "
                         f"got {wav.shape}")
    if orig_sr == target_sr:
        return wav.copy()
    # soxr wants (samples, channels), contiguous.
    out = soxr.resample(np.ascontiguousarray(wav.T), int(orig_sr), int(target_sr), quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def to_channels(wav: np.ndarray, channels: int) -> np.ndarray:
    """Convert ``(channels, samples)`` audio to ``channels`` channels.

    * 1: mean of all channels.
    * from mono: the channel duplicated.
    * 2 from 3-8 channels: ITU-R BS.775 downmix of the default FLAC/WAV layout (FL FR FC LFE BL BR
      SL SR order; centre and surrounds at -3 dB, LFE dropped), scaled so that each output
      channel's coefficients sum to one and the downmix cannot clip.

    Any other conversion raises ``ValueError``. The result is always a new float32 array.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 2:
        raise ValueError(f"expected audio shaped (channels, samples), got {wav.shape}")
    if not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    src = wav.shape[0]
    if src == channels:
        return wav.copy()
    if channels == 1:
        return wav.mean(axis=0, keepdims=True)
    if src == 1:
        return np.repeat(wav, channels, axis=0)
    if channels == 2 and src in _DOWNMIX:
        matrix = np.asarray(_DOWNMIX[src], dtype=np.float32)
        matrix /= matrix.sum(axis=1, keepdims=True)
        return matrix @ wav
    raise ValueError(f"no standard conversion from {src} to {channels} channels")


def fit_length(wav: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad the time axis of ``(channels, samples)`` audio to ``length`` samples
    (a new array of the same dtype)."""
    out = np.zeros((wav.shape[0], length), dtype=wav.dtype)
    n = min(length, wav.shape[1])
    out[:, :n] = wav[:, :n]
    return out


def sanitize(wav: np.ndarray) -> np.ndarray:
    """Return a float32 copy with NaN replaced by 0 and +/-Inf by +/-1."""
    return np.nan_to_num(np.asarray(wav, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)


def loudness_lufs(wav: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of ``(channels, samples)`` audio per ITU-R BS.1770-4.

    K-weighting (torchaudio's shelf and high-pass biquads), 400 ms blocks with 75 % overlap,
    absolute gate at -70 LUFS and relative gate 10 LU below the absolutely gated level; channel
    weights 1.41 for surrounds and 0 for LFE. Unlike torchaudio (whose ``lfilter`` clamps), the
    K-weighted signal is not clipped to [-1, 1]. Audio shorter than one block is measured as a
    single block. Returns ``-inf`` when every block is gated out (silence).
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 2 or wav.shape[1] == 0:
        raise ValueError(f"expected non-empty audio shaped (channels, samples), got {wav.shape}")
    check_positive_int(sample_rate, "sample_rate")
    if wav.shape[0] not in _LOUDNESS_WEIGHTS:
        raise ValueError(f"loudness is defined for 1-8 channels, got {wav.shape[0]}")
    if not np.isfinite(wav).all():
        raise ValueError("audio contains NaN or infinite samples; call sanitize() first")
    weights = np.asarray(_LOUDNESS_WEIGHTS[wav.shape[0]])
    filtered = scipy.signal.sosfilt(_k_weighting(sample_rate), wav, axis=-1)

    step = int(round(int(round(0.4 * sample_rate)) * 0.25))
    block = min(int(round(0.4 * sample_rate)), wav.shape[1])
    # Energies of segments as long as the gcd of block and step (the step itself at the usual
    # rates), then of blocks from a cumulative sum over segments: the overlap costs nothing.
    seg = math.gcd(block, step)
    n_seg, block_seg, step_seg = wav.shape[1] // seg, block // seg, step // seg
    segments = filtered[:, :n_seg * seg].reshape(wav.shape[0], n_seg, seg)
    cumsum = np.zeros((wav.shape[0], n_seg + 1))
    np.cumsum(np.einsum("cns,cns->cn", segments, segments), axis=-1, out=cumsum[:, 1:])
    starts = np.arange(0, n_seg - block_seg + 1, step_seg)
    energy = (cumsum[:, starts + block_seg] - cumsum[:, starts]) / block
    weighted = weights @ energy
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(weighted)
        gated = block_lufs > -70.0
        if not gated.any():
            return -math.inf
        relative = -0.691 + 10 * np.log10(weighted[gated].mean()) - 10.0
        gated &= block_lufs > relative
        return float(-0.691 + 10 * np.log10(weighted[gated].mean()))


def normalize(wav: np.ndarray, sample_rate: int, strategy: str | None = "loudness", *,
              peak_clip_headroom_db: float = 1.0, rms_headroom_db: float = 18.0,
              loudness_headroom_db: float = 14.0, loudness_compressor: bool = False) -> np.ndarray:
    """Normalize levels like audiocraft's ``normalize_audio`` (as called by ``audio_write``).

    Parameters
    ----------
    wav : np.ndarray [shape=(channels, samples)]
        Finite audio (see :func:`sanitize`).
    sample_rate : int
    strategy : {"loudness", "peak", "clip", "rms", None}
        * ``loudness``: gain to ``-loudness_headroom_db`` LUFS (:func:`loudness_lufs`); audio
          whose overall RMS is below 2e-3 keeps its level; then ``tanh`` when
          ``loudness_compressor``; then clamp to [-1, 1].
        * ``peak``: scale so the peak is ``-peak_clip_headroom_db`` dBFS.
        * ``clip``: clamp to +/- ``-peak_clip_headroom_db`` dBFS, no scaling.
        * ``rms``: scale so the channel mean's RMS is ``-rms_headroom_db`` dB, clamp to [-1, 1].
        * ``None`` (or ``"none"``/``""``): unchanged.

    Returns
    -------
    np.ndarray [dtype=float32]
        A new array. Where audiocraft would divide by zero (``peak``/``rms`` of silence,
        ``loudness`` of audio that is all gated out) the level is left unchanged instead of
        producing NaN.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 2:
        raise ValueError(f"expected audio shaped (channels, samples), got {wav.shape}")
    if not np.isfinite(wav).all():
        raise ValueError("audio contains NaN or infinite samples; call sanitize() first")
    if strategy not in _STRATEGIES:
        raise ValueError(f"unknown normalization strategy {strategy!r}; "
                         "expected 'loudness', 'peak', 'clip', 'rms' or None")
    if strategy in (None, "", "none") or wav.size == 0:
        return wav.copy()
    scale_peak = 10 ** (-peak_clip_headroom_db / 20)
    if strategy == "clip":
        return np.clip(wav, -scale_peak, scale_peak)
    if strategy == "peak":
        peak = np.abs(wav).max(initial=0.0)
        return wav * np.float32(scale_peak / peak) if peak > 0 else wav.copy()
    if strategy == "rms":
        rms = math.sqrt(_mean_square(wav.mean(axis=0)))
        gain = 10 ** (-rms_headroom_db / 20) / rms if rms > 0 else 1.0
        return np.clip(wav * np.float32(gain), -1.0, 1.0)
    out = wav.copy()
    if math.sqrt(_mean_square(wav)) >= 2e-3:
        measured = loudness_lufs(wav, sample_rate)
        if math.isfinite(measured):
            out *= np.float32(10 ** ((-loudness_headroom_db - measured) / 20))
        if loudness_compressor:
            np.tanh(out, out=out)
    return np.clip(out, -1.0, 1.0, out=out)


def export_audio(wav: np.ndarray, sample_rate: int, path: str | os.PathLike[str], *,
                 format: str | None = None, strategy: str | None = "loudness",
                 loudness_compressor: bool = False, bit_depth: BitDepth = 16,
                 mp3_bitrate: int = 320) -> Path:
    """Sanitize, normalize and write audio; return the written path.

    Parameters
    ----------
    wav : np.ndarray [shape=(channels, samples)]
        NaN becomes 0 and +/-Inf +/-1 (:func:`sanitize`) before :func:`normalize`.
    sample_rate : int
    path : str or PathLike
        Parent directories are created. The file is written to a temporary name in the same
        directory and renamed into place, so readers never see a partial file.
    format : {"wav", "flac", "mp3"}, optional
        Defaults to the suffix of ``path``.
    strategy, loudness_compressor
        See :func:`normalize`.
    bit_depth : {16, 24, "float"}
        wav: 16/24-bit PCM or 32-bit float; flac: 16 or 24. Ignored for mp3. PCM is clamped to
        [-1, 1] (only ``strategy=None`` can leave louder samples).
    mp3_bitrate : int
        Constant bitrate in kbps: 32-320 for 32/44.1/48 kHz, 8-160 for 8-24 kHz.

    Raises
    ------
    ValueError
        Unknown format, bit depth or bitrate, or audio mp3 cannot hold (rate, >2 channels).
    AudioError
        The encoder or the file system failed.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"{path}: cannot export format {fmt or '(no suffix)'!r}; "
                         f"expected one of {', '.join(EXPORT_FORMATS)}")
    subtype = _check_export(path, fmt, np.shape(wav), sample_rate, bit_depth, mp3_bitrate)
    wav = normalize(sanitize(wav), sample_rate, strategy, loudness_compressor=loudness_compressor)
    if subtype != "FLOAT":
        wav = np.clip(wav, -1.0, 1.0)

    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        if fmt == "mp3":
            _write_mp3(wav, sample_rate, tmp, mp3_bitrate)
        else:
            sf.write(tmp, wav.T, sample_rate, subtype=subtype, format=fmt.upper())
        # mkstemp creates the file private; an exported file is meant to be shared.
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except (av.FFmpegError, sf.LibsndfileError, OSError) as exc:
        raise AudioError(f"{path}: writing {fmt} failed: {exc}") from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class Mp3Settings:
    """A sample rate mp3 can store and a constant bitrate (kbps) legal at that rate."""

    sample_rate: int
    bitrate: int


def mp3_settings(sample_rate: int, bitrate: int = 320) -> Mp3Settings:
    """Where audio at ``sample_rate`` goes in an mp3: the lowest mp3 rate at or above it (48 kHz
    above 48 kHz), and the highest bitrate up to ``bitrate`` legal there.

    >>> mp3_settings(96_000), mp3_settings(8_000)
    (Mp3Settings(sample_rate=48000, bitrate=320), Mp3Settings(sample_rate=8000, bitrate=160))
    """
    rates = sorted(_MP3_BITRATES)
    rate = next((r for r in rates if r >= sample_rate), rates[-1])
    legal = [b for b in _MP3_BITRATES[rate] if b <= bitrate] or [_MP3_BITRATES[rate][0]]
    return Mp3Settings(rate, legal[-1])


def _convert_channels(path: Path, wav: np.ndarray, channels: int) -> np.ndarray:
    try:
        return to_channels(wav, channels)
    except ValueError as exc:
        raise AudioError(f"{path}: {exc}") from None


def _check_rate(rate: int, what: str) -> None:
    if not isinstance(rate, (int, np.integer)) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"{what} {rate!r} Hz is outside the supported "
                         f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")


def _check_file_rate(path: Path, rate: int) -> None:
    try:
        _check_rate(rate, "sample rate")
    except ValueError as exc:
        raise AudioError(f"{path}: {exc}") from None


def _check_duration(path: Path, seconds: float, max_duration: float | None) -> None:
    if max_duration is not None and seconds > max_duration:
        raise AudioError(f"{path}: audio is {_over(seconds, max_duration)} s long, longer than the "
                         f"{max_duration:g} s limit")


def _over(seconds: float, limit: float) -> str:
    """``seconds`` with the fewest decimals (at least one) that show it above ``limit``: a song one
    sample too long reads 600.00002 s, not 600.0 s."""
    for decimals in range(1, 10):
        text = f"{seconds:.{decimals}f}"
        if float(text) > limit:
            return text
    return repr(seconds)


def _check_complete(path: Path, got: int, declared: int | None, rate: int) -> None:
    """Fail when far fewer samples decoded than the header declares: a truncated file.

    The margin (0.1 s or 5 %) absorbs headers that estimate the length, such as MP3 files
    without a Xing/LAME frame.
    """
    if declared and declared - got > max(0.1 * rate, 0.05 * declared):
        raise AudioError(f"{path}: truncated or corrupt: decoded {got / rate:.2f} s of the "
                         f"{declared / rate:.2f} s its header declares")


def _decode_soundfile(path: Path, max_duration: float | None) -> tuple[np.ndarray | None, int]:
    """Decode with libsndfile; ``(None, 0)`` when the format is one PyAV should handle."""
    try:
        handle = sf.SoundFile(path)
    except sf.LibsndfileError:
        return None, 0
    with handle:
        # libsndfile reports a cut Ogg stream as empty; FFmpeg reports the damage.
        if handle.format not in _SOUNDFILE_FORMATS or handle.frames == 0:
            return None, 0
        rate, declared = handle.samplerate, handle.frames
        _check_file_rate(path, rate)
        _check_duration(path, declared / rate, max_duration)
        if handle.format in ("WAV", "WAVEX"):
            missing = _wav_missing_bytes(path)
            if missing:
                raise AudioError(f"{path}: truncated: the WAV header declares {missing} more "
                                 "bytes of audio than the file holds")
        if handle.format == "OGG" and not _ogg_ends_cleanly(path):
            raise AudioError(f"{path}: truncated: the Ogg stream stops before its last page")
        try:
            data = handle.read(dtype="float32", always_2d=True)
        except sf.LibsndfileError as exc:
            raise AudioError(f"{path}: truncated or corrupt audio ({exc.error_string})") from exc
        if handle.format == "OGG" and data.shape[1] in _VORBIS_TO_WAV_ORDER:
            data = data[:, _VORBIS_TO_WAV_ORDER[data.shape[1]]]
    _check_complete(path, data.shape[0], declared, rate)
    return np.ascontiguousarray(data.T), rate


def _wav_missing_bytes(path: Path) -> int:
    """Bytes the RIFF ``data`` chunk declares beyond the end of the file (0 when complete).

    libsndfile silently reads what is there, so a cut-off WAV would otherwise load as a
    shorter song.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        header = fh.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:] != b"WAVE":
            return 0
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, length = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF are placeholders written by streaming encoders.
                return 0 if length in (0, 0xFFFFFFFF) else max(0, pos + 8 + length - size)
            pos += 8 + length + (length & 1)
    return 0


def _ogg_ends_cleanly(path: Path) -> bool:
    """Whether the file ends with a complete Ogg page flagged end-of-stream.

    libvorbisfile decodes a cut stream up to the cut without complaint.
    """
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - _OGG_MAX_PAGE))
        tail = fh.read()
    # The last page is the one whose length, read from its header, ends exactly at the end of
    # the file; "OggS" may also occur inside packet data, hence the search from the end.
    at = tail.rfind(b"OggS")
    while at >= 0:
        if at + 27 <= len(tail):
            n_segments = tail[at + 26]
            lacing = tail[at + 27:at + 27 + n_segments]
            if at + 27 + n_segments + sum(lacing) == len(tail):
                return bool(tail[at + 5] & 0x04)
        at = tail.rfind(b"OggS", 0, at)
    return False


def _decode_av(path: Path, max_duration: float | None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV (FFmpeg)."""
    try:
        container = av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as exc:
        raise _not_audio(path, exc.strerror) from exc
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path}: contains no audio stream")
        stream = container.streams.audio[0]
        rate = stream.sample_rate
        if not rate:  # what FFmpeg makes of noise it was told is, say, mp3
            raise _not_audio(path, "no decodable audio in it")
        _check_file_rate(path, rate)
        frames = container.decode(stream)
        try:
            # FFmpeg reads a sample rate and a length into some noise too: audio is what decodes.
            first = list(itertools.islice(frames, _PROBE_FRAMES))
        except av.FFmpegError as exc:
            raise _not_audio(path, f"no decodable audio in it: {exc.strerror}") from exc
        declared = None
        if stream.duration and stream.time_base:
            declared = round(stream.duration * stream.time_base * rate)
            _check_duration(path, declared / rate, max_duration)
        limit = math.inf if max_duration is None else max_duration * rate
        resampler = av.AudioResampler(format="fltp")
        chunks, total = [], 0
        try:
            for frame in itertools.chain(first, frames):
                for planar in resampler.resample(frame):
                    chunks.append(planar.to_ndarray())
                    total += planar.samples
                if total > limit:
                    _check_duration(path, total / rate, max_duration)
            chunks.extend(planar.to_ndarray() for planar in resampler.resample(None))
        except av.FFmpegError as exc:
            raise AudioError(f"{path}: truncated or corrupt audio ({exc.strerror})") from exc
        frame_size = stream.codec_context.frame_size or 2048
    if not chunks:
        return np.zeros((1, 0), np.float32), rate
    wav = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    # FFmpeg skips an AAC/MP3 encoder's leading delay but not its final padding (at most one
    # codec frame); the container's declared length marks the end.
    if declared and 0 < wav.shape[1] - declared <= frame_size:
        wav = wav[:, :declared]
    _check_complete(path, wav.shape[1], declared, rate)
    return np.ascontiguousarray(wav), rate


def _not_audio(path: Path, why: str) -> AudioError:
    return AudioError(f"{path}: not an audio file, or an unsupported or damaged format ({why})")


def _mean_square(wav: np.ndarray) -> float:
    # BLAS dot: ~10x faster than squaring into a float64 copy, 1e-4 relative error at worst.
    return float(np.vdot(wav, wav)) / wav.size


def _k_weighting(sample_rate: int) -> np.ndarray:
    """BS.1770 K-weighting as two second-order sections (torchaudio's ``Loudness`` biquads)."""
    # High shelf: +4 dB above ~1.5 kHz (RBJ cookbook, as torchaudio.functional.treble_biquad).
    w0 = 2 * math.pi * 1500.0 / sample_rate
    alpha = math.sin(w0) / 2 / (1 / math.sqrt(2))
    a = 10 ** (4.0 / 40)
    t1, t2, t3 = 2 * math.sqrt(a) * alpha, (a - 1) * math.cos(w0), (a + 1) * math.cos(w0)
    shelf = [a * ((a + 1) + t2 + t1), -2 * a * ((a - 1) + t3), a * ((a + 1) + t2 - t1),
             (a + 1) - t2 + t1, 2 * ((a - 1) - t3), (a + 1) - t2 - t1]
    # High pass at 38 Hz, Q 0.5 (torchaudio.functional.highpass_biquad).
    w0 = 2 * math.pi * 38.0 / sample_rate
    alpha = math.sin(w0) / 2 / 0.5
    cos = math.cos(w0)
    highpass = [(1 + cos) / 2, -1 - cos, (1 + cos) / 2, 1 + alpha, -2 * cos, 1 - alpha]
    sos = np.array([shelf, highpass])
    return (sos / sos[:, 3:4]).astype(np.float32)


def _check_export(path: Path, fmt: str, shape: tuple[int, ...], sample_rate: int,
                  bit_depth: BitDepth, mp3_bitrate: int) -> str:
    """Validate an export request; return the soundfile subtype (unused for mp3)."""
    if len(shape) != 2 or 0 in shape:
        raise ValueError(f"{path}: expected non-empty audio shaped (channels, samples), "
                         f"got {shape}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"{path}: sample rate must be a positive integer, got {sample_rate!r}")
    subtypes = {16: "PCM_16", 24: "PCM_24", "float": "FLOAT"}
    if fmt == "flac":
        subtypes.pop("float")
    if bit_depth not in subtypes:
        raise ValueError(f"{path}: bit depth {bit_depth!r} is not available for {fmt}; "
                         f"expected one of {', '.join(map(repr, subtypes))}")
    if fmt != "mp3":
        return subtypes[bit_depth]
    if shape[0] > 2:
        raise ValueError(f"{path}: mp3 holds 1 or 2 channels, got {shape[0]}; "
                         "downmix with to_channels() first")
    if sample_rate not in _MP3_BITRATES:
        raise ValueError(f"{path}: mp3 cannot store {sample_rate} Hz; resample to one of "
                         f"{', '.join(map(str, sorted(_MP3_BITRATES)))} Hz")
    if mp3_bitrate not in _MP3_BITRATES[sample_rate]:
        raise ValueError(f"{path}: {mp3_bitrate!r} kbps is not an mp3 bitrate at {sample_rate} Hz; "
                         f"expected one of {', '.join(map(str, _MP3_BITRATES[sample_rate]))}")
    return ""


def _write_mp3(wav: np.ndarray, sample_rate: int, path: Path, bitrate: int) -> None:
    """Constant-bitrate MP3 via libmp3lame; the muxer adds the Xing/LAME frame that lets
    decoders drop the encoder delay and padding (lameenc writes none: ~30-160 ms of extra audio).
    """
    layout = "mono" if wav.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=sample_rate, layout=layout)
        stream.bit_rate = bitrate * 1000
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wav), format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
