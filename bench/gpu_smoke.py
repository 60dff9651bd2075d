"""Remix speed on a GPU (or the CPU) against the hardware's floor, with real or random weights.

Models, one of:

* the REAL weights (default): for a machine with network access; the first run downloads the
  ``remix-default`` group, several GB, into ``--weights`` / ``$REMIXER_WEIGHTS_DIR`` /
  ``weights/`` (later runs are offline-safe);
* ``--random-real-size``: no download at all. Random models with the published shapes
  (:mod:`bench.real_size`): the four MusicGen Chord LMs (medium and large, mono ``n_q=4`` and
  stereo ``n_q=8``) built by the checkpoint loader's own builder, T5-base, EnCodec 32 kHz,
  htdemucs, BTC and All-In-One written in their published formats and loaded by
  ``Models.load``. Decoding speed depends on the shapes only, so the speed figures are the real
  ones; the music is noise (beat-sync finds nothing to align).

The models run through the product's ``Pipeline`` in the dtype it uses on the device (the LM in
float16 on a GPU, float32 on the CPU). For each version (``--version``, repeatable) the script
loads, warms up (``Pipeline.warmup``) and remixes a :func:`devtools.synth.demo_song` of each
``--duration``, then prints:

* every stage of ``Result.timings``, and generation's real-time factor (its seconds per second
  of song; < 1 is faster than real time);
* decoding: the LM's steps (forward calls; with classifier-free guidance each is a batch of 2,
  as the product runs it), the seconds spent inside ``LMModel.generate`` and steps per second;
* peak memory during each remix: on a GPU ``torch.cuda.max_memory_allocated`` (reset before each
  remix); on the CPU the process's peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs``);
* the floor (:mod:`bench.floor`): weight bytes read per step / memory bandwidth, and how many
  times above it the measured step is;

and a summary table per version and decoder. ``--decoder`` (repeatable) picks the decoding loop:
audiocraft's streaming ``LMModel.generate`` or :mod:`remixer.static_decode` (a preallocated
cache, CUDA graphs on a GPU); given both, each version is measured with each, side by side in
one run. ``--check-greedy STEPS`` first decodes ``STEPS`` steps greedily with both loops from the
same conditions and reports how many tokens agree: in the product's dtype and, on a GPU, also in
float32 without autocast. On CUDA every timed span ends with ``torch.cuda.synchronize()``.

Usage (see bench/README.md)::

    python bench/gpu_smoke.py --random-real-size                 # a GPU box, no network
    python bench/gpu_smoke.py --random-real-size --decoder audiocraft --decoder static --check-greedy 500
    python bench/gpu_smoke.py --random-real-size --device cpu --duration 1
    python bench/gpu_smoke.py [--duration 30] [--version stereo-chord] [--out DIR]   # real weights

Outputs go to ``--out`` (default: a temporary directory, deleted afterwards).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import logging
import math
import os
import sys
import tempfile
import time
import traceback
import typing as tp
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench import floor, real_size  # noqa: E402
from devtools.synth import demo_song  # noqa: E402
from remixer import audio as audio_io  # noqa: E402
from remixer.chords import TextChords  # noqa: E402
from remixer.generation import GenerationParams, ModelCache  # noqa: E402
from remixer.musicgen.builders import build_chord_model  # noqa: E402
from remixer.musicgen.loaders import load_encodec, load_text_encoder  # noqa: E402
from remixer.client_audio import MIN_SONG_SECONDS  # noqa: E402
from remixer.pipeline import Models, Pipeline  # noqa: E402
from remixer.requests import CHORD_VERSIONS, RemixRequest, Sampling  # noqa: E402
from remixer.static_decode import DECODERS, StaticDecoder, decoder_from_env, resolve_decoder  # noqa: E402
from remixer.weights import WeightsError, WeightsStore  # noqa: E402

DEMO_BPM = 100.0
# Shorter songs are cut from a demo song of this length (it needs whole bars).
SHORTEST_DEMO = 8.0
RANDOM_DURATIONS = (30.0, 180.0)
REAL_DURATIONS = (30.0,)
PROMPT = "bossa nova, nylon guitar, brushed drums"
GIB = 2 ** 30


@dataclass
class Decoding:
    """LM forward calls (one per decoding step) and seconds inside ``LMModel.generate``."""

    steps: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class SongRun:
    """One remix of a ``seconds``-long song."""

    seconds: float
    timings: dict[str, float]
    decoding: Decoding
    peak_gib: float
    tempo: tp.Optional[float]
    beat_sync: str


@dataclass(frozen=True)
class VersionRuns:
    """A model version with one decoder: its LM's size, dtype and weight bytes per step, its remixes."""

    version: str
    decoder: str
    parameters: int
    dtype: str
    weight_bytes: int
    runs: list[SongRun]
    failures: list[str] = dataclasses.field(default_factory=list)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.tiny_shapes and not args.random_real_size:
        parser.error("--tiny-shapes scales the random models: use it with --random-real-size")
    device = torch.device(args.device or "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU visible to torch; use --device cpu to run on the CPU",
              file=sys.stderr)
        return 2
    if args.threads is not None:
        os.environ["REMIXER_THREADS"] = str(args.threads)  # what Models.load sets (remixer.threads)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    versions = args.version or (list(CHORD_VERSIONS) if args.random_real_size else ["stereo-chord"])
    durations = args.duration or (RANDOM_DURATIONS if args.random_real_size else REAL_DURATIONS)
    decoders = list(dict.fromkeys(resolve_decoder(name, device)
                                  for name in args.decoder or [decoder_from_env()]))
    bandwidth = floor.device_bandwidth(device, args.bandwidth)
    with tempfile.TemporaryDirectory(prefix="remixer-gpu-smoke-") as tmp:
        out = args.out or Path(tmp) / "out"
        out.mkdir(parents=True, exist_ok=True)
        if args.random_real_size:
            print(_banner(args.tiny_shapes))
            reports = list(_random_runs(Path(tmp) / "weights", versions, durations, device, out,
                                        analysis=args.analysis, tiny=args.tiny_shapes,
                                        decoders=decoders, check_steps=args.check_greedy))
        else:
            store = WeightsStore(args.weights)
            try:
                start = time.perf_counter()
                store.group_paths("remix-default")
                for version in versions:
                    store.group_paths(f"musicgen-{version}")
            except WeightsError as error:
                print(f"error: cannot get the real weights: {error}", file=sys.stderr)
                return 2
            print(f"weights fetch/verify {time.perf_counter() - start:.1f} s")
            reports = list(_real_runs(store, versions, durations, device, out, analysis=args.analysis,
                                      decoders=decoders, check_steps=args.check_greedy))
        if args.out is None:
            print("outputs: (temporary, not kept)")
    _print_summary(reports, device, bandwidth)
    return 1 if any(report.failures for report in reports) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random-real-size", action="store_true",
                        help="random models with the published shapes, no download")
    parser.add_argument("--tiny-shapes", action="store_true",
                        help="with --random-real-size: scale every shape down (the test suite's run)")
    parser.add_argument("--duration", type=_song_seconds, nargs="+", default=None,
                        help="demo song lengths in seconds (default: 30 180 with random weights, "
                             "30 with real ones)")
    parser.add_argument("--version", choices=CHORD_VERSIONS, action="append", default=None,
                        help="model version, repeatable (default: all four with random weights, "
                             "stereo-chord with real ones)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="real weights cache (default $REMIXER_WEIGHTS_DIR, else <repo>/weights)")
    parser.add_argument("--device", default=None, help="default cuda; 'cpu' runs on the CPU")
    parser.add_argument("--decoder", choices=DECODERS, action="append", default=None,
                        help="decoding loop, repeatable: each version is measured with each "
                             "(default $REMIXER_DECODE, else auto: static on CUDA, audiocraft on the CPU)")
    parser.add_argument("--check-greedy", type=_positive_int, default=None, metavar="STEPS",
                        help="first compare greedy tokens of audiocraft's and the static decoder "
                             "over STEPS steps")
    parser.add_argument("--analysis", choices=("auto", "allinone", "madmom"), default="auto",
                        help="beat analysis backend, as the product's option (default auto: All-In-One)")
    parser.add_argument("--bandwidth", type=_positive, default=None,
                        help="memory bandwidth in GB/s for the floor (default: the GPU's datasheet "
                             "figure, or measured on the CPU)")
    parser.add_argument("--out", type=Path, default=None, help="keep the outputs in this folder")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="CPU threads (default: $REMIXER_THREADS, else the cores available; see README)")
    parser.add_argument("--quiet", action="store_true", help="no per-stage log lines")
    return parser


