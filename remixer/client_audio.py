"""The audio a client sends (the song to remix, the input audio of a generation), decoded and
checked: torch-free, so the CLI refuses a bad file before the model code loads."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from remixer import audio as audio_io
from remixer.requests import GenerateRequest, InputError

# Generation of a remix's instrumental at less than this is not a song (and no window of chords).
MIN_SONG_SECONDS = 1.0


def load_song(path: Path, max_duration: float) -> tuple[np.ndarray, int]:
    """Decode the song to remix (at most stereo) and refuse one too short to remix."""
    song, rate = _client_audio(path, max_duration)
    if song.shape[1] < MIN_SONG_SECONDS * rate:
        raise InputError(f"{path}: the song lasts {song.shape[1] / rate:.2f} s; "
                         f"at least {MIN_SONG_SECONDS:g} s is needed to remix it")
    return song, rate


def load_clip(request: GenerateRequest, max_duration: float) -> tuple[np.ndarray, int]:
    """Decode ``request.audio`` (at most stereo) and cut its ``audio_start``-``audio_end`` part:
    the samples ``(channels, samples)`` and their rate."""
    wav, rate = _client_audio(request.audio, max_duration)
    total = wav.shape[1] / rate
    end = total if request.audio_end in (None, -1) else min(request.audio_end, total)
    if request.audio_start >= total:
        raise InputError(f"{request.audio}: audio_start {request.audio_start} s is past the end "
                         f"of the audio ({total:.2f} s)")
    piece = wav[:, int(request.audio_start * rate):int(round(end * rate))]
    if piece.shape[1] == 0:
        raise InputError(f"audio_start {request.audio_start} s to audio_end {end} s holds no sample of "
                         f"{request.audio}")
    return piece, rate


def _client_audio(path: Path, max_duration: float) -> tuple[np.ndarray, int]:
    """A file the client sent, decoded; one that cannot be used is the client's error."""
    try:
        return audio_io.load_audio(path, max_duration=max_duration, max_channels=2)
    except audio_io.AudioError as error:
        raise InputError(str(error)) from None
