"""Quality of the remix chain on synthesized songs whose chords and downbeats are known, and of
beat-sync on real recordings.

**Synthesized songs.**

For each case (tempo, meter, length) a :func:`devtools.synth.demo_song` is written to a wav file
and remixed by the product's own stages, with two stand-ins that make the result checkable:

* **separation** returns the synth's known stems (drums, bass, other, vocals): the
  tiny random htdemucs available offline separates nothing meaningful;
* **generation** returns a known re-timing of the accompaniment (:func:`devtools.synth.retimed`
  at 32 kHz, no vocals, its tempo drifting from ``drift[0]`` to ``drift[1]`` times the song's
  and its first downbeat moved), the way MusicGen's take drifts off the prompt's tempo.

Everything else is real: decoding, madmom beat/downbeat analysis of the song and of the take
(madmom's pretrained models ship with the package; the take with the song's tempo and bar length
as priors), beat-sync (bar phase, downbeat and beat matching + WSOLA), the mix and the
loudness-normalised export. Reported per song:

* downbeat alignment error after sync, (a) **re-detected**: madmom run again on the synced
  instrumental, each true song downbeat against the nearest detected one (a true downbeat with
  none within half a beat counts as missed); (b) **known warp**: the take's true downbeats
  mapped through the warp map beat-sync applied, against the song's true downbeats (bar k to
  bar k). The song's own analysis error is shown beside them: it is the detector's floor;
* chord accuracy (mir_eval ``majmin``, time-weighted) of madmom's CNN+CRF chord recogniser on
  the chord source (vocals + bass + other), and of BTC when verified real BTC weights are in the weights
  cache (``REMIXER_WEIGHTS_DIR``; random test weights would measure nothing);
* vocal preservation: the exported remix is fitted by least squares as ``a·instrumental +
  b·vocals`` per channel; the correlation of ``remix − a·instrumental`` with the input vocals;
* loudness of the exported remix (LUFS, :func:`remixer.audio.loudness_lufs`).

**Real recordings** (``REAL_CASES``): 30 s excerpts of freely licensed game soundtracks that
`bench.recordings` fetches from Debian packages into a cache outside the repository (skipped,
saying why, where that is impossible). Each excerpt plays the song; its stand-in takes are the
excerpt played at a known piecewise tempo drift (``DRIFT``, +-2 %) starting ``TAKE_OFFSET``
(0.23 s) into it, at 32 kHz: **full**; **sparse**, low-passed at 250 Hz (kick and bass only, the
half-time feel that makes a tracker read half tempo); **hats**, a hi-hat added on every off-beat
(a double-time feel); **phase**, the full take with the tracker's bar labels moved two beats (it
put "1" on "3"). Each is synced **before** (the chain as it was: the take analysed blind, synced
on downbeats only) and **after** (the product's chain, :func:`sync_take`). The judge is
independent of our tracker, which may misread the output as it misread the take: at each of the
excerpt's downbeats found by madmom's own stock processors, the lag that best aligns librosa's
onset envelopes (16 mel bands) of the synced output with those of what the take plays on the
excerpt's time line (:func:`stand_in_source`), over +-4 s windows and lags up to +-1 s. Where
a take repeats itself every beat (a bass line on one root, chord stabs) that judge can score a
one-beat lag as high as none; the **warp map** column is exact instead: the take's timing is
known, so at each of those downbeats the warp map, read back to the take, tells which moment of
the excerpt the output plays there (:func:`warp_errors_ms`; edges included, WSOLA's own
placement not seen). Reported: |error| median and p95 per take and pooled, the share of takes
whose median is within 20 ms, the worst take.

Usage: ``python bench/quality.py [--reduced] [--no-chords] [--only synth|real]``. ``--reduced``
(CI) runs 3 songs of 20 s, the full set 6 songs of 45 s (90/120/140 BPM in 3/4 and 4/4); the real
set is 22 excerpts x 6 takes (one thread, ~2-4 min per excerpt on a busy 2-core machine). Targets:
synthesized, median alignment error after sync <= 20 ms; real, median <= 10 ms, p95 <= 40 ms,
no take more than 100 ms off, every take warped. ``--no-before`` skips the chain before issue 12. Writes only to a temporary directory and the recordings cache.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import typing as tp
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import mir_eval  # noqa: E402
import numpy as np  # noqa: E402

from bench.recordings import Excerpt, RecordingsUnavailable, cut, recording  # noqa: E402
from btc.labels import ChordSegment, normalize_label  # noqa: E402
from devtools.synth import SynthSong, demo_song, retimed  # noqa: E402
from remixer import audio as audio_io  # noqa: E402
from remixer.analysis import Analyzer  # noqa: E402
from remixer.analysis.madmom import MADMOM_SAMPLE_RATE, MadmomAnalyzer  # noqa: E402
from remixer.beats import Beats, TempoPrior  # noqa: E402
from remixer.beatsync import FALLBACK_THRESHOLD, SyncResult, beat_sync, default_threshold  # noqa: E402
from remixer.mixing import mix  # noqa: E402
from remixer.separation import Stems  # noqa: E402

GENERATION_RATE = 32_000  # MusicGen's output rate


class ChordModel(tp.Protocol):
    def recognize(self, wav: np.ndarray, sample_rate: int) -> list[ChordSegment]: ...


@dataclass(frozen=True)
class Case:
    """One song of the set and how its stand-in generated take drifts."""

    bpm: float
    beats_per_bar: int
    seconds: float
    drift: tuple[float, float] = (0.97, 1.02)
    take_first_downbeat: float = 0.3
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.bpm:g} BPM {self.beats_per_bar}/4 {self.seconds:g} s"


REDUCED = (Case(90, 4, 20.0), Case(120, 3, 20.0), Case(140, 4, 20.0))
FULL = tuple(Case(bpm, meter, 45.0) for bpm in (90, 120, 140) for meter in (3, 4))


@dataclass(frozen=True)
class ChordScore:
    model: str
    majmin: float


@dataclass(frozen=True)
class SongQuality:
    """Measurements of one case; errors are signed milliseconds (detected/moved − true)."""

    case: Case
    aligned_ms: np.ndarray
    warp_ms: np.ndarray
    missed: int
    analysis_ms: np.ndarray
    chords: tuple[ChordScore, ...]
    vocal_correlation: float
    lufs: float
    sync: str
    seconds: float


class MadmomChords:
    """madmom's CNN chord features + CRF decoder (its shipped pretrained models), 25 classes."""

    def __init__(self) -> None:
        from madmom.features.chords import CNNChordFeatureProcessor, CRFChordRecognitionProcessor

        self._features = CNNChordFeatureProcessor()
        self._decode = CRFChordRecognitionProcessor()

    def recognize(self, wav: np.ndarray, sample_rate: int) -> list[ChordSegment]:
        from madmom.audio.signal import Signal

        mono = audio_io.resample(wav.mean(axis=0), sample_rate, 44_100)
        segments = self._decode(self._features(Signal(mono, sample_rate=44_100)))
        return [ChordSegment(float(start), float(end), normalize_label(str(label)))
                for start, end, label in segments]


