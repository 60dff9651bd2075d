"""remixer.doctor: each check's line and fix, the exit status, and setup()'s refusal to run a GPU
image on the CPU. The machine's GPU and driver are faked where a test needs one."""
from __future__ import annotations

import hashlib
import json
import logging
import types
from pathlib import Path

import pytest
import torch

from devtools.tiny.cache import build_tiny_weights
from remixer import doctor
from remixer.weights import Manifest, WeightsStore

CPU = {"REMIXER_DEVICE": "cpu"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> WeightsStore:
    root = tmp_path_factory.mktemp("weights")
    manifest = build_tiny_weights(root)
    return WeightsStore(root, offline=True, manifest=Manifest.load(manifest))


def _checks(report: doctor.Report, prefix: str) -> list[doctor.Check]:
    return [check for check in report.checks if check.name == prefix or check.name.startswith(prefix + " ")]


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(doctor, "_nvidia_driver", lambda: None)


@pytest.fixture
def gpu(monkeypatch):
    """An 80 GiB GPU on driver 580.159.04."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: types.SimpleNamespace(name="NVIDIA H100", total_memory=80 * 2 ** 30))
    monkeypatch.setattr(doctor, "_nvidia_driver", lambda: "580.159.04")
    monkeypatch.setattr(torch.version, "cuda", "13.0")


def test_without_a_gpu_the_report_fails_and_says_what_to_do(tiny, no_gpu):
    report = doctor.run_checks(tiny, environ={})
    gpu, = _checks(report, "gpu")
    assert gpu.status == "FAIL" and gpu.detail.startswith("no GPU: no NVIDIA driver")
    assert "REMIXER_DEVICE=cpu" in gpu.fix and "525.60.13" in gpu.fix
    assert report.failed and report.device == "cpu"  # auto: a bare checkout still runs, slowly
    # On purpose, the CPU is no failure.
    chosen = doctor.run_checks(tiny, environ=CPU)
    assert not chosen.failed and chosen.device == "cpu" and _checks(chosen, "gpu")[0].status == "warn"


def test_a_gpu_image_refuses_the_cpu_with_the_doctors_findings(tiny, no_gpu):
    report = doctor.run_checks(tiny, environ={"REMIXER_DEVICE": "cuda"})
    assert report.device is None
    with pytest.raises(RuntimeError) as error:
        doctor.device_for(report)
    message = str(error.value)
    assert message.startswith("REMIXER_DEVICE=cuda but no usable GPU")
    assert "gpu: no GPU: no NVIDIA driver" in message and "set REMIXER_DEVICE=cpu" in message
    with pytest.raises(ValueError, match="REMIXER_DEVICE='gpu': choose one of auto, cuda, cpu"):
        doctor.run_checks(tiny, environ={"REMIXER_DEVICE": "gpu"})


def test_a_gpu_its_memory_and_a_new_enough_driver(tiny, gpu):
    report = doctor.run_checks(tiny, environ={})
    assert report.device == "cuda" and not report.failed
    assert _checks(report, "gpu")[0] == doctor.Check("gpu", "ok", "NVIDIA H100, 80.0 GiB")
    assert _checks(report, "driver")[0].detail == "580.159.04, new enough for CUDA 13.0 (needs 580.65.06)"
    assert _checks(report, "decoder")[0].detail.startswith("static (")
    assert doctor.device_for(report) == "cuda"


def test_a_driver_too_old_for_the_torch_build(tiny, gpu, monkeypatch):
    # The failure issue 20 is about: CUDA 13 wheels on a 535 driver leave torch on the CPU.
    monkeypatch.setattr(doctor, "_nvidia_driver", lambda: "535.104.05")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    report = doctor.run_checks(tiny, environ={})
    driver, gpu = _checks(report, "driver")[0], _checks(report, "gpu")[0]
    assert driver.status == "FAIL"
    assert driver.detail == "535.104.05, older than the 580.65.06 that torch built for CUDA 13.0 needs: torch " \
                            "cannot use the GPU"
    assert "update the NVIDIA driver to 580.65.06" in driver.fix and "whl/cu128" in driver.fix
    assert gpu.detail.startswith("no GPU: the driver is too old for this torch")
    # CUDA 12.8 wheels (the image's) run on it.
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _checks(doctor.run_checks(tiny, environ={}), "driver")[0].status == "ok"


def test_a_small_gpu_is_a_warning(tiny, gpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: types.SimpleNamespace(name="RTX 3080", total_memory=10 * 2 ** 30))
    check = _checks(doctor.run_checks(tiny, environ={}), "gpu")[0]
    assert check.status == "warn" and "peaks at 12 GiB" in check.fix


def test_tiny_weights_are_reported_present_and_all_in_one_missing_means_madmom(tiny, no_gpu):
    report = doctor.run_checks(tiny, environ=CPU)
    files = {check.name.removeprefix("weights "): check for check in _checks(report, "weights")}
    required = [spec.name for spec in tiny.manifest.group("remix-default") if not spec.name.startswith("allinone")]
    assert len(required) == 10
    for name in required:
        assert files[name].status == "ok" and files[name].detail.endswith(
            "present (no size or digest in the manifest to check it against)"), files[name]
    assert [files[f"allinone-harmonix-fold{i}"].status for i in range(8)] == ["warn"] * 8
    analysis = _checks(report, "analysis")[0]
    assert analysis.status == "warn" and analysis.detail.startswith("madmom: 8 All-In-One file(s) missing")
    assert analysis.fix == f"python -m remixer.weights fetch allinone --dir {tiny.root}"


def test_missing_weights_fail_with_the_fetch_command(tmp_path, no_gpu):
    store = WeightsStore(tmp_path / "empty", offline=True)
    report = doctor.run_checks(store, environ=CPU)
    summary = [check for check in report.checks if check.name == "weights"]
    assert summary == [doctor.Check(
        "weights", "FAIL", f"10 file(s) of the default remix missing in {store.root} (offline mode: nothing is "
                           f"downloaded)", f"python -m remixer.weights fetch remix-default --dir {store.root}")]
    stereo = _checks(report, "weights musicgen-stereo-chord")[0]
    assert stereo.status == "FAIL" and stereo.detail == (
        f"missing: {store.root / 'musicgen-chord/musicgen-stereo-chord.th'}")
    disk = _checks(report, "disk")[0]
    # Exact sizes and estimates add up; the files no source gives a size for are counted.
    default = store.manifest.group(doctor.DEFAULT_GROUP)
    unsized = sum(spec.expected_size is None for spec in default)
    assert 0 < unsized < len(default)
    assert disk.status == "ok" and "GiB free in" in disk.detail and "the missing files need about " in disk.detail
    assert f"no size for {unsized} missing file(s)" in disk.detail


def _manifest_with(tmp_path: Path, content: bytes, recorded: bytes) -> WeightsStore:
    """A one-file remix-default whose manifest records the digest of ``recorded``."""
    (tmp_path / "cache").mkdir(parents=True)
    (tmp_path / "cache" / "lm.th").write_bytes(content)
    entry = {"name": "lm", "path": "lm.th", "urls": ["https://example.com/lm.th"], "license": "MIT",
             "description": "a model", "size": len(recorded), "sha256": hashlib.sha256(recorded).hexdigest()}
    manifest = {"files": [entry], "groups": {"remix-default": {"description": "d", "files": ["lm"]}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return WeightsStore(tmp_path / "cache", offline=True, manifest=Manifest.load(tmp_path / "manifest.json"))


def test_digests_are_verified_or_the_file_is_named_with_its_fix(tmp_path, no_gpu):
    good = _manifest_with(tmp_path / "good", b"weights!", b"weights!")
    assert _checks(doctor.run_checks(good, environ=CPU, quick=True), "weights lm")[0].detail == \
        "8 B, present (not verified yet: setup() checks its digest as it loads it)"
    assert _checks(doctor.run_checks(good, environ=CPU), "weights lm")[0] == doctor.Check(
        "weights lm", "ok", "8 B, digest verified")
    bad = _manifest_with(tmp_path / "bad", b"WEIGHTS!", b"weights!")
    check = _checks(doctor.run_checks(bad, environ=CPU), "weights lm")[0]
    assert check.status == "FAIL" and check.detail.startswith("sha256 mismatch: expected ")
    assert check.fix == "python -m remixer.weights fetch --force lm"
    truncated = _manifest_with(tmp_path / "short", b"wei", b"weights!")
    assert _checks(doctor.run_checks(truncated, environ=CPU, quick=True), "weights lm")[0].detail.startswith(
        "3 B, the manifest says 8 B")


def test_cog_versions_against_the_tested_ones(tiny, no_gpu, monkeypatch):
    assert [(c.name, c.status, c.detail) for c in doctor.run_checks(tiny, environ=CPU).checks
            if c.name in ("cog", "coglet")] == [("cog", "ok", "0.23.1"), ("coglet", "ok", "0.23.1")]
    monkeypatch.setattr(doctor.importlib.metadata, "version", lambda package: "0.24.0")
    coglet = _checks(doctor.run_checks(tiny, environ=CPU), "coglet")[0]
    assert coglet.status == "warn" and coglet.fix == "pin it: COGLET_WHEEL=pypi:0.23.1 cog build"


def test_main_prints_every_check_and_exits_1_when_the_remix_cannot_run(tiny, no_gpu, monkeypatch, capsys):
    monkeypatch.setenv("REMIXER_WEIGHTS_MANIFEST", str(tiny.manifest.source))
    monkeypatch.setenv("REMIXER_OFFLINE", "1")
    monkeypatch.delenv("REMIXER_DEVICE", raising=False)
    assert doctor.main(["--weights-dir", str(tiny.root), "--quick"]) == 1
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[1] for line in lines if line[:4] in ("ok  ", "warn", "FAIL")]
    assert names[:9] == ["python", "torch", "driver", "gpu", "audiocraft", "decoder", "pyav", "ffmpeg", "weights"]
    assert names[-4:] == ["analysis", "disk", "cog", "coglet"]
    assert lines[-1] == "the default remix cannot run as configured: see FAIL above"
    monkeypatch.setenv("REMIXER_DEVICE", "cpu")
    assert doctor.main(["--weights-dir", str(tiny.root), "--quick"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "the default remix can run (on the cpu)"


@pytest.fixture
def restored_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_setup_of_a_gpu_image_without_a_gpu_fails_before_loading_any_model(tiny, no_gpu, monkeypatch,
                                                                           restored_logging, capsys):
    from predict import Models, Predictor

    monkeypatch.setenv("REMIXER_WEIGHTS_DIR", str(tiny.root))
    monkeypatch.setenv("REMIXER_WEIGHTS_MANIFEST", str(tiny.manifest.source))
    monkeypatch.setenv("REMIXER_DEVICE", "cuda")
    monkeypatch.setattr(Models, "load", classmethod(lambda *a, **k: pytest.fail("loaded models on the CPU")))
    with pytest.raises(RuntimeError, match="REMIXER_DEVICE=cuda but no usable GPU"):
        Predictor().setup()
    logged = capsys.readouterr().out
    assert "doctor: FAIL  gpu" in logged and "doctor: ok    weights musicgen-stereo-chord" in logged
