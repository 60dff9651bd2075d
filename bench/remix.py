"""Speed and memory of the whole remix, stage by stage, and against the reference's structure.

**Stage mode** (default): remixes :func:`devtools.synth.demo_song` songs of 30 s, 1 min and 3 min
(``--lengths``) with :meth:`remixer.pipeline.Pipeline.remix`, ``--runs`` times each after a
warm-up, and prints every stage of ``Result.timings`` (decode, separation, chords, analysis of
the song, generation, analysis of the instrumental, beat-sync, mix, export) in seconds per minute
of audio (medians). Each length runs in a fresh process, so its peak memory is its own: the
resident set's high-water mark from ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (psutil is
not installed; tracemalloc would slow the run and miss torch's allocations), after loading and
warm-up and after the remixes. The growth check fits each stage's median seconds against song
length on log-log axes and flags slopes above 1.2 (worse than linear).

**Reference mode** (``--compare-reference``): the same song (1 min by default) through our
pipeline and through the original Remixer's structure rebuilt from our components
(``reference_remix``; see ``docs/reference-behaviour.md`` §4.4, §5.3, §9.3, §9.28): the chord
LM, T5, EnCodec, BTC and htdemucs reloaded from disk per request; analysis of the song and of the
generated track each decoding its file and running its own separation (All-In-One's structure);
a separate vocal split; inside generation, htdemucs + BTC on 10 s CQT chunks with batch-1
windows (``bench/chords.py``) once per 30 s window; four exports. Runs alternate (rotating
order); prints both medians, the ratio of medians and the median of per-run ratios.

On a machine without the real weights the models are TINY and RANDOM, in the real file formats
(``devtools/tiny/cache.py``), the chord LM with the real 30 s window: the figures then
show the pipeline's structure, not production speed, and the output says so. The random LM
makes beatless audio, so beat-sync leaves it unwarped (``bench/sync.py`` times the warp). Beat
analysis is madmom's real pretrained model (``--analysis allinone``: All-In-One's 8 folds at
their real size, random); ``--htdemucs-size`` swaps in a random htdemucs of the real size.
``--weights DIR`` uses a fetched real cache instead.

On the CPU each measuring process runs ONE thread (``--threads``): with two, tiny models'
short ops spend their time in OpenMP barriers whenever another process wants a core, and runs
on a shared 2-core machine were up to 25x slower and erratic (a 16 s tiny generation: 1.3 s
with one thread, 15-35 s with two under load).

Usage::

    python bench/remix.py [--lengths 30 60 180] [--runs 3]
    python bench/remix.py --quick                     # 8 s and 16 s, one run: a smoke run
    python bench/remix.py --compare-reference [--compare-seconds 60] [--runs 3]

Writes only to temporary directories.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
import typing as tp
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.chords import reference_segments  # noqa: E402
from btc.recognizer import ChordRecognizer  # noqa: E402
from devtools.synth import demo_song  # noqa: E402
from remixer import audio as audio_io  # noqa: E402
from remixer.analysis import Analyzer  # noqa: E402
from remixer.beatsync import beat_sync, default_threshold  # noqa: E402
from remixer.chords import reading_chroma  # noqa: E402
from remixer.generation import GenerationParams, Generator  # noqa: E402
from remixer.mixing import mix  # noqa: E402
from remixer.musicgen.loaders import load_chord_model  # noqa: E402
from remixer.pipeline import Models, Pipeline  # noqa: E402
from remixer.requests import RemixRequest, Sampling  # noqa: E402
from remixer.separation import Separator  # noqa: E402
from remixer.weights import Manifest, WeightsStore  # noqa: E402

STAGES = ("decode", "separation", "chords", "analysis (song)", "generation",
          "analysis (instrumental)", "beat-sync", "mix", "export")
LENGTHS = (30.0, 60.0, 180.0)
QUICK_LENGTHS = (8.0, 16.0)
GROWTH_LIMIT = 1.2
# Stages whose longest median is below this are timer noise: no slope is fitted for them.
GROWTH_FLOOR_S = 0.05
VERSION = "stereo-chord"
PROMPT = "bossa nova"
GENERATION_RATE = 32_000
TINY_BANNER = """\
##################################################################################
#  TINY RANDOM MODELS: htdemucs, BTC, T5, EnCodec and the MusicGen Chord LM      #
#  are random weights in the real file formats (the LM tiny, with the real 30 s  #
#  window). These timings show the pipeline's structure, NOT production speed.   #
##################################################################################"""
ANALYSIS = {"madmom": "madmom (real pretrained model)",
            "allinone": "All-In-One (8 random folds of the real size)"}