def real_btc(weights_dir: str | None = None) -> tp.Any:
    """BTC (170 classes) from the weights cache if its verified real file is there, else None."""
    from btc.recognizer import ChordRecognizer
    from remixer.weights import WeightsError, WeightsStore

    try:
        path = WeightsStore(weights_dir, offline=True).path("btc-model-large-voca")
    except WeightsError:
        return None
    return ChordRecognizer.from_checkpoint(path)


def known_stems(song: SynthSong) -> Stems:
    """The synth's stems (htdemucs' four, by name) as a stereo separation output."""
    stereo = {name: np.ascontiguousarray(np.broadcast_to(stem, (2, stem.shape[1])))
              for name, stem in song.stems.items()}
    return Stems(**stereo, sample_rate=song.sample_rate)


def generated_take(song: SynthSong, case: Case) -> SynthSong:
    """The stand-in for MusicGen's output: the accompaniment on a drifting tempo, at 32 kHz."""
    bpm = song.tempo_curve[0]
    return retimed(song, (bpm * case.drift[0], bpm * case.drift[1]), vocals=False,
                   sample_rate=GENERATION_RATE, first_downbeat=case.take_first_downbeat)


def nearest_errors_ms(truth: np.ndarray, detected: np.ndarray,
                      tolerance: float) -> tuple[np.ndarray, int]:
    """Nearest detected minus truth, in ms, for truths with a detection within ``tolerance``
    seconds, and how many truths had none."""
    if detected.size == 0:
        return np.zeros(0), truth.size
    nearest = detected[np.abs(truth[:, None] - detected[None, :]).argmin(axis=1)]
    hit = np.abs(nearest - truth) <= tolerance
    return 1000 * (nearest - truth)[hit], int((~hit).sum())


