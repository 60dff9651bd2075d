"""How a generated take lines up with its song, told by the audio itself: the take's lag behind the
song, window by window, from the harmony both share.

MusicGen Chord plays the song's chords at the song's times and tempo, so a take matches its song
in harmony, offset by its own start and a slow drift of a few percent. :func:`agreement`
cross-correlates the take's chroma with the song's (its harmony stems) in overlapping windows at
every lag within reach; the result scores any candidate alignment (:meth:`Agreement.score`), and
:meth:`Agreement.track` follows the best lag through the song by dynamic programming (a lag
changes only as fast as a tempo drift can move it), which aligns a take whose beats no tracker
can read (pads, a solo piano, a low-passed bass line).

Chroma alone, not onsets: measured on real recordings (``bench/README.md``), onset envelopes of
a take without percussion rise later than the song's attacks and pulled the lag 45-50 ms late,
while chroma, taken at 11.6 ms hops, changes exactly where the notes do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from remixer.audio import resample

# Chroma at 11.025 kHz, 128-sample hops (11.6 ms): pitch classes need no more than 5.5 kHz, and
# a lag is resolved to a sixth of a 16th note at 200 BPM.
FEATURE_RATE = 11_025
FEATURE_HOP = 128
# Windows of WINDOW seconds of the song every WINDOW_HOP seconds: two bars at 120 BPM hold
# enough chord changes to tell a bar from the next.
WINDOW = 4.0
WINDOW_HOP = 1.0
# A window trimmed at the take's edges (see agreement) is kept while it holds this share of WINDOW.
MIN_WINDOW_SHARE = 0.5
# How far the take may drift from the song per second (MusicGen keeps the prompt's tempo to a
# few percent), and the lags searched at the start.
MAX_DRIFT = 0.03
# A lag within this many frames of the searched range's edge may really lie beyond it.
EDGE_FRAMES = 2


def chroma(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """STFT chroma (12, frames) of the mono mix of ``audio`` (channels, samples), at
    ``FEATURE_RATE / FEATURE_HOP`` frames a second.

    Tuning is taken as standard (A = 440 Hz): both sides are compared with each other, and
    librosa's tuning estimate would cost more than everything else in beat-sync but WSOLA.
    """
    import librosa

    mono = np.asarray(audio, dtype=np.float32).reshape(-1, np.shape(audio)[-1]).mean(axis=0)
    mono = resample(mono, sample_rate, FEATURE_RATE)
    return librosa.feature.chroma_stft(y=mono, sr=FEATURE_RATE, n_fft=1024,
                                       hop_length=FEATURE_HOP, tuning=0.0)


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
        Normalised correlation (-1..1) of the take's chroma with the song's, per window and lag.
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
        return float(np.clip(score, 0.0, 1.0))

    def track(self) -> Track:
        """The best lag at each window centre, following the song by dynamic programming with
        the lag moving at most ``MAX_DRIFT`` seconds per second, refined between frames."""
        step = self.lags[1] - self.lags[0]
        reach = max(1, int(np.ceil(MAX_DRIFT * WINDOW_HOP / step)))
        n, m = self.scores.shape
        if n == 0:
            return Track(np.zeros(0), 0.0, 1.0)
        total = self.scores[0].copy()
        back = np.zeros((n, m), dtype=np.int64)
        moves = np.arange(-reach, reach + 1)
        for w in range(1, n):
            # candidates[k, j]: arriving at lag j from lag j - moves[k].
            candidates = np.full((moves.size, m), -np.inf)
            for k, d in enumerate(moves):
                if d >= 0:
                    candidates[k, d:] = total[:m - d]
                else:
                    candidates[k, :d] = total[-d:]
            best = candidates.argmax(axis=0)
            back[w] = np.arange(m) - moves[best]
            total = candidates[best, np.arange(m)] + self.scores[w]
        path = np.zeros(n, dtype=np.int64)
        path[-1] = int(total.argmax())
        for w in range(n - 1, 0, -1):
            path[w - 1] = back[w, path[w]]
        lags = self.lags[path].astype(np.float64)
        # Parabolic refinement around each chosen frame.
        rows = np.flatnonzero((path > 0) & (path < m - 1))
        a, b, c = (self.scores[rows, path[rows] + k] for k in (-1, 0, 1))
        curve = a - 2 * b + c
        offset = np.where(curve < 0, 0.5 * (a - c) / np.where(curve < 0, curve, -1.0), 0.0)
        lags[rows] += np.clip(offset, -0.5, 0.5) * step
        at_edge = float(np.mean((path <= EDGE_FRAMES) | (path >= m - 1 - EDGE_FRAMES)))
        return Track(lags, float(np.mean(self.scores[np.arange(n), path])), at_edge)


@dataclass(frozen=True)
class Track:
    """The take's lag behind the song along :attr:`Agreement.centres`.

    Attributes
    ----------
    lags : np.ndarray [shape=(W,)]
        Take time minus song time (s) at each window centre.
    score : float
        Mean :meth:`Agreement.score` along the track.
    at_edge : float
        Share of windows whose lag is at the edge of the searched range: the true lag may lie
        beyond it, so such a track is not to be trusted.
    """

    lags: np.ndarray
    score: float
    at_edge: float


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
    take_c, song_c = chroma(take, take_rate), chroma(song, song_rate)
    fps = FEATURE_RATE / FEATURE_HOP
    width = int(round(WINDOW * fps))
    reach = max(1, int(round(max_lag * fps)))
    lag_frames = np.arange(-reach, reach + 1)
    frames = song_c.shape[1]
    starts = (np.arange(0, frames - width + 1, int(round(WINDOW_HOP * fps))) if frames >= width
              else np.zeros(0, dtype=int))
    # Each window keeps only the song frames the take covers at every lag searched: at a lag
    # reaching past the take's start or end the missing frames would count as silence, and the
    # edge windows' lags were pulled towards 0 (44 ms at the end of a late take of pads).
    spans = [(max(start, reach), min(start + width, take_c.shape[1] - reach)) for start in starts]
    spans = [(lo, hi) for lo, hi in spans if hi - lo >= MIN_WINDOW_SHARE * width]
    scores = np.zeros((len(spans), lag_frames.size))
    for i, (lo, hi) in enumerate(spans):
        scores[i] = _normalised_xcorr(song_c, take_c, lo, hi - lo, lag_frames)
    centres = np.array([(lo + hi) / 2 for lo, hi in spans]) / fps
    return Agreement(centres=centres, lags=lag_frames / fps, scores=scores)