@dataclass(frozen=True)
class Setup:
    """Where the models come from, so a fresh process can load the same ones."""

    weights_dir: Path
    manifest: Path | None
    device: str
    analysis: str
    tiny: bool
    threads: int | None

    def store(self) -> WeightsStore:
        manifest = None if self.manifest is None else Manifest.load(self.manifest)
        return WeightsStore(self.weights_dir, offline=True, manifest=manifest)


@dataclass(frozen=True)
class LengthRuns:
    """Timings of one song length: one ``Result.timings`` per run, and the process's memory."""

    seconds: float
    runs: tuple[dict[str, float], ...]
    rss_loaded_mib: float
    rss_peak_mib: float
    sync: str

    def median(self, stage: str) -> float:
        return statistics.median(run.get(stage, 0.0) for run in self.runs)

    def total(self) -> float:
        return statistics.median(sum(run.values()) for run in self.runs)


def write_tiny_weights(directory: Path, *, with_allinone: bool, htdemucs_size: bool) -> Path:
    """Write the tiny weights cache; returns its manifest.

    The stereo chord LM gets the real 30 s window; with ``with_allinone`` All-In-One's 8 folds
    are written at their real size, with ``htdemucs_size`` htdemucs too (random weights, the
    real model's hyper-parameters and so its compute).
    """
    from demucs.htdemucs import HTDemucs

    from devtools.tiny import demucs, musicgen
    from devtools.tiny.cache import build_tiny_weights

    manifest = build_tiny_weights(directory, with_allinone=with_allinone)
    store = WeightsStore(directory, offline=True, manifest=Manifest.load(manifest))
    musicgen.chord_checkpoint(store.target(f"musicgen-{VERSION}"), stereo=True, window=30.0)
    if htdemucs_size:
        demucs.save_legacy(HTDemucs(demucs.SOURCES, segment=7.8), store.target("htdemucs"))
    return manifest


def load_pipeline(setup: Setup) -> Pipeline:
    models = Models.load(setup.store(), device=setup.device, analysis_backend=setup.analysis,
                         preload=(VERSION,), threads=setup.threads)
    pipeline = Pipeline(models)
    pipeline.warmup()
    return pipeline


def write_song(seconds: float, directory: Path) -> Path:
    song = demo_song(seconds)
    return audio_io.export_audio(song.audio, song.sample_rate, directory / f"song-{seconds:g}s.wav",
                                 strategy=None)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def remix_once(pipeline: Pipeline, song: Path) -> tuple[dict[str, float], str]:
    with tempfile.TemporaryDirectory(prefix="remixer-bench-") as workdir:
        result = pipeline.remix(RemixRequest(song=song, prompt=PROMPT, model_version=VERSION,
                                             sampling=Sampling(seed=0)), Path(workdir))
    assert result.analysis is not None
    return result.timings, result.analysis["beat_sync"]["reason"]


def measure_length(setup: Setup, seconds: float, runs: int) -> LengthRuns:
    """Load, warm up and remix a ``seconds`` song ``runs`` times (run in a fresh process)."""
    pipeline = load_pipeline(setup)
    with tempfile.TemporaryDirectory(prefix="remixer-bench-") as directory:
        song = write_song(seconds, Path(directory))
        remix_once(pipeline, write_song(min(seconds, 8.0), Path(directory)))
        loaded = _rss_mib()
        timings = [remix_once(pipeline, song) for _ in range(runs)]
    return LengthRuns(seconds, tuple(t for t, _ in timings), loaded, _rss_mib(), timings[-1][1])