def chord_majmin(truth: list[ChordSegment], estimate: list[ChordSegment]) -> float:
    """Time-weighted ``majmin`` accuracy (mir_eval) of ``estimate`` against ``truth``."""
    ref_intervals = np.array([[s.start, s.end] for s in truth])
    est_intervals = np.array([[s.start, s.end] for s in estimate])
    scores = mir_eval.chord.evaluate(ref_intervals, [s.label for s in truth], est_intervals,
                                     [s.label for s in estimate])
    return float(scores["majmin"])


def vocal_correlation(output: np.ndarray, instrumental: np.ndarray, vocals: np.ndarray) -> float:
    """Correlation of ``output − a·instrumental`` with ``vocals``, ``a`` fitted per channel
    jointly with a vocal gain by least squares (so neither gain biases the other)."""
    residual = np.empty_like(output, dtype=np.float64)
    for c in range(output.shape[0]):
        design = np.stack([instrumental[c], vocals[c]], axis=1).astype(np.float64)
        (a, _), *_ = np.linalg.lstsq(design, output[c].astype(np.float64), rcond=None)
        residual[c] = output[c] - a * instrumental[c]
    return float(np.corrcoef(residual.ravel(), vocals.ravel().astype(np.float64))[0, 1])


def evaluate(case: Case, analyzer: Analyzer, workdir: Path,
             chord_models: tp.Sequence[tuple[str, ChordModel]] = ()) -> SongQuality:
    """Remix ``case``'s song with the stand-ins above and measure the result."""
    start_time = time.perf_counter()
    truth = demo_song(case.seconds, case.bpm, case.beats_per_bar, seed=case.seed)
    path = audio_io.export_audio(truth.audio, truth.sample_rate, workdir / "song.wav",
                                 strategy=None)
    song, rate = audio_io.load_audio(path)
    stems = known_stems(truth)
    chords = tuple(ChordScore(name, chord_majmin(truth.chords,
                                                 model.recognize(stems.chord_source, rate)))
                   for name, model in chord_models)
    beats = analyzer.analyze(song, rate, stems=stems)

    take = generated_take(truth, case)
    out_rate = max(rate, take.sample_rate)
    instrumental = audio_io.resample(take.audio, take.sample_rate, out_rate)
    out_length = int(round(song.shape[1] / rate * out_rate))
    synced = sync_take(instrumental, out_rate, beats, out_length, analyzer,
                       (stems.chord_source, rate))
    vocals = audio_io.to_channels(audio_io.resample(stems.vocals, rate, out_rate),
                                  synced.audio.shape[0])
    mixed = mix(synced.audio, vocals, out_rate)
    remix_path = audio_io.export_audio(mixed.audio, out_rate, workdir / "remix.wav",
                                       strategy="loudness", loudness_compressor=True)
    remix, _ = audio_io.load_audio(remix_path)

    beat = 60.0 / case.bpm
    bars = min(len(truth.downbeats), len(take.downbeats))
    targets = truth.downbeats[:bars]
    aligned, missed = nearest_errors_ms(targets, analyzer.analyze(synced.audio, out_rate).downbeats,
                                        beat / 2)
    if synced.warped:
        moved = np.interp(take.downbeats[:bars] * out_rate, synced.anchors[0],
                          synced.anchors[1]) / out_rate
    else:
        moved = take.downbeats[:bars]
    analysis, _ = nearest_errors_ms(truth.downbeats, beats.downbeats, beat / 2)
    fitted = np.zeros_like(synced.audio)
    fitted[:, :min(out_length, vocals.shape[1])] = vocals[:, :out_length]
    return SongQuality(case=case, aligned_ms=aligned, warp_ms=1000 * (moved - targets),
                       missed=missed, analysis_ms=analysis, chords=chords,
                       vocal_correlation=vocal_correlation(remix, synced.audio, fitted),
                       lufs=audio_io.loudness_lufs(remix, out_rate), sync=synced.reason,
                       seconds=time.perf_counter() - start_time)