def _song_seconds(text: str) -> float:
    seconds = float(text)
    if not MIN_SONG_SECONDS <= seconds < math.inf:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_SONG_SECONDS:g} s, got {text}")
    return seconds


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _banner(tiny: bool) -> str:
    shapes = "TINY shapes (test run)" if tiny else "the PUBLISHED shapes"
    return (f"RANDOM WEIGHTS with {shapes}: MusicGen Chord LM, T5-base (stand-in tokenizer), "
            f"EnCodec 32 kHz, htdemucs, BTC, All-In-One.\nSpeed is the real models'; "
            f"the audio is noise.")


def _random_runs(root: Path, versions: tp.Sequence[str], durations: tp.Sequence[float],
                 device: torch.device, out: Path, *, analysis: str, tiny: bool,
                 decoders: tp.Sequence[str], check_steps: tp.Optional[int]) -> tp.Iterator[VersionRuns]:
    """Each version's LM built from its published config, beside models loaded from ``root``."""
    store = real_size.write_weights(root, tiny=tiny)
    shared = Models.load(store, device=str(device), analysis_backend=analysis, preload=())
    text_encoder = load_text_encoder(store.group_paths("t5-base")[0].parent, device=device)
    encodec = load_encodec(store.group_paths("encodec-32khz")[0].parent, device=device)
    for version in versions:
        cfg = real_size.lm_config(version, tiny=tiny)

        def build(dtype: tp.Optional[torch.dtype] = None) -> tp.Any:
            return build_chord_model(cfg, name=f"musicgen-{version}", device=device, dtype=dtype,
                                     text_encoder=text_encoder, compression_model=encodec)
        start = _now(device)
        model = build()
        built = _now(device) - start
        if check_steps:
            _check_greedy(version, model, device, check_steps)
            if device.type == "cuda":
                exact = build(torch.float32)
                _check_greedy(version, exact, device, check_steps, autocast=False)
                del exact
                _release(device)
        for decoder in decoders:
            generators = ModelCache(store, device=device, decoder=decoder)
            generators.add(version, model)
            pipeline = Pipeline(dataclasses.replace(shared, generators=generators))
            yield _measure(pipeline, version, decoder, real_size.describe(cfg), built, durations,
                           device, out)
            del generators, pipeline
            _release(device)
        del model
        _release(device)