def growth_slopes(results: tp.Sequence[LengthRuns]) -> dict[str, float | None]:
    """Log-log slope of each stage's median seconds against song length (None: below the floor)."""
    lengths = np.log([r.seconds for r in results])
    slopes: dict[str, float | None] = {}
    for stage in STAGES + ("total",):
        times = np.array([r.total() if stage == "total" else r.median(stage) for r in results])
        slopes[stage] = (None if times.max() < GROWTH_FLOOR_S or (times <= 0).any()
                         else float(np.polyfit(lengths, np.log(times), 1)[0]))
    return slopes


def stage_report(results: tp.Sequence[LengthRuns]) -> str:
    head = f"{'stage (s per min of audio)':<26}" + "".join(f"{r.seconds:>9g} s" for r in results)
    lines = [head + f"{'slope':>8}", "-" * (len(head) + 8)]
    slopes = growth_slopes(results) if len(results) > 1 else {}
    for stage in STAGES + ("total",):
        cells = "".join(
            f"{(r.total() if stage == 'total' else r.median(stage)) / (r.seconds / 60):>11.3f}"
            for r in results)
        slope = slopes.get(stage)
        mark = "" if slope is None else f"{slope:>8.2f}" + ("  <-- worse than linear"
                                                           if slope > GROWTH_LIMIT else "")
        lines.append(f"{stage:<26}{cells}{mark}")
    lines.append("-" * (len(head) + 8))
    lines.append(f"{'peak RSS after load, MiB':<26}"
                 + "".join(f"{r.rss_loaded_mib:>11.0f}" for r in results))
    lines.append(f"{'peak RSS after remix, MiB':<26}"
                 + "".join(f"{r.rss_peak_mib:>11.0f}" for r in results))
    longest = results[-1]
    flagged = [f"{stage} ({longest.total() if stage == 'total' else longest.median(stage):.2f} s "
               f"at {longest.seconds:g} s)"
               for stage, slope in slopes.items() if slope is not None and slope > GROWTH_LIMIT]
    lines.append(f"growth check (log-log slope > {GROWTH_LIMIT}): "
                 + ("FLAGGED " + ", ".join(flagged) if flagged else "no stage worse than linear"))
    lines += [f"beat-sync at {r.seconds:g} s: {r.sync}" for r in results]
    return "\n".join(lines)