def sync_take(instrumental: np.ndarray, rate: int, song_beats: Beats, out_length: int,
              analyzer: Analyzer, harmony: tuple[np.ndarray, int], *, informed: bool = True,
              misread: tp.Callable[[Beats], Beats] | None = None) -> SyncResult:
    """Analyse a take and beat-sync it to the song, as ``Pipeline.remix`` does.

    ``harmony`` is the song's bass + other and its rate. ``informed=False`` is the chain before
    issue 12: the take analysed blind and synced on downbeats only. ``misread`` alters the
    take's analysis (a stand-in for a tracker error).
    """
    prior = TempoPrior.of(song_beats) if informed else None
    if informed:  # the product reads a take at full scale
        take_beats = analyzer.analyze(audio_io.normalize(instrumental, rate, "peak"), rate, prior=prior)
    else:
        take_beats = analyzer.analyze(instrumental, rate)
    if misread is not None:
        take_beats = misread(take_beats)
    threshold = default_threshold(song_beats.bpm)
    beats = dict(generated_beats=take_beats.beats, reference_beats=song_beats.beats,
                 reference_audio=harmony, reach=max(threshold, FALLBACK_THRESHOLD)) if informed else {}
    return beat_sync(instrumental, rate, take_beats.downbeats, song_beats.downbeats, out_length,
                     threshold=threshold, **beats)


# --- Real recordings ------------------------------------------------------------------------

@dataclass(frozen=True)
class RealCase:
    """An excerpt of a recording from `bench.recordings`: name, start and length in seconds."""

    recording: str
    start: float
    seconds: float = 30.0


# Excerpts with a steady pulse (madmom's tracker confident on them), 70-200 BPM, 3/4 and 4/4: the
# first six from the four packages the set began with, then sixteen from ten more packages (fast
# metal and hard rock, electronic, chiptune, tracker modules, four pieces without drums, a 3/4
# waltz and a fast triple metre), the choice and tempi checked in bench/README.md.
REAL_CASES = (
    RealCase("drascula-music/track22", 15.0),
    RealCase("hyperrogue-music/hr3-desert", 20.0),
    RealCase("drascula-music/track1", 20.0),
    RealCase("fb-music-high/frozen-mainzik-2p", 20.0),
    RealCase("singularity-music/Inevitable", 20.0),
    RealCase("hyperrogue-music/hr3-motion", 20.0),
    RealCase("fretsonfire-songs-muldjord/armygeddon/song", 40.0),  # metal, 170
    RealCase("fretsonfire-songs-muldjord/mutilated_mime/song", 25.0),  # metal, 180
    RealCase("fretsonfire-songs-sectoid/Metal madness/song", 45.0),  # hard rock, 150
    RealCase("fretsonfire-songs-sectoid/War of freedom/song", 55.0),  # hard rock, 140
    RealCase("colobot-common-sounds/Proton", 40.0),  # electronic, 200
    RealCase("seahorse-adventures/title", 20.0),  # chiptune, 186
    RealCase("torus-trooper-data/tt2", 0.0),  # electronic, 160
    RealCase("amoebax-data/K.QuitaBackground", 30.0),  # electronic, 170
    RealCase("lincity-ng-data/02 - Robert van Herk - City Blues", 5.0),  # blues on keys, 70
    RealCase("pingus-data/pingus-6", 30.0),  # tracker module, 83 (165 on its grid)
    RealCase("extremetuxracer-data/calmrace-ks", 10.0),  # plucked and mallets, 88
    RealCase("pingus-data/pingus-5", 20.0),  # tracker module, 90
    RealCase("colobot-common-sounds/Constructive", 40.0),  # pads and arpeggio, 130
    RealCase("colobot-common-sounds/Hv2", 0.0),  # synth chord stabs, 115
    RealCase("trackballs-data/tb_sorrow", 30.0),  # waltz, 3/4, 120
    RealCase("extremetuxracer-data/freezingpoint", 10.0),  # fast triple metre, 180
)
# Stand-in takes: "full" = the excerpt drifting and offset; "sparse" = the same low-passed at
# SPARSE_CUTOFF Hz (kick and bass only, a half-time feel); "hats" = the same plus a hi-hat on
# every off-beat (a double-time feel); "phase" = "full" with the tracker's bar labels moved
# two beats (it put "1" on "3"); "harmonic" = the harmonic part of an HPSS split (no
# percussion at all, like a take for "string quartet"); "quiet" = "sparse" QUIET_DB down.
TAKE_KINDS = ("full", "sparse", "hats", "phase", "harmonic", "quiet")
# Piecewise-constant tempo of the take relative to the excerpt, each for DRIFT_SEGMENT seconds.
DRIFT = (1.0, 1.02, 0.985, 1.015, 0.98)
DRIFT_SEGMENT = 6.0
# The take starts this far into the excerpt: every event of it comes 0.23 s early.
TAKE_OFFSET = 0.23
SPARSE_CUTOFF = 250.0
# HPSS margin of the "harmonic" take: what is left is well clear of every percussive component.
HARMONIC_MARGIN = 3.0
QUIET_DB = -30.0
# Judge: onset envelopes at 2.9 ms hops, compared over +-JUDGE_WINDOW s around each downbeat at
# lags up to +-JUDGE_MAX_LAG s (half a bar at 80 BPM: a phase error must stay measurable).
JUDGE_HOP = 128
JUDGE_WINDOW = 4.0
JUDGE_MAX_LAG = 1.0
JUDGE_BANDS = 16
WITHIN_MS = 20.0