def _real_runs(store: WeightsStore, versions: tp.Sequence[str], durations: tp.Sequence[float],
               device: torch.device, out: Path, *, analysis: str, decoders: tp.Sequence[str],
               check_steps: tp.Optional[int]) -> tp.Iterator[VersionRuns]:
    for version in versions:
        for index, decoder in enumerate(decoders):
            start = _now(device)
            models = Models.load(store, device=str(device), analysis_backend=analysis,
                                 preload=(version,), decoder=decoder)
            loaded = _now(device) - start
            model = models.generators.get(version).model
            if check_steps and index == 0:
                _check_greedy(version, model, device, check_steps)
            pipeline = Pipeline(models)
            yield _measure(pipeline, version, decoder, real_size.describe(model.lm.cfg), loaded,
                           durations, device, out)
            del models, pipeline, model
            _release(device)


def _check_greedy(version: str, model: tp.Any, device: torch.device, steps: int, *,
                  autocast: bool = True) -> None:
    """Greedy tokens of audiocraft's decode and the static decoder from the same conditions."""
    try:
        _compare_greedy(version, model, device, steps, autocast=autocast)
    except Exception:
        print(f"greedy check {version} FAILED:\n{traceback.format_exc()}")


def _compare_greedy(version: str, model: tp.Any, device: torch.device, steps: int, *,
                    autocast: bool) -> None:
    lm = model.lm
    generator = ModelCache(None, device=device, decoder="audiocraft").add(version, model)
    chords = TextChords("C G A:min F", bpm=DEMO_BPM)
    condition = generator._condition_maker(GenerationParams(duration=1.0, seed=0), chords, 1.0, None)
    attributes = condition(0.0, f"{PROMPT}, bpm : {DEMO_BPM:g}")
    greedy = dict(max_gen_len=steps, use_sampling=False, top_k=1, cfg_coef=3.0)
    context = model.autocast if autocast else contextlib.nullcontext()
    with torch.no_grad(), context:
        start = _now(device)
        reference = lm.generate(None, [attributes], two_step_cfg=False, **greedy)
        audiocraft_s = _now(device) - start
        decoder = StaticDecoder(lm)
        decoder.generate(None, [attributes], **dict(greedy, max_gen_len=min(steps, 8)))  # graphs
        start = _now(device)
        ours = decoder.generate(None, [attributes], **greedy)
        static_s = _now(device) - start
    same = (ours == reference).all(dim=1)[0]  # [steps]: every codebook equal
    first = int((~same).nonzero()[0]) if not bool(same.all()) else None
    dtype = str(next(lm.transformer.parameters()).dtype).removeprefix("torch.")
    mode = "autocast" if autocast and device.type == "cuda" else "no autocast"
    verdict = "all equal" if first is None else f"first difference at step {first}"
    print(f"greedy check {version} ({dtype}, {mode}): {int(same.sum())}/{steps} steps equal, {verdict}; "
          f"audiocraft {steps / audiocraft_s:.1f} steps/s, static {steps / static_s:.1f} steps/s "
          f"({audiocraft_s / static_s:.2f}x)")
    del decoder


