"""What to run when a remix is slow or fails: ``python -m remixer.doctor`` (``make doctor``).

Checks the machine against what the default remix needs and prints one line per check, and
under each problem one line that says what to do:

* torch, the CUDA it was built for, the NVIDIA driver and whether it is new enough for that
  build, the GPU and its memory, and the device the models will run on (``REMIXER_DEVICE``);
* audiocraft and the MusicGen decoding loop that will run (``REMIXER_DECODE``);
* the audio decoders (PyAV's FFmpeg libraries, the ``ffmpeg`` command);
* every weight file of the default remix: present, size, digest verified (``--quick``: from the
  verification markers only, no hashing), which beat analysis will run, free disk where the
  weights go;
* the cog SDK and coglet, against the versions the predictor is tested with.

The exit status is 1 when the default remix cannot run as configured (a missing or corrupt
file, no GPU unless the CPU is chosen on purpose with ``REMIXER_DEVICE=cpu``, a driver too old
for the torch build), 0 otherwise. ``predict.py``'s ``setup()`` logs the same report and, where
``REMIXER_DEVICE=cuda`` (the Cog image) finds no usable GPU, fails with it
(:func:`device_for`) instead of running on the CPU.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import typing as tp
from dataclasses import dataclass
from pathlib import Path

from remixer.weights import WeightsStore, WeightState
from remixer.weights.store import CLI as WEIGHTS_CLI

__all__ = ["Check", "Report", "run_checks", "device_for", "DEVICE_ENV", "DEVICES", "COG_VERSION",
           "DRIVER_MINIMUMS", "main"]

DEVICE_ENV = "REMIXER_DEVICE"
DEVICES = ("auto", "cuda", "cpu")
# The cog SDK and coglet the predictor's serving (cancellation, slots) is tested with; cog.yaml's
# build.sdk_version pins the SDK, COGLET_WHEEL=pypi:<this> pins coglet at `cog build`.
COG_VERSION = "0.23.1"
# Oldest NVIDIA driver that runs a CUDA major version's wheels (NVIDIA's minor version
# compatibility: 12.x from R525, 13.x from R580).
DRIVER_MINIMUMS = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
# The 3-minute default remix peaked at 12 GiB of GPU memory on an H200 (bench/README.md).
GPU_GIB = 12.0
# Beats are read by All-In-One when these files are present, else by madmom (no sections).
ANALYSIS_GROUP = "allinone"
DEFAULT_GROUP = "remix-default"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ``ok``, ``warn`` (works, but not as well as it
    could) or ``FAIL`` (the default remix cannot run as configured); ``fix`` says what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Report:
    """Every check, and the device the models will run on (None: no usable one)."""

    checks: tuple[Check, ...]
    device: str | None

    @property
    def failed(self) -> bool:
        return any(check.status == "FAIL" for check in self.checks)

    def lines(self) -> list[str]:
        width = max(len(check.name) for check in self.checks)
        out = []
        for check in self.checks:
            out.append(f"{check.status:<4}  {check.name:<{width}}  {check.detail}")
            if check.fix:
                out.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
        return out


def run_checks(store: WeightsStore | None = None, *, environ: tp.Mapping[str, str] = os.environ,
               quick: bool = False, version: str | None = None) -> Report:
    """Run every check.

    Parameters
    ----------
    store : WeightsStore, optional
        The weights cache to check (default: ``$REMIXER_WEIGHTS_DIR`` with its manifest).
    environ : mapping
        Where ``REMIXER_DEVICE``, ``REMIXER_DECODE`` and ``REMIXER_DEFAULT_VERSION`` are read.
    quick : bool
        Judge the weights by their size and verification markers, without hashing them.
    version : str, optional
        The chord model of the default remix (default ``$REMIXER_DEFAULT_VERSION``, else
        ``stereo-chord``).
    """
    store = store or WeightsStore()
    version = version or environ.get("REMIXER_DEFAULT_VERSION", "stereo-chord")
    checks = [Check("python", "ok", f"{platform.python_version()} ({sys.executable})")]
    torch_checks, device = _torch_checks(environ)
    checks += torch_checks
    checks += _audiocraft_checks(environ, device)
    checks += _audio_checks()
    checks += _weights_checks(store, version, quick)
    checks += _cog_checks()
    return Report(tuple(checks), device)


def device_for(report: Report, environ: tp.Mapping[str, str] = os.environ) -> str:
    """The device ``setup()`` loads the models on.

    Raises
    ------
    RuntimeError
        ``REMIXER_DEVICE=cuda`` (the Cog image's setting) without a usable GPU: the doctor's
        findings, instead of a remix that silently runs on the CPU.
    """
    if report.device is None:
        found = "\n".join(f"{c.name}: {c.detail}" + (f" (fix: {c.fix})" if c.fix else "")
                          for c in report.checks if c.name in ("torch", "driver", "gpu"))
        raise RuntimeError(f"{DEVICE_ENV}=cuda but no usable GPU; not running on the CPU without being "
                           f"asked to (set {DEVICE_ENV}=cpu for that):\n{found}")
    return report.device


# -- torch, driver, GPU --------------------------------------------------------------------------


def _wanted_device(environ: tp.Mapping[str, str]) -> str:
    wanted = environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if wanted not in DEVICES:
        raise ValueError(f"{DEVICE_ENV}={wanted!r}: choose one of {', '.join(DEVICES)}")
    return wanted


def _torch_checks(environ: tp.Mapping[str, str]) -> tuple[list[Check], str | None]:
    import torch

    wanted = _wanted_device(environ)
    build = torch.version.cuda
    checks = [Check("torch", "ok", f"{torch.__version__} " + (f"(built for CUDA {build})" if build
                                                              else "(CPU-only build)"))]
    driver = _nvidia_driver()
    needed = DRIVER_MINIMUMS.get(int(build.split(".")[0])) if build else None
    too_old = driver is not None and needed is not None and _parts(driver) < _parts(needed)
    if driver is None:
        checks.append(Check("driver", "ok" if wanted == "cpu" else "warn", "no NVIDIA driver found"))
    elif too_old:
        fix = f"update the NVIDIA driver to {needed} or newer"
        if _parts(driver) >= _parts(DRIVER_MINIMUMS[12]):
            release = torch.__version__.split("+")[0]
            fix += (f", or install torch built for CUDA 12.8: pip install torch=={release} "
                    f"torchaudio=={release} --index-url https://download.pytorch.org/whl/cu128")
        checks.append(Check("driver", "FAIL", f"{driver}, older than the {needed} that torch built for CUDA "
                                              f"{build} needs: torch cannot use the GPU", fix))
    else:
        checks.append(Check("driver", "ok", driver + (f", new enough for CUDA {build} (needs {needed})"
                                                      if needed else "")))

    if torch.cuda.is_available():
        device = "cpu" if wanted == "cpu" else "cuda"
        props = torch.cuda.get_device_properties(0)
        gib = props.total_memory / 2 ** 30
        status = "ok" if gib >= GPU_GIB else "warn"
        fix = "" if status == "ok" else f"a 3-minute remix peaks at {GPU_GIB:g} GiB: use a larger GPU or shorter songs"
        checks.append(Check("gpu", status, f"{props.name}, {gib:.1f} GiB"
                            + (f"; not used: {DEVICE_ENV}=cpu" if device == "cpu" else ""), fix))
    elif wanted == "cpu":
        device = "cpu"
        checks.append(Check("gpu", "warn", f"none; {DEVICE_ENV}=cpu: the models run on the CPU on purpose "
                                           f"(minutes per second of music with the real models)"))
    else:
        device = None if wanted == "cuda" else "cpu"
        why = ("this torch is a CPU-only build" if not build else "no NVIDIA driver" if driver is None
               else "the driver is too old for this torch" if too_old else "torch.cuda.is_available() is False")
        checks.append(Check("gpu", "FAIL", f"no GPU: {why}; the real models would run on the CPU, hours "
                                           f"for a song",
                            f"run on a machine with an NVIDIA GPU (driver {DRIVER_MINIMUMS[12]} or "
                            f"newer; CUDA 12.8 torch wheels), or set {DEVICE_ENV}=cpu to use the CPU on purpose"))
    return checks, device


def _nvidia_driver() -> str | None:
    """The NVIDIA kernel driver's version (``"580.159.04"``), from /proc or nvidia-smi; None
    without one."""
    text = ""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        if shutil.which("nvidia-smi"):
            try:
                text = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                      capture_output=True, text=True, timeout=20).stdout
            except (OSError, subprocess.SubprocessError):
                text = ""
    match = re.search(r"(?<![\d.])\d{3,}\.\d+(?:\.\d+)?", text)
    return match[0] if match else None


def _parts(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


# -- audiocraft, audio ---------------------------------------------------------------------------


def _audiocraft_checks(environ: tp.Mapping[str, str], device: str | None) -> list[Check]:
    try:
        import audiocraft

        from remixer.static_decode import DECODE_ENV, decoder_from_env, resolve_decoder
    except Exception as error:  # a broken install shows here first
        return [Check("audiocraft", "FAIL", f"does not import: {type(error).__name__}: {error}",
                      "reinstall the stack: bash scripts/setup.sh (audiocraft 1.3.0 goes in with --no-deps)")]
    import torch

    checks = [Check("audiocraft", "ok", audiocraft.__version__)]
    try:
        chosen = decoder_from_env(environ)
    except ValueError as error:
        return checks + [Check("decoder", "FAIL", str(error), f"unset {DECODE_ENV} or choose auto")]
    loop = resolve_decoder(chosen, torch.device(device or "cpu"))
    why = {"static": "a preallocated cache, one CUDA graph per step", "audiocraft": "audiocraft's streaming loop"}
    checks.append(Check("decoder", "ok", f"{loop} ({why[loop]}; {DECODE_ENV}={chosen})"))
    return checks


def _audio_checks() -> list[Check]:
    import av

    checks = []
    codecs = {name: name in av.codecs_available for name in ("mp3", "mp3float", "aac", "flac")}
    decodes = "mp3" in av.codecs_available or "mp3float" in av.codecs_available
    libraries = av.library_versions.get("libavcodec", ())
    checks.append(Check("pyav", "ok" if decodes else "FAIL",
                        f"av {av.__version__}, FFmpeg libavcodec {'.'.join(map(str, libraries))}: decodes "
                        + ", ".join(name for name, present in codecs.items() if present),
                        "" if decodes else "reinstall PyAV with its FFmpeg libraries: pip install av==18.1.0"))
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        checks.append(Check("ffmpeg", "warn", "no ffmpeg command (the remix decodes with PyAV; some tools "
                                              "call ffmpeg)", "apt-get install ffmpeg"))
    else:
        try:
            first = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, timeout=20).stdout
            checks.append(Check("ffmpeg", "ok", f"{first.splitlines()[0] if first else '?'} ({ffmpeg})"))
        except (OSError, subprocess.SubprocessError) as error:
            checks.append(Check("ffmpeg", "warn", f"{ffmpeg} does not run: {error}", "apt-get install ffmpeg"))
    return checks


# -- weights -------------------------------------------------------------------------------------


def _weights_checks(store: WeightsStore, version: str, quick: bool) -> list[Check]:
    manifest = store.manifest
    optional = {spec.name for spec in manifest.group(ANALYSIS_GROUP)} \
        if ANALYSIS_GROUP in manifest.groups else set()
    wanted = {spec.name: spec for spec in manifest.group(DEFAULT_GROUP)}
    chord = f"musicgen-{version}"
    if chord in manifest.groups:
        wanted.update((spec.name, spec) for spec in manifest.group(chord))
    states = {row.spec.name: row for row in store.status()}
    checks, missing = [], []
    for name, spec in wanted.items():
        row = states[name]
        size = _size(row.size_on_disk)
        status, detail = "ok", ""
        if row.state in (WeightState.MISSING, WeightState.PARTIAL):
            missing.append(spec)
            partial = f" ({size} of a download)" if row.state == WeightState.PARTIAL else ""
            status = "warn" if name in optional else "FAIL"
            detail = f"missing{partial}: {row.path}"
        elif row.state == WeightState.CORRUPT:
            status, detail = "FAIL", f"{size}, the manifest says {_size(spec.size)}: {row.path}"
        elif row.state == WeightState.VERIFIED:
            detail = f"{size}, " + ("digest verified" if spec.has_digest else "size as in the manifest")
        elif not spec.has_digest:
            detail = f"{size}, present (no size or digest in the manifest to check it against)"
        elif quick:
            detail = f"{size}, present (not verified yet: setup() checks its digest as it loads it)"
        else:
            problem, _ = store.rehash(spec)
            status, detail = ("ok", f"{size}, digest verified") if problem is None else ("FAIL", problem)
        fix = f"{WEIGHTS_CLI} fetch --force {name}" if status == "FAIL" and row.state not in (
            WeightState.MISSING, WeightState.PARTIAL) else ""
        checks.append(Check(f"weights {name}", status, detail, fix))
    required_missing = [spec for spec in missing if spec.name not in optional]
    if required_missing:
        checks.append(Check("weights", "FAIL", f"{len(required_missing)} file(s) of the default remix missing "
                                               f"in {store.root}" + (" (offline mode: nothing is downloaded)"
                                                                     if store.offline else ""),
                            f"{WEIGHTS_CLI} fetch {DEFAULT_GROUP} --dir {store.root}"))
    checks.append(_analysis_check(store, optional, missing))
    checks.append(_disk_check(store, missing))
    return checks


def _analysis_check(store: WeightsStore, optional: set[str], missing: list) -> Check:
    absent = [spec for spec in missing if spec.name in optional]
    if optional and not absent:
        return Check("analysis", "ok", "All-In-One (beats, downbeats and sections)")
    if not store.offline:
        return Check("analysis", "ok", "All-In-One, once setup() has downloaded its weights")
    return Check("analysis", "warn", f"madmom: {len(absent)} All-In-One file(s) missing, so no sections "
                                     f"(section prompts by label are refused)",
                 f"{WEIGHTS_CLI} fetch {ANALYSIS_GROUP} --dir {store.root}")


def _disk_check(store: WeightsStore, missing: list) -> Check:
    where = store.root
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    known = sum(spec.expected_size or 0 for spec in missing)
    unknown = sum(spec.expected_size is None for spec in missing)
    estimated = any(spec.size is None and spec.approx_size is not None for spec in missing)
    detail = f"{free / 2 ** 30:.1f} GiB free in {where}"
    if known:
        detail += f"; the missing files need {'about ' if estimated else ''}{known / 2 ** 30:.1f} GiB"
    if unknown:
        detail += f"; the manifest gives no size for {unknown} missing file(s)"
    if known > free:
        return Check("disk", "FAIL", detail, f"free {(known - free) / 2 ** 30:.1f} GiB, or point "
                                             f"REMIXER_WEIGHTS_DIR at a larger disk")
    return Check("disk", "ok", detail)


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


# -- cog -----------------------------------------------------------------------------------------


def _cog_checks() -> list[Check]:
    checks = []
    for package in ("cog", "coglet"):
        try:
            found = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(package, "ok", "not installed (only serving with Cog needs it)"))
            continue
        if found == COG_VERSION:
            checks.append(Check(package, "ok", found))
        else:
            pin = ("build.sdk_version in cog.yaml" if package == "cog"
                   else f"COGLET_WHEEL=pypi:{COG_VERSION} cog build")
            checks.append(Check(package, "warn", f"{found}; the predictor's cancellation and slots are tested "
                                                 f"with {COG_VERSION}", f"pin it: {pin}"))
    return checks


def main(argv: tp.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remixer.doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="do not hash the weights (markers and sizes only)")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="weights cache (default: $REMIXER_WEIGHTS_DIR, else <repo>/weights)")
    args = parser.parse_args(argv)
    try:
        report = run_checks(WeightsStore(args.weights_dir), quick=args.quick)
    except ValueError as error:  # a bad REMIXER_DEVICE
        print(f"doctor: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    print("the default remix cannot run as configured: see FAIL above" if report.failed
          else f"the default remix can run (on the {report.device})")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