@dataclass(frozen=True)
class RealQuality:
    """One stand-in take of one excerpt: downbeat errors (ms, signed, + = late) before/after."""

    excerpt: str
    kind: str
    bpm: float | None
    beats_per_bar: int | None
    before_ms: np.ndarray
    after_ms: np.ndarray
    warp_ms: np.ndarray
    before: str
    after: str
    seconds: float


def take_source_times(length: int, rate: int) -> np.ndarray:
    """Excerpt time (s) played at each of ``length`` take samples: DRIFT from TAKE_OFFSET."""
    speed = np.asarray(DRIFT)[(np.arange(length) / rate // DRIFT_SEGMENT).astype(int) % len(DRIFT)]
    return TAKE_OFFSET + np.concatenate([[0.0], np.cumsum(speed[:-1])]) / rate


def stand_in_source(excerpt: Excerpt, kind: str, source_beats: np.ndarray) -> np.ndarray:
    """What the take of ``kind`` plays, on the excerpt's own time line and at its rate: the
    excerpt, low-passed ("sparse"; "quiet" also QUIET_DB down), its harmonic part ("harmonic")
    or with a hi-hat between each two of ``source_beats`` ("hats"). The synced output is judged
    against it."""
    from scipy.signal import butter, sosfiltfilt

    rate = excerpt.sample_rate
    source = excerpt.audio.astype(np.float64)
    if kind in ("sparse", "quiet"):
        source = sosfiltfilt(butter(4, SPARSE_CUTOFF, fs=rate, output="sos"), source)
        if kind == "quiet":
            source *= 10 ** (QUIET_DB / 20)
    elif kind == "harmonic":
        import librosa

        source = librosa.effects.harmonic(source, margin=HARMONIC_MARGIN)
    elif kind == "hats":
        rng = np.random.default_rng(0)
        burst = np.diff(rng.standard_normal(int(0.02 * rate)), prepend=0.0)
        burst *= np.exp(-np.arange(burst.size) / (0.004 * rate))
        burst *= 0.5 * np.abs(source).max() / np.abs(burst).max()
        for t in (source_beats[1:] + source_beats[:-1]) / 2:
            start = int(round(t * rate))
            if start + burst.size <= source.shape[1]:
                source[:, start:start + burst.size] += burst
    elif kind not in ("full", "phase"):
        raise ValueError(f"unknown take kind {kind!r}; choose from {TAKE_KINDS}")
    return source.astype(np.float32)


def stand_in_take(source: np.ndarray, rate: int) -> np.ndarray:
    """The "generated" take: ``source`` played along :func:`take_source_times` at MusicGen's
    32 kHz (variable speed by linear interpolation), as long as it, silent past its end."""
    source = audio_io.resample(source, rate, GENERATION_RATE)
    length = source.shape[1]
    times = take_source_times(length, GENERATION_RATE)
    positions = np.arange(length) / GENERATION_RATE
    return np.stack([np.interp(times, positions, channel, right=0.0)
                     for channel in source]).astype(np.float32)


def misread_bar_phase(beats: Beats, by: int = 2) -> Beats:
    """``beats`` with every bar label moved ``by`` beats: what a tracker that put "1" on
    "1 + by" reports."""
    if beats.empty:
        return beats
    bar = int(beats.beat_positions.max())
    positions = (beats.beat_positions - 1 - by) % bar + 1
    return Beats(bpm=beats.bpm, beats=beats.beats, downbeats=beats.beats[positions == 1],
                 beat_positions=positions, backend=beats.backend)


def stock_madmom(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Beats and downbeats by madmom's own processors (RNNDownBeatProcessor + its DBN, 3/4 and
    4/4), independent of our batched network, priors and decoding."""
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    mono = audio_io.resample(audio.mean(axis=0), rate, MADMOM_SAMPLE_RATE)
    decoded = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)(
        RNNDownBeatProcessor()(mono))
    return decoded[:, 0], decoded[decoded[:, 1] == 1, 0]


def warp_errors_ms(result: SyncResult, rate: int, downbeats: np.ndarray) -> np.ndarray:
    """At each of the excerpt's ``downbeats``, how late (ms) the synced output plays that
    moment of the excerpt: the warp map read back to the take's time, then the take's known
    timing (:func:`take_source_times`). Exact, no detector involved, edges included; WSOLA's
    own placement (within its search tolerance) is not seen: the onset judge hears that."""
    take_time = (np.interp(downbeats * rate, result.anchors[1], result.anchors[0]) / rate
                 if result.warped else downbeats)
    span = int(np.ceil((max(take_time.max(initial=0.0), 0.0) + 1.0) * rate))
    played = np.interp(take_time * rate, np.arange(span), take_source_times(span, rate))
    return 1000 * (downbeats - played)


def onset_envelope(audio: np.ndarray, rate: int) -> np.ndarray:
    """librosa's spectral-flux onset strength of the mono mix at JUDGE_HOP-sample hops, in
    JUDGE_BANDS mel bands (bands, frames): one envelope of the whole mix repeats every beat
    of a steady groove and lets a one-beat lag score as well as none."""
    import librosa

    channels = np.linspace(0, 128, JUDGE_BANDS + 1).astype(int)
    return librosa.onset.onset_strength_multi(y=audio.mean(axis=0), sr=rate, n_mels=128,
                                              hop_length=JUDGE_HOP, channels=channels)


def downbeat_lags_ms(output: np.ndarray, source: np.ndarray, rate: int,
                     downbeats: np.ndarray) -> np.ndarray:
    """At each downbeat, the lag (ms, + = output late) that best aligns the onset envelope of
    ``output`` with that of ``source`` (normalised cross-correlation, parabolic peak).

    Independent of our beat tracking: a tracker that reads the take at another tempo octave
    may read the output so too, this compares the audio itself with the known original.
    """
    fps = rate / JUDGE_HOP
    out_env, src_env = onset_envelope(output, rate), onset_envelope(source, rate)
    half, max_lag = int(JUDGE_WINDOW * fps), int(JUDGE_MAX_LAG * fps)
    frames = min(out_env.shape[1], src_env.shape[1])
    lags = []
    for t in downbeats:
        centre = int(round(t * fps))
        if centre - half - max_lag < 0 or centre + half + max_lag > frames:
            continue
        reference = src_env[:, centre - half:centre + half]
        reference = reference - reference.mean(axis=1, keepdims=True)
        scores = np.empty(2 * max_lag + 1)
        for i, lag in enumerate(range(-max_lag, max_lag + 1)):
            window = out_env[:, centre - half + lag:centre + half + lag]
            window = window - window.mean(axis=1, keepdims=True)
            scores[i] = np.sum(reference * window) / (np.linalg.norm(reference)
                                                      * np.linalg.norm(window) + 1e-12)
        best = int(scores.argmax())
        offset = 0.0
        if 0 < best < scores.size - 1:
            a, b, c = scores[best - 1:best + 2]
            offset = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
        lags.append(1000 * (best - max_lag + offset) / fps)
    return np.array(lags)


def evaluate_recording(case: RealCase, analyzer: Analyzer,
                       kinds: tp.Sequence[str] = TAKE_KINDS, *,
                       before: bool = True) -> list[RealQuality]:
    """Sync every stand-in take of ``case``'s excerpt, before (unless ``before`` is False) and
    after issue 12, and judge."""
    excerpt = cut(recording(case.recording), case.start, case.seconds)
    rate = excerpt.sample_rate
    song_beats = analyzer.analyze(excerpt.audio, rate)
    source_beats, judged_downbeats = stock_madmom(excerpt.audio, rate)
    prior = TempoPrior.of(song_beats)
    results = []
    for kind in kinds:
        start_time = time.perf_counter()
        source = stand_in_source(excerpt, kind, source_beats)
        take = stand_in_take(source, rate)
        out_rate = max(rate, GENERATION_RATE)
        instrumental = audio_io.resample(take, GENERATION_RATE, out_rate)
        out_length = int(round(excerpt.seconds * out_rate))
        misread = misread_bar_phase if kind == "phase" else None
        # The excerpt is the stand-ins' whole song: no vocals to leave out of the harmony.
        synced = {informed: sync_take(instrumental, out_rate, song_beats, out_length, analyzer,
                                      (excerpt.audio, rate), informed=informed, misread=misread)
                  for informed in ((False, True) if before else (True,))}
        errors = {informed: downbeat_lags_ms(audio_io.resample(result.audio, out_rate, rate),
                                             source, rate, judged_downbeats)
                  for informed, result in synced.items()}
        results.append(RealQuality(
            excerpt=excerpt.name, kind=kind, bpm=song_beats.bpm,
            beats_per_bar=None if prior is None else prior.beats_per_bar,
            before_ms=errors.get(False, np.zeros(0)), after_ms=errors[True],
            warp_ms=warp_errors_ms(synced[True], out_rate, judged_downbeats),
            before=synced[False].reason if before else "not run",
            after=synced[True].reason, seconds=time.perf_counter() - start_time))
    return results


def _take_median(errors: np.ndarray) -> float:
    return float(np.median(np.abs(errors))) if errors.size else float("inf")


def real_summary(results: tp.Sequence[RealQuality], field: str) -> dict[str, float]:
    """Pooled |downbeat error| median and p95 (ms), the share of takes whose median is within
    WITHIN_MS, and the worst take's median."""
    pooled = np.abs(np.concatenate([getattr(r, field) for r in results]))
    medians = [_take_median(getattr(r, field)) for r in results]
    return {"median": float(np.median(pooled)), "p95": float(np.percentile(pooled, 95)),
            "within": float(np.mean([m <= WITHIN_MS for m in medians])), "worst": max(medians)}


def report_real(results: tp.Sequence[RealQuality]) -> str:
    """One row per take (|error| median / p95 in ms, before and after), then the summary."""
    head = (f"{'excerpt':<42} {'take':<8} {'BPM':>5} {'bar':>3} {'before med/p95':>15} "
            f"{'after med/p95':>15} {'warp med/max':>15}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.excerpt:<42} {r.kind:<8} {r.bpm or 0:>5.0f} {r.beats_per_bar or 0:>3} "
                     f"{_stats(r.before_ms):>15} {_stats(r.after_ms):>15} "
                     f"{_stats(r.warp_ms, 100):>15}")
    lines.append("-" * len(head))
    for field, name in (("after_ms", "after (heard)"), ("warp_ms", "warp map")):
        lines.append(f"{name}, per package and take kind: |error| median / p95 ms (takes)")
        for package in dict.fromkeys(r.excerpt.split("/")[0] for r in results):
            cells = []
            for kind in dict.fromkeys(r.kind for r in results):
                mine = [getattr(r, field) for r in results
                        if r.kind == kind and r.excerpt.startswith(package + "/")]
                cells.append(f"{kind} {_stats(np.concatenate(mine)).strip()} ({len(mine)})"
                             if mine else "")
            lines.append(f"  {package:<28} " + "; ".join(c for c in cells if c))
    lines.append("-" * len(head))
    for field, name in (("before_ms", "before"), ("after_ms", "after"), ("warp_ms", "warp")):
        if not any(getattr(r, field).size for r in results):
            continue
        summary = real_summary(results, field)
        lines.append(f"{name:<7} median {summary['median']:6.1f} ms, p95 {summary['p95']:6.1f} ms, "
                     f"{100 * summary['within']:5.1f} % of takes within {WITHIN_MS:g} ms, "
                     f"worst take {summary['worst']:6.1f} ms")
    return "\n".join(lines)


def _stats(values: np.ndarray, percentile: float = 95) -> str:
    """Median and ``percentile`` (95th; 100: the largest) of the absolute errors."""
    if values.size == 0:
        return "     -      -"
    return f"{np.median(np.abs(values)):6.1f} {np.percentile(np.abs(values), percentile):6.1f}"


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else float("nan")


def lead_ms(result: SongQuality) -> float:
    """Median signed shift of the synced downbeats beyond the detector's own bias on the song:
    negative = the synced instrumental plays early."""
    return _median(result.aligned_ms) - _median(result.analysis_ms)


def report(results: tp.Sequence[SongQuality]) -> str:
    """The table: one row per song, then all songs pooled (errors: |median| and |p95| in ms)."""
    models = [score.model for score in results[0].chords]
    head = (f"{'song':<20} {'aligned med/p95':>15} {'warp med/p95':>14} {'miss':>4} "
            f"{'analysis':>8} {'lead':>6}" + "".join(f" {'chords ' + m:>13}" for m in models)
            + f" {'vocal r':>8} {'LUFS':>6} {'time':>5}")

    def row(name: str, rs: tp.Sequence[SongQuality], seconds: str) -> str:
        pooled = {field: np.concatenate([getattr(r, field) for r in rs])
                  for field in ("aligned_ms", "warp_ms", "analysis_ms")}
        chords = "".join(f" {np.mean([r.chords[i].majmin for r in rs]):>13.3f}"
                         for i in range(len(models)))
        return (f"{name:<20} {_stats(pooled['aligned_ms']):>15} {_stats(pooled['warp_ms']):>14} "
                f"{sum(r.missed for r in rs):>4} {_median(np.abs(pooled['analysis_ms'])):>8.1f} "
                f"{np.median([lead_ms(r) for r in rs]):>6.1f}{chords} "
                f"{min(r.vocal_correlation for r in rs):>8.4f} "
                f"{np.median([r.lufs for r in rs]):>6.1f} {seconds:>5}")

    lines = [head, "-" * len(head)]
    lines += [row(r.case.name, [r], f"{r.seconds:.0f}s") for r in results]
    lines += ["-" * len(head), row("all (vocal r: min)", results, "")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="3 songs of 20 s (CI, < 3 min)")
    parser.add_argument("--no-chords", action="store_true", help="skip chord accuracy")
    parser.add_argument("--only", choices=("synth", "real"), default=None,
                        help="run only the synthesized songs or only the real recordings")
    parser.add_argument("--no-before", action="store_true",
                        help="real recordings: skip the chain before issue 12 (half the time)")
    args = parser.parse_args()
    analyzer = MadmomAnalyzer()
    if args.only != "real":
        run_synthesized(REDUCED if args.reduced else FULL, analyzer, chords=not args.no_chords)
    if args.only != "synth":
        run_real(REAL_CASES, analyzer, before=not args.no_before)


def run_synthesized(cases: tp.Sequence[Case], analyzer: Analyzer, *, chords: bool) -> None:
    chord_models: list[tuple[str, ChordModel]] = []
    if chords:
        chord_models.append(("madmom", MadmomChords()))
        btc = real_btc()
        if btc is None:
            print("BTC chord accuracy skipped: no verified real BTC weights in the weights cache")
        else:
            chord_models.append(("btc", btc))
    print("Separation = the synth's known stems (the offline tiny htdemucs is random); "
          "generation = a known re-timing of the accompaniment. Analysis (madmom, pretrained), "
          "beat-sync, mix and export are the product's.")
    results = []
    with tempfile.TemporaryDirectory(prefix="remixer-quality-") as tmp:
        for case in cases:
            results.append(evaluate(case, analyzer, Path(tmp), chord_models))
            print(f"  {case.name}: {results[-1].sync}", flush=True)
    print(report(results))
    median = float(np.median(np.abs(np.concatenate([r.aligned_ms for r in results]))))
    print(f"target: median re-detected alignment error <= 20 ms: {median:.1f} ms "
          f"{'OK' if median <= 20 else 'MISSED'}")


def run_real(cases: tp.Sequence[RealCase], analyzer: Analyzer, *, before: bool = True) -> None:
    print(f"\nReal recordings ({len(cases)} excerpts, stand-in takes {', '.join(TAKE_KINDS)}); "
          f"before = take analysed blind, synced on downbeats; after = the product's chain.")
    results = []
    try:
        for case in cases:
            results += evaluate_recording(case, analyzer, before=before)
            for r in results[-len(TAKE_KINDS):]:
                print(f"  {r.excerpt} {r.kind}: before {_take_median(r.before_ms):.1f} ms "
                      f"({r.before}); after {_take_median(r.after_ms):.1f} ms ({r.after})",
                      flush=True)
    except RecordingsUnavailable as err:
        print(f"real recordings skipped: {err}")
        return
    print(report_real(results))
    unwarped = [r for r in results if not r.after.startswith("warped")]
    for field, name in (("after_ms", "heard"), ("warp_ms", "warp map")):
        after = real_summary(results, field)
        met = (after["median"] <= 10 and after["p95"] <= 40 and after["worst"] <= 100
               and not unwarped)
        print(f"target ({name}): median <= 10 ms, p95 <= 40 ms, no take > 100 ms, every take "
              f"warped: {after['median']:.1f} / {after['p95']:.1f} / {after['worst']:.1f} ms, "
              f"{len(unwarped)} unwarped {'OK' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