def _measure(pipeline: Pipeline, version: str, decoder: str, lm_text: str, load_s: float,
             durations: tp.Sequence[float], device: torch.device, out: Path) -> VersionRuns:
    """Warm up, remix a demo song of each duration, print and return the figures."""
    generator = pipeline.models.generators.get(version)
    lm = generator.model.lm
    start = _now(device)
    pipeline.warmup()
    warmup_s = _now(device) - start
    parameters = sum(p.numel() for p in lm.parameters())
    dtype = str(next(lm.transformer.parameters()).dtype).removeprefix("torch.")
    report = VersionRuns(version, generator.decoder, parameters, dtype, floor.step_weight_bytes(lm), [])
    print(f"\n== {version}, {generator.decoder} decoder: LM {parameters / 1e6:,.1f} M parameters "
          f"({lm_text}), {dtype} on {device}, {report.weight_bytes:,} bytes of weights read per step; "
          f"ready in {load_s:.1f} s, warm-up {warmup_s:.1f} s")
    for seconds in durations:
        song = out / f"song-{version}-{seconds:g}s.wav"
        _write_demo(seconds, song)
        request = RemixRequest(song=song, prompt=PROMPT, model_version=version,
                               sampling=Sampling(seed=0), return_analysis=True)
        _reset_peak(device)
        try:
            with _timed_decoding(generator, device) as decoding:
                result = pipeline.remix(request, out / f"{version}-{decoder}-{seconds:g}s")
        except Exception:  # one failed measurement must not cost the others of a GPU session
            report.failures.append(f"{seconds:g} s")
            print(f"  song {seconds:g} s FAILED:\n{traceback.format_exc()}")
            continue
        analysis = result.analysis or {}
        run = SongRun(seconds, result.timings, decoding, _peak_gib(device),
                      analysis.get("song", {}).get("bpm"), analysis.get("beat_sync", {}).get("reason", ""))
        report.runs.append(run)
        _print_run(run)
    return report


@contextmanager
def _timed_decoding(generator: tp.Any, device: torch.device) -> tp.Iterator[Decoding]:
    """Count the decoding steps and time the decoding loop's calls, then undo both.

    A step is one LM forward call in audiocraft's loop; the static decoder runs its first step
    through the LM's forward and every other one through its ``_step``.
    """
    record = Decoding()
    lm = generator.model.lm
    owner = lm if generator.decoder == "audiocraft" else generator._static
    generate = owner.generate

    def count(*args: tp.Any) -> None:
        record.steps += 1

    def timed(*args: tp.Any, **kwargs: tp.Any) -> tp.Any:
        start = _now(device)
        try:
            return generate(*args, **kwargs)
        finally:
            record.seconds += _now(device) - start

    hook = lm.register_forward_pre_hook(count)
    owner.generate = timed
    if owner is not lm:
        step = owner._step

        def counted_step(*args: tp.Any) -> tp.Any:
            count()
            return step(*args)
        owner._step = counted_step
    try:
        yield record
    finally:
        hook.remove()
        del owner.generate
        if owner is not lm:
            del owner._step


def _write_demo(seconds: float, path: Path) -> None:
    song = demo_song(max(seconds, SHORTEST_DEMO), DEMO_BPM)
    audio = song.audio[:, :int(round(seconds * song.sample_rate))]
    path.parent.mkdir(parents=True, exist_ok=True)
    audio_io.export_audio(audio, song.sample_rate, path, strategy=None)


