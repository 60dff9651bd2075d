"""Speed at the published sizes without downloads: the random-model builder, the floor, and a CPU
run of ``bench/gpu_smoke.py --random-real-size`` with tiny shapes so the script cannot rot."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from audiocraft.models import builders
from omegaconf import OmegaConf, open_dict

from bench import floor, real_size
from btc.model import BTC, BTCConfig
from devtools.tiny import musicgen as fx
from remixer.generation import ModelCache
from remixer.musicgen.builders import build_chord_model
from remixer.musicgen.loaders import load_chord_model, load_encodec, load_text_encoder

ROOT = Path(__file__).resolve().parents[2]
# checkpoint-formats.md §2.6: parameters of the published chord LMs, BTC included.
DOCUMENTED_PARAMETERS = {"chord": 1_388_662_442, "chord-large": 2_454_517_418,
                         "stereo-chord": 1_413_834_410, "stereo-chord-large": 2_488_080_042}
T5_BASE_DIM = 768


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("speed")
    text_encoder = load_text_encoder(fx.t5_dir(root / "t5-base"))
    encodec = load_encodec(fx.encodec_dir(root / "encodec_32khz"))
    return root, text_encoder, encodec


def _step_bytes(dim: int, layers: int, n_q: int, card: int, *, transformer_bytes: int) -> int:
    """Weights of one decoding step written out: per layer q/k/v + out (4 D²), FFN (8 D²), two
    LayerNorms (4 D); then the float32 output norm (2 D) and n_q float32 heads (card x D)."""
    per_layer = 12 * dim * dim + 4 * dim
    return layers * per_layer * transformer_bytes + 4 * (2 * dim + n_q * card * dim)


# --- the builder ---------------------------------------------------------------------------------

def test_build_chord_model_is_the_loader_without_the_state_dict(shared):
    root, text_encoder, encodec = shared
    checkpoint = fx.chord_checkpoint(root / "musicgen-stereo-chord.th", stereo=True)
    loaded = load_chord_model(checkpoint, device="cpu", text_encoder=text_encoder,
                              compression_model=encodec)
    built = build_chord_model(fx.lm_config(stereo=True), name="musicgen-stereo-chord", device="cpu",
                              text_encoder=text_encoder, compression_model=encodec)
    loaded_state, built_state = loaded.lm.state_dict(), built.lm.state_dict()
    # emb, 8 per layer, out_norm, heads, the two projections, BTC: 627 at the published 48 layers.
    assert len(built_state) == 8 + 8 * fx.LAYERS + 2 + 8 + 4 + 221
    assert {k: (v.shape, v.dtype) for k, v in built_state.items()} == \
        {k: (v.shape, v.dtype) for k, v in loaded_state.items()}
    assert OmegaConf.to_container(built.lm.cfg) == OmegaConf.to_container(loaded.lm.cfg)
    assert (built.sample_rate, built.audio_channels, built.max_duration) == (32000, 2, fx.WINDOW)
    # Random, not the checkpoint's values.
    assert not torch.equal(built_state["linears.0.weight"], loaded_state["linears.0.weight"])


def test_build_chord_model_refuses_a_melody_config(shared):
    _, text_encoder, encodec = shared
    with pytest.raises(ValueError, match=r"musicgen-melody is not a chord model: "
                                         r"conditioners.self_wav.model is 'chroma_stem'"):
        build_chord_model(fx.lm_config(conditioner="chroma_stem"), name="musicgen-melody",
                          device="cpu", text_encoder=text_encoder, compression_model=encodec)


def test_model_cache_serves_an_added_model_without_its_files(shared):
    _, text_encoder, encodec = shared
    model = build_chord_model(fx.lm_config(), name="musicgen-chord", device="cpu",
                              text_encoder=text_encoder, compression_model=encodec)
    cache = ModelCache(store=None, device="cpu")  # any file access would fail on None
    generator = cache.add("chord", model)
    assert cache.get("chord") is generator and generator.model is model
    assert cache.loaded() == [generator]
    with pytest.raises(ValueError, match="model version 'chord' is already loaded"):
        cache.add("chord", model)
    with pytest.raises(ValueError, match=r"add takes a chord version .*got 'melody'"):
        cache.add("melody", model)


# --- the published shapes ------------------------------------------------------------------------

@pytest.mark.parametrize("version", sorted(DOCUMENTED_PARAMETERS))
def test_published_configs_have_the_documented_sizes(version):
    cfg = real_size.lm_config(version)
    with open_dict(cfg):  # audiocraft's LM alone, on the meta device: shapes without memory
        cfg.device, cfg.dtype, cfg.conditioners = "meta", "float16", None
    lm = builders.get_lm_model(cfg)
    dim, n_q = cfg.transformer_lm.dim, cfg.transformer_lm.n_q
    conditioners = (T5_BASE_DIM + 1) * dim + (12 + 1) * dim + sum(
        p.numel() for p in BTC(BTCConfig()).parameters())
    assert sum(p.numel() for p in lm.parameters()) + conditioners == DOCUMENTED_PARAMETERS[version]
    # On a GPU the transformer is float16 and audiocraft keeps the output norm and heads float32.
    assert floor.step_weight_bytes(lm) == _step_bytes(dim, 48, n_q, 2048, transformer_bytes=2)
    assert (cfg.dataset.segment_duration, cfg.transformer_lm.card) == (30.0, 2048)
    delays = [0, 0, 1, 1, 2, 2, 3, 3] if n_q == 8 else [0, 1, 2, 3]
    assert list(cfg.codebooks_pattern.delay.delays) == delays


def test_published_codec_and_text_encoder_shapes():
    assert (real_size.T5_BASE.d_model, real_size.T5_BASE.num_layers, real_size.T5_BASE.vocab_size) == \
        (T5_BASE_DIM, 12, 32128)
    codec = real_size.ENCODEC_32KHZ
    # 2.2 kbps at 50 Hz of 11-bit codes: 4 codebooks of 2048, as the LMs model.
    assert codec.frame_rate == 50 and codec.codebook_size == 2048
    assert round(codec.target_bandwidths[0] * 1000 / (codec.frame_rate * 11)) == 4


def test_random_weights_serve_every_versions_chord_recogniser(tmp_path):
    """The chord stage of every version reads its checkpoint's BTC copy: the random cache must
    hold one for the large versions too (gpu_smoke --random-real-size failed there)."""
    from remixer.pipeline import Models

    store = real_size.write_weights(tmp_path, tiny=True)
    models = Models.load(store, device="cpu", analysis_backend="madmom", preload=())
    for version in real_size.CHORD_VERSIONS:
        recognizer = models.chord_recognizer(version, large_voca=True)
        assert recognizer is not models.recognizers[True]  # its own BTC, from the checkpoint
        assert recognizer.model.config.num_chords == 170


# --- the floor -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "gib", "expected"), [
    ("NVIDIA H200", 139.8, 4800.0), ("NVIDIA H100 80GB HBM3", 79.1, 3350.0),
    ("NVIDIA H100 PCIe", 79.1, 2000.0), ("NVIDIA A100-SXM4-40GB", 39.4, 1555.0),
    ("NVIDIA A100-SXM4-80GB", 79.1, 2039.0), ("NVIDIA A100 80GB PCIe", 79.1, 1935.0),
    ("NVIDIA L40S", 44.4, 864.0), ("NVIDIA A10G", 22.0, 600.0), ("Tesla T4", 14.6, 320.0),
    ("NVIDIA GeForce RTX 4090", 23.6, None)])
def test_gpu_bandwidth_table(name, gib, expected):
    bandwidth = floor.gpu_bandwidth(name, gib)
    assert bandwidth.gb_per_s == expected
    assert ("unknown GPU" in bandwidth.source) == (expected is None)


def test_floor_is_weight_bytes_over_bandwidth():
    assert floor.floor_seconds(2_768_842_752, floor.Bandwidth(4800.0, "H200")) == pytest.approx(
        2_768_842_752 / 4.8e12)
    assert floor.floor_seconds(10, floor.Bandwidth(None, "unknown")) is None


# --- the script on the CPU -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("smoke-out")
    command = [sys.executable, str(ROOT / "bench" / "gpu_smoke.py"), "--random-real-size",
               "--tiny-shapes", "--device", "cpu", "--duration", "1", "2", "--version", "chord",
               "--version", "stereo-chord", "--analysis", "madmom", "--threads", "1", "--quiet",
               "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [path.name for path in sorted((out / "chord-audiocraft-1s").iterdir())] == ["analysis.html", "analysis.json", "analysis.png", "remix.wav"]
    return done.stdout


def _summary_rows(stdout: str) -> dict[tuple[str, str, float], list[str]]:
    rows = stdout.split("\nversion ")[1].splitlines()[1:]
    return {(cells[0], cells[1], float(cells[5])): cells for cells in (row.split() for row in rows)
            if cells and cells[0] in ("chord", "stereo-chord")}


def test_cpu_run_reports_steps_stages_memory_and_the_floor(cpu_run):
    rows = _summary_rows(cpu_run)
    assert sorted(rows) == [("chord", "audiocraft", 1.0), ("chord", "audiocraft", 2.0),
                            ("stereo-chord", "audiocraft", 1.0), ("stereo-chord", "audiocraft", 2.0)]
    for (version, _, seconds), cells in rows.items():
        _, _, params, dtype, mb_step, _, steps, steps_per_s, ms_step, floor_ms, ratio, rtf, peak = cells
        n_q = 8 if version == "stereo-chord" else 4
        # 50 frames per second, plus the 3 steps of the delay pattern's last codebook.
        assert int(steps) == 50 * seconds + 3
        assert dtype == "float32"  # the product's dtype on the CPU
        assert float(mb_step) == pytest.approx(_step_bytes(fx.DIM, fx.LAYERS, n_q, fx.CARD,
                                                           transformer_bytes=4) / 1e6, abs=0.05)
        assert float(ms_step) == pytest.approx(1000 / float(steps_per_s), rel=0.02)
        assert float(ratio.rstrip("x")) == pytest.approx(float(ms_step) / float(floor_ms), rel=0.02)
        assert float(rtf) > 0 and float(peak) > 0.1
    # Exact bytes per step in each version's header.
    for version, n_q in (("chord", 4), ("stereo-chord", 8)):
        expected = _step_bytes(fx.DIM, fx.LAYERS, n_q, fx.CARD, transformer_bytes=4)
        assert f"== {version}, audiocraft decoder: " in cpu_run and f"{expected:,} bytes of weights read per step" in cpu_run


def test_cpu_run_times_every_remix_stage_and_measures_the_bandwidth(cpu_run):
    stages = ("decode", "separation", "chords", "analysis (song)", "chords per window", "generation",
              "analysis (instrumental)", "beat-sync", "mix", "export", "analysis files", "total")
    blocks = re.split(r"^  song (?=\d)", cpu_run, flags=re.M)[1:]
    assert len(blocks) == 4
    for block in blocks:
        found = dict(re.findall(r"^ {4}(\S.*?)\s+(\d+\.\d+) s$", block, re.M))
        assert set(stages) <= set(found)
        parts = sum(float(seconds) for stage, seconds in found.items() if stage != "total")
        assert float(found["total"]) == pytest.approx(parts, abs=0.06)
    assert re.search(r"memory bandwidth \d[\d,]*\.\d GB/s \(measured: numpy copy", cpu_run)


def test_decoders_side_by_side_and_the_greedy_check(tmp_path):
    """Both decoding loops on one model in one run: the same steps, a ratio line, and the greedy
    check agreeing token for token (tiny shapes on the CPU)."""
    command = [sys.executable, str(ROOT / "bench" / "gpu_smoke.py"), "--random-real-size",
               "--tiny-shapes", "--device", "cpu", "--duration", "1", "--version", "stereo-chord",
               "--decoder", "audiocraft", "--decoder", "static", "--check-greedy", "60",
               "--analysis", "madmom", "--threads", "1", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^greedy check stereo-chord \(float32, no autocast\): 60/60 steps equal, all equal;",
                     done.stdout, re.M)
    rows = _summary_rows(done.stdout)
    assert sorted(rows) == [("stereo-chord", "audiocraft", 1.0), ("stereo-chord", "static", 1.0)]
    assert rows["stereo-chord", "audiocraft", 1.0][6] == rows["stereo-chord", "static", 1.0][6] == "53"
    assert re.search(r"^static/audiocraft stereo-chord 1 s: steps/s \d+\.\d\dx, generation "
                     r"\d+\.\d\dx faster, whole remix \d+\.\d s -> \d+\.\d s$", done.stdout, re.M)


@pytest.mark.parametrize(("argv", "message"), [
    (["--duration", "0.5"], "argument --duration: must be at least 1 s, got 0.5"),
    (["--duration", "nan"], "argument --duration: must be at least 1 s, got nan"),
    (["--bandwidth", "-3"], "argument --bandwidth: must be a positive number, got -3"),
    (["--threads", "0"], "argument --threads: must be an integer >= 1, got 0"),
    (["--version", "melody"], "argument --version: invalid choice: 'melody'"),
    (["--decoder", "graphs"], "argument --decoder: invalid choice: 'graphs'"),
    (["--check-greedy", "0"], "argument --check-greedy: must be an integer >= 1, got 0"),
    (["--tiny-shapes"], "--tiny-shapes scales the random models: use it with --random-real-size")])
def test_bad_arguments_are_refused_before_any_model_runs(argv, message, capsys):
    from bench import gpu_smoke

    with pytest.raises(SystemExit) as exit_info:
        gpu_smoke.main(["--device", "cpu", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