class _Stages:
    """Seconds per named stage; a stage entered twice accumulates."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> tp.Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


class ReferenceWindowChords:
    """The reference chord conditioner's audio path, run for every generation window: htdemucs
    on the window, vocals + bass + other, BTC on 10 s CQT chunks with batch-1 windows."""

    def __init__(self, song: np.ndarray, separator: Separator, recognizer: ChordRecognizer,
                 stages: _Stages) -> None:
        self.song, self.separator, self.recognizer = song, separator, recognizer
        self.stages = stages

    def chroma(self, *, start: float, duration: float) -> np.ndarray:
        with self.stages("chords in conditioner (per window)"):
            first = int(start * GENERATION_RATE)
            piece = self.song[:, first:first + int(round(duration * GENERATION_RATE))]
            stems = self.separator.separate(piece, GENERATION_RATE)
            source = (stems.vocals + stems.bass + stems.other).mean(axis=0, keepdims=True)
            segments = reference_segments(self.recognizer, source, GENERATION_RATE)
            return reading_chroma(segments, duration)


def reference_remix(store: WeightsStore, analyzer: Analyzer, song_path: Path, workdir: Path,
                    device: str) -> dict[str, float]:
    """One request shaped like the original Remixer's ``predict`` (§4.4), on our components.

    Returns the seconds of each of its stages.
    """
    stages = _Stages()
    with stages("model load (per request)"):
        model = load_chord_model(store.path(f"musicgen-{VERSION}"), device=device,
                                 text_encoder=store.group_paths("t5-base")[0].parent,
                                 compression_model=store.group_paths("encodec-32khz")[0].parent)
        # The conditioner builds htdemucs twice (ChromaStemConditioner's, then its own) and BTC.
        vocal_separator, chord_separator = (
            Separator.from_checkpoint(store.path("htdemucs"), device) for _ in range(2))
        recognizer = ChordRecognizer.from_checkpoint(store.path("btc-model-large-voca"),
                                                     device=device)
    with stages("analysis (song): decode + separation + beats"):
        wav, rate = audio_io.load_audio(song_path)
        separator = Separator.from_checkpoint(store.path("htdemucs"), device)
        beats = analyzer.analyze(wav, rate, stems=separator.separate(wav, rate))
    with stages("decode"):
        song, rate = audio_io.load_audio(song_path)
    with stages("separation (vocals)"):
        vocals = vocal_separator.separate(song, rate).vocals.mean(axis=0, keepdims=True)
        vocals = audio_io.resample(vocals, rate, GENERATION_RATE)
        audio_io.export_audio(vocals, GENERATION_RATE, workdir / "input_vocal.wav")
    prompt = PROMPT if beats.bpm is None else f"{PROMPT}, bpm : {int(beats.bpm)}"
    song32 = audio_io.resample(song, rate, GENERATION_RATE)
    with stages("generation (+ chords in conditioner)"):
        generated = Generator(model).generate(
            prompt, GenerationParams(duration=song.shape[1] / rate, seed=0),
            chords=ReferenceWindowChords(song32, chord_separator, recognizer, stages))
        background = audio_io.export_audio(generated.audio, GENERATION_RATE,
                                           workdir / "background.wav", strategy="loudness")
    with stages("analysis (instrumental): decode + separation + beats"):
        wav, rate = audio_io.load_audio(background, allow_silent=True)
        separator = Separator.from_checkpoint(store.path("htdemucs"), device)
        generated_beats = analyzer.analyze(wav, rate, stems=separator.separate(wav, rate))
    with stages("beat-sync + export"):
        synced = beat_sync(generated.audio, GENERATION_RATE, generated_beats.downbeats,
                           beats.downbeats, generated.audio.shape[1],
                           threshold=default_threshold(beats.bpm))
        audio_io.export_audio(synced.audio, GENERATION_RATE, workdir / "background_synced.wav",
                              strategy="loudness", loudness_compressor=True)
    with stages("mix + export"):
        mixed = mix(synced.audio, vocals, GENERATION_RATE)
        audio_io.export_audio(mixed.audio, GENERATION_RATE, workdir / "out.wav",
                              strategy="loudness", loudness_compressor=True)
    seconds = stages.seconds
    # Generation's own time excludes the chord path it called, reported on its own line.
    seconds["generation (+ chords in conditioner)"] -= seconds["chords in conditioner (per window)"]
    return seconds


@dataclass(frozen=True)
class Comparison:
    """Per-run stage seconds of ours and of the reference structure on one song."""

    seconds: float
    ours: tuple[dict[str, float], ...]
    reference: tuple[dict[str, float], ...]

    def report(self) -> str:
        ours_total = [sum(t.values()) for t in self.ours]
        theirs_total = [sum(t.values()) for t in self.reference]
        lines = [f"song {self.seconds:g} s, {len(self.ours)} runs each, alternating; "
                 f"medians in seconds",
                 "ours (Pipeline.remix: models loaded once, one separation shared by every stage):"]
        lines += [f"  {stage:<52}{statistics.median(t.get(stage, 0.0) for t in self.ours):>9.2f}"
                  for stage in STAGES]
        lines.append(f"  {'total':<52}{statistics.median(ours_total):>9.2f}")
        lines.append("reference structure (same models):")
        lines += [f"  {stage:<52}{statistics.median(t[stage] for t in self.reference):>9.2f}"
                  for stage in self.reference[0]]
        lines.append(f"  {'total':<52}{statistics.median(theirs_total):>9.2f}")
        ratio = statistics.median(theirs_total) / statistics.median(ours_total)
        paired = statistics.median(r / o for r, o in zip(theirs_total, ours_total))
        verdict = "OK" if min(ratio, paired) >= 2 else "MISSED"
        lines.append(f"reference / ours: {ratio:.2f}x (ratio of medians), {paired:.2f}x (median of "
                     f"per-run ratios); target >= 2x: {verdict}")
        return "\n".join(lines)


def compare_reference(setup: Setup, seconds: float, runs: int) -> Comparison:
    """Warm both up on a short song, then alternate them ``runs`` times (rotating the order, so
    slow phases of a shared machine hit both alike)."""
    pipeline = load_pipeline(setup)
    store, analyzer = pipeline.models.store, pipeline.models.analyzer

    def reference(path: Path) -> dict[str, float]:
        with tempfile.TemporaryDirectory(prefix="remixer-reference-") as workdir:
            return reference_remix(store, analyzer, path, Path(workdir), setup.device)

    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="remixer-bench-") as directory:
        song = write_song(seconds, Path(directory))
        warm = write_song(min(seconds, 8.0), Path(directory))
        remix_once(pipeline, warm)
        reference(warm)
        for run in range(runs):
            for name in (("ours", "reference") if run % 2 == 0 else ("reference", "ours")):
                if name == "ours":
                    ours.append(remix_once(pipeline, song)[0])
                else:
                    theirs.append(reference(song))
    return Comparison(seconds, tuple(ours), tuple(theirs))


def in_fresh_process(fn: tp.Callable[..., tp.Any], *args: tp.Any) -> tp.Any:
    """``fn(*args)`` in a new interpreter: its own peak memory, thread settings and caches."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(fn, *args).result()