def _now(device: torch.device) -> float:
    """A clock reading after the device's queued work is done (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS
        except OSError:
            pass  # not Linux: _peak_gib falls back to the peak since the process started


def _peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / GIB
    try:
        status = Path("/proc/self/status").read_text()
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024 / GIB


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _print_run(run: SongRun) -> None:
    total = sum(run.timings.values())
    print(f"  song {run.seconds:g} s")
    for stage, seconds in run.timings.items():
        print(f"    {stage:<26}{seconds:>9.2f} s")
    print(f"    {'total':<26}{total:>9.2f} s")
    generation = run.timings["generation"]
    print(f"    generation RTF {generation / run.seconds:.3f} ({run.seconds / generation:.2f}x real "
          f"time); whole remix {total / run.seconds:.3f}")
    print(f"    decoding: {run.decoding.steps} steps (CFG batch 2) in {run.decoding.seconds:.2f} s "
          f"= {_steps_per_s(run):.3g} steps/s")
    tempo = "none" if run.tempo is None else f"{run.tempo:.1f} BPM"
    print(f"    peak memory {run.peak_gib:.2f} GiB; song tempo detected {tempo} (true {DEMO_BPM:g}); "
          f"beat-sync: {run.beat_sync}")


def _print_ratios(reports: tp.Sequence[VersionRuns]) -> None:
    """Static over audiocraft, per version and song length, when both ran."""
    by_key = {(r.version, r.decoder, run.seconds): run for r in reports for run in r.runs}
    for (version, decoder, seconds), run in by_key.items():
        old = by_key.get((version, "audiocraft", seconds))
        if decoder != "static" or old is None:
            continue
        old_total, new_total = sum(old.timings.values()), sum(run.timings.values())
        print(f"static/audiocraft {version} {seconds:g} s: steps/s {_steps_per_s(run) / _steps_per_s(old):.2f}x, "
              f"generation {old.timings['generation'] / run.timings['generation']:.2f}x faster, "
              f"whole remix {old_total:.1f} s -> {new_total:.1f} s")


def _steps_per_s(run: SongRun) -> float:
    return run.decoding.steps / run.decoding.seconds if run.decoding.seconds > 0 else float("nan")


def _print_summary(reports: tp.Sequence[VersionRuns], device: torch.device,
                   bandwidth: floor.Bandwidth) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rate = "unknown" if bandwidth.gb_per_s is None else f"{bandwidth.gb_per_s:,.1f} GB/s"
    memory = "GPU max_memory_allocated" if device.type == "cuda" else "CPU peak RSS"
    print(f"\nSummary: {device} ({name}); memory bandwidth {rate} ({bandwidth.source})")
    if device.type == "cuda":
        measured = floor.cuda_bandwidth(device)
        print(f"measured memory bandwidth {measured.gb_per_s:,.1f} GB/s ({measured.source}); the "
              f"floor at that rate is {bandwidth.gb_per_s / measured.gb_per_s:.2f}x the one below"
              if bandwidth.gb_per_s else f"measured memory bandwidth {measured.gb_per_s:,.1f} GB/s")
    print(f"{'version':<20}{'decoder':>11}{'LM params':>11}{'dtype':>9}{'MB/step':>10}{'song s':>8}{'steps':>7}"
          f"{'steps/s':>9}{'ms/step':>9}{'floor ms':>10}{'x floor':>9}{'gen RTF':>9}{'peak GiB':>10}")
    for report in reports:
        floor_s = floor.floor_seconds(report.weight_bytes, bandwidth)
        for run in report.runs:
            per_step = run.decoding.seconds / run.decoding.steps if run.decoding.steps else float("nan")
            ratio = "unknown" if floor_s is None else f"{per_step / floor_s:.1f}x"
            floor_ms = "unknown" if floor_s is None else f"{floor_s * 1e3:.4g}"
            print(f"{report.version:<20}{report.decoder:>11}{report.parameters / 1e9:>10.3f}B{report.dtype:>9}"
                  f"{report.weight_bytes / 1e6:>10.1f}{run.seconds:>8g}{run.decoding.steps:>7}"
                  f"{_steps_per_s(run):>9.3g}{per_step * 1e3:>9.2f}{floor_ms:>10}{ratio:>9}"
                  f"{run.timings['generation'] / run.seconds:>9.3f}{run.peak_gib:>10.2f}")
    _print_ratios(reports)
    print(f"MB/step: LM weights read per decoding step; floor = MB/step / bandwidth; x floor = "
          f"measured ms/step / floor; gen RTF = generation stage / song length; peak: {memory}.")


if __name__ == "__main__":
    sys.exit(main())
