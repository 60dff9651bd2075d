"""How a generated take lines up with its song, told by the audio itself: the take's lag behind
the song, window by window, from the chroma and onsets the two share.

MusicGen Chord plays the song's chords at the song's times and tempo, so a take matches its song
in harmony (chroma) and in pulse (onsets on the same beat grid), offset by its own start and a
slow drift of a few percent. :func:`agreement` cross-correlates both features of the take with
the song's (its harmony stems) in overlapping windows at every lag within reach; the result
scores any candidate alignment (:meth:`Agreement.score`), and :meth:`Agreement.track` follows
the best lag through the song by dynamic programming (a lag changes only as fast as a tempo
drift can move it), which aligns a take whose beats no tracker can read (pads, a solo piano, a
low-passed bass line).

Onsets are precise but repeat every beat; chroma tells bars and chords apart but changes only
at chord changes: their sum has one peak, at the right beat.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from remixer.audio import resample

# Features at 11.025 kHz, 128-sample hops (11.6 ms): pitch classes need no more than 5.5 kHz,
# and a lag is resolved to a tenth of a 16th note at 200 BPM.
FEATURE_RATE = 11_025
FEATURE_HOP = 128
ONSET_BANDS = 8
# Windows of WINDOW seconds of the song every WINDOW_HOP seconds: two bars at 120 BPM hold
# enough chords and onsets to tell a bar from the next.
WINDOW = 4.0
WINDOW_HOP = 1.0
# How far the take may drift from the song per second (MusicGen keeps the prompt's tempo to a
# few percent), and the lags searched at the start.
MAX_DRIFT = 0.03
# Weight of chroma against onsets in the score.
CHROMA_WEIGHT = 1.0
ONSET_WEIGHT = 1.0


@dataclass(frozen=True)
class Features:
    """Onset envelopes (bands, frames) and chroma (12, frames) at ``FEATURE_RATE / FEATURE_HOP``
    frames per second."""

    onsets: np.ndarray
    chroma: np.ndarray

    @property
    def frames(self) -> int:
        return self.onsets.shape[1]


def features(audio: np.ndarray, sample_rate: int) -> Features:
    """:class:`Features` of the mono mix of ``audio`` (channels, samples)."""
    import librosa

    mono = np.asarray(audio, dtype=np.float32).reshape(-1, np.shape(audio)[-1]).mean(axis=0)
    mono = resample(mono, sample_rate, FEATURE_RATE)
    spectrum = np.abs(librosa.stft(mono, n_fft=1024, hop_length=FEATURE_HOP)) ** 2
    mel = librosa.feature.melspectrogram(S=spectrum, sr=FEATURE_RATE, n_mels=64)
    channels = np.linspace(0, 64, ONSET_BANDS + 1).astype(int)
    onsets = librosa.onset.onset_strength_multi(S=librosa.power_to_db(mel), sr=FEATURE_RATE,
                                                hop_length=FEATURE_HOP, channels=channels)
    chroma = librosa.feature.chroma_stft(S=spectrum, sr=FEATURE_RATE, n_fft=1024, tuning=0.0)
    frames = min(onsets.shape[1], chroma.shape[1])
    return Features(onsets[:, :frames], chroma[:, :frames])


@dataclass(frozen=True)
class Agreement:
    """Cross-correlation of a take's features with its song's, window by window.

    Attributes
    ----------
    centres : np.ndarray [shape=(W,)]
        Song time (s) at the middle of each window.
    lags : np.ndarray [shape=(L,)]
        Take time minus song time (s), every feature frame within reach.
    scores : np.ndarray [shape=(W, L)]
        Normalised correlation of onsets plus ``CHROMA_WEIGHT`` times that of chroma, per window
        and lag (higher: more alike).
    """

    centres: np.ndarray
    lags: np.ndarray
    scores: np.ndarray

    def score(self, take_times: np.ndarray, song_times: np.ndarray) -> float:
        """Mean score of the alignment that puts ``take_times`` on ``song_times`` (pairs, at
        least one), read in each window at the lag the pairs give its centre."""
        if self.centres.size == 0 or take_times.size == 0:
            return 0.0
        lag = np.interp(self.centres, song_times, take_times - song_times)
        inside = (self.centres >= song_times[0] - WINDOW / 2) & (self.centres <= song_times[-1] + WINDOW / 2)
        if not inside.any():
            return 0.0
        index = np.clip(np.round((lag - self.lags[0]) / (self.lags[1] - self.lags[0])).astype(int),
                        0, self.lags.size - 1)
        return float(np.mean(self.scores[np.flatnonzero(inside), index[inside]]))

    @staticmethod
    def confidence(score: float) -> float:
        """A :meth:`score` as a share of a perfect match's, 0..1."""
        return float(np.clip(score / (ONSET_WEIGHT + CHROMA_WEIGHT), 0.0, 1.0))

    def track(self) -> tuple[np.ndarray, float]:
        """The best lag (s) at each window centre, following the song by dynamic programming with
        the lag moving at most ``MAX_DRIFT`` seconds per second, refined between frames; and its
        mean score."""
        step = self.lags[1] - self.lags[0]
        reach = max(1, int(np.ceil(MAX_DRIFT * WINDOW_HOP / step)))
        n, m = self.scores.shape
        total = self.scores[0].copy()
        back = np.zeros((n, m), dtype=np.int64)
        for w in range(1, n):
            best = np.full(m, -np.inf)
            arg = np.zeros(m, dtype=np.int64)
            for d in range(-reach, reach + 1):
                shifted = np.full(m, -np.inf)
                if d >= 0:
                    shifted[d:] = total[:m - d]
                else:
                    shifted[:d] = total[-d:]
                better = shifted > best
                best[better] = shifted[better]
                arg[better] = (np.arange(m) - d)[better]
            total = best + self.scores[w]
            back[w] = arg
        path = np.zeros(n, dtype=np.int64)
        path[-1] = int(total.argmax())
        for w in range(n - 1, 0, -1):
            path[w - 1] = back[w, path[w]]
        lags = self.lags[path].astype(np.float64)
        # Parabolic refinement around each chosen frame.
        inner = (path > 0) & (path < m - 1)
        rows = np.flatnonzero(inner)
        a, b, c = (self.scores[rows, path[rows] + k] for k in (-1, 0, 1))
        curve = a - 2 * b + c
        offset = np.where(curve < 0, 0.5 * (a - c) / np.where(curve < 0, curve, -1.0), 0.0)
        lags[rows] += np.clip(offset, -0.5, 0.5) * step
        return lags, float(np.mean(self.scores[np.arange(n), path]))