def _seconds(values: tp.Sequence[float], separator: str) -> str:
    return separator.join(f"{value:g}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=None,
                        help=f"song lengths in seconds (default {_seconds(LENGTHS, ' ')})")
    parser.add_argument("--runs", type=int, default=3, help="runs per length (median)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {_seconds(QUICK_LENGTHS, ' and ')} s songs, one run")
    parser.add_argument("--compare-reference", action="store_true",
                        help="time our pipeline against the reference's structure on one song")
    parser.add_argument("--compare-seconds", type=float, default=60.0)
    parser.add_argument("--weights", type=Path, default=None,
                        help="a fetched real weights cache (default: tiny random models)")
    parser.add_argument("--device", default=None, help="default: cuda when available")
    parser.add_argument("--analysis", choices=("auto", "allinone", "madmom"), default=None,
                        help="beat backend (default: madmom with tiny models, else auto)")
    parser.add_argument("--htdemucs-size", action="store_true",
                        help="tiny cache: a random htdemucs of the real size (its real compute)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per process (default on the CPU: 1, see bench/README.md)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, got {args.runs}")
    lengths = QUICK_LENGTHS if args.quick else tuple(args.lengths or LENGTHS)
    runs = 1 if args.quick else args.runs
    if any(s <= 1 for s in lengths + (args.compare_seconds,)):
        parser.error("song lengths must be over 1 s")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads = args.threads or (1 if device == "cpu" else None)
    if threads is not None:
        # Inherited by the spawned measuring processes before they import numpy/torch.
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)

    with tempfile.TemporaryDirectory(prefix="remixer-weights-") as tiny_dir:
        tiny = args.weights is None
        analysis = args.analysis or ("madmom" if tiny else "auto")
        manifest = (write_tiny_weights(Path(tiny_dir), with_allinone=analysis != "madmom",
                                       htdemucs_size=args.htdemucs_size) if tiny else None)
        setup = Setup(weights_dir=Path(tiny_dir) if tiny else args.weights, manifest=manifest,
                      device=device, analysis=analysis, tiny=tiny, threads=threads)
        if tiny:
            print(TINY_BANNER)
            if args.htdemucs_size:
                print("htdemucs: random, REAL size (its real compute)")
        print(f"device {device}, threads per process {threads or 'default'}, "
              f"beat analysis {ANALYSIS.get(setup.analysis, setup.analysis)}")
        if args.compare_reference:
            print(in_fresh_process(compare_reference, setup, args.compare_seconds, runs).report())
            return
        results = []
        for seconds in lengths:
            results.append(in_fresh_process(measure_length, setup, seconds, runs))
            print(f"  {seconds:g} s done: total {results[-1].total():.1f} s (median of {runs})",
                  flush=True)
        print(f"medians of {runs} run(s) after a warm-up; peak RSS = ru_maxrss of a fresh process "
              f"per length")
        print(stage_report(results))
        if tiny:
            print("(tiny random models: structure, not production speed)")


if __name__ == "__main__":
    main()
