"""Quality of the remix chain on synthesized songs whose chords and downbeats are known.

For each case (tempo, meter, length) a :func:`remixer.synth.demo_song` is written to a wav file
and remixed by the product's own stages, with two stand-ins that make the result checkable:

* **separation** returns the synth's known stems (drums, bass, harmony as ``other``, vocals): the
  tiny random htdemucs available offline separates nothing meaningful;
* **generation** returns a known re-timing of the accompaniment (:func:`remixer.synth.retimed`
  at 32 kHz, no vocals, its tempo drifting from ``drift[0]`` to ``drift[1]`` times the song's
  and its first downbeat moved), the way MusicGen's take drifts off the prompt's tempo.

Everything else is real: decoding, madmom beat/downbeat analysis of the song and of the take
(madmom's pretrained models ship with the package), beat-sync (downbeat matching + WSOLA),
the mix and the loudness-normalised export. Reported per song:

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

Usage: ``python bench/quality.py [--reduced]``. ``--reduced`` (CI) runs 3 songs of 20 s, the
full set 6 songs of 45 s (90/120/140 BPM in 3/4 and 4/4). Target: median alignment error after
sync <= 20 ms. Writes only to a temporary directory.
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

from btc.labels import ChordSegment, normalize_label  # noqa: E402
from remixer import audio as audio_io  # noqa: E402
from remixer.analysis import Analyzer, MadmomAnalyzer  # noqa: E402
from remixer.beatsync import beat_sync, default_threshold  # noqa: E402
from remixer.mixing import mix  # noqa: E402
from remixer.separation import Stems  # noqa: E402
from remixer.synth import SynthSong, demo_song, retimed  # noqa: E402

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
    """The synth's parts as the separation output (harmony plays htdemucs' ``other``)."""
    stereo = {name: np.ascontiguousarray(np.broadcast_to(stem, (2, stem.shape[1])))
              for name, stem in song.stems.items()}
    return Stems(drums=stereo["drums"], bass=stereo["bass"], other=stereo["harmony"],
                 vocals=stereo["vocals"], sample_rate=song.sample_rate)


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
    take_beats = analyzer.analyze(instrumental, out_rate)
    out_length = int(round(song.shape[1] / rate * out_rate))
    synced = beat_sync(instrumental, out_rate, take_beats.downbeats, beats.downbeats, out_length,
                       threshold=default_threshold(beats.bpm))
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


def _stats(values: np.ndarray) -> str:
    """Median and 95th percentile of the absolute errors."""
    if values.size == 0:
        return "     -      -"
    return f"{np.median(np.abs(values)):6.1f} {np.percentile(np.abs(values), 95):6.1f}"


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
    args = parser.parse_args()
    cases = REDUCED if args.reduced else FULL
    chord_models: list[tuple[str, ChordModel]] = []
    if not args.no_chords:
        chord_models.append(("madmom", MadmomChords()))
        btc = real_btc()
        if btc is None:
            print("BTC chord accuracy skipped: no verified real BTC weights in the weights cache")
        else:
            chord_models.append(("btc", btc))
    print("Separation = the synth's known stems (the offline tiny htdemucs is random); "
          "generation = a known re-timing of the accompaniment. Analysis (madmom, pretrained), "
          "beat-sync, mix and export are the product's.")
    analyzer = MadmomAnalyzer()
    results = []
    with tempfile.TemporaryDirectory(prefix="remixer-quality-") as tmp:
        for case in cases:
            results.append(evaluate(case, analyzer, Path(tmp), chord_models))
            print(f"  {case.name}: {results[-1].sync}", flush=True)
    print(report(results))
    median = float(np.median(np.abs(np.concatenate([r.aligned_ms for r in results]))))
    print(f"target: median re-detected alignment error <= 20 ms: {median:.1f} ms "
          f"{'OK' if median <= 20 else 'MISSED'}")


if __name__ == "__main__":
    main()