def _normalised_xcorr(song: np.ndarray, take: np.ndarray, start: int, width: int,
                      lag_frames: np.ndarray) -> np.ndarray:
    """Normalised correlation of ``song[:, start:start + width]`` with ``take`` at each lag."""
    ref = song[:, start:start + width]
    ref = ref - ref.mean(axis=1, keepdims=True)
    ref_norm = np.linalg.norm(ref)
    out = np.zeros(lag_frames.size)
    if ref_norm < 1e-9:
        return out
    lo, hi = start + lag_frames[0], start + lag_frames[-1] + width
    padded = np.zeros((take.shape[0], hi - lo))
    a, b = max(lo, 0), min(hi, take.shape[1])
    if a < b:
        padded[:, a - lo:b - lo] = take[:, a:b]
    # Sliding windows of the take over every lag, mean-removed, as one matrix product.
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=1)  # (F, L, width)
    sums = windows.sum(axis=2)
    dots = np.einsum("fw,flw->l", ref, windows) - (ref.sum(axis=1) @ sums) / width
    energy = (windows ** 2).sum(axis=(0, 2)) - (sums ** 2).sum(axis=0) / width
    return dots / (ref_norm * np.sqrt(np.maximum(energy, 1e-18)))


def agreement(take: np.ndarray, take_rate: int, song: np.ndarray, song_rate: int, *,
              max_lag: float) -> Agreement:
    """Score every lag within ``max_lag`` seconds of the take behind (or ahead of) the song, in
    windows of ``WINDOW`` seconds of the song (see :class:`Agreement`)."""
    take_f, song_f = features(take, take_rate), features(song, song_rate)
    fps = FEATURE_RATE / FEATURE_HOP
    width = int(round(WINDOW * fps))
    reach = int(round(max_lag * fps))
    lag_frames = np.arange(-reach, reach + 1)
    starts = np.arange(0, max(song_f.frames - width, 0) + 1, int(round(WINDOW_HOP * fps)))
    if song_f.frames < width:
        starts = np.zeros(0, dtype=int)
    scores = np.zeros((starts.size, lag_frames.size))
    for i, start in enumerate(starts):
        scores[i] = (ONSET_WEIGHT * _normalised_xcorr(song_f.onsets, take_f.onsets, start, width, lag_frames)
                     + CHROMA_WEIGHT * _normalised_xcorr(song_f.chroma, take_f.chroma, start, width,
                                                         lag_frames))
    return Agreement(centres=(starts + width / 2) / fps, lags=lag_frames / fps, scores=scores)
