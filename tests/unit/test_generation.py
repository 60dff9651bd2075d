"""MusicGen Chord / Melody loading and generation on tiny checkpoints in the real file formats."""
from __future__ import annotations

import math
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from audiocraft.modules.conditioners import ClassifierFreeGuidanceDropout, ConditioningAttributes
from transformers import T5Tokenizer

from btc.labels import ChordSegment
from btc.model import BTC
from devtools.tiny import musicgen as fx
from devtools.tiny.cache import unpinned_manifest
from devtools.tiny.demucs import tiny_htdemucs
from remixer import chords as chord_grid
from remixer import generation
from remixer.chords import TextChords, WindowChords, WindowReading
from remixer.generation import AudioClip, GenerationParams, Generator, ModelCache
from remixer.musicgen.conditioners import ChordConditioner
from remixer.musicgen.loaders import (load_chord_model, load_encodec, load_mbd, load_melody_model,
                                      load_text_encoder)
from remixer.sections import Window, stride_plan
from remixer.weights import Manifest, MissingWeightsError, WeightsStore

PROGRESSION = TextChords("C G A:min F", bpm=120.0)
CLIP_CHORDS = ("C", "A:min", "F", "G:7", "E:min", "D:min7", "B:dim")


def _readings(starts, seconds: float = 2.0, chord: float = 0.5) -> WindowChords:
    """A reading per window start, each ``seconds`` long with chords every ``chord`` s, each
    window's starting elsewhere in CLIP_CHORDS (so a window given another's would show)."""
    readings = []
    for k, start in enumerate(starts):
        bounds = np.linspace(0.0, seconds, int(round(seconds / chord)) + 1)
        readings.append(WindowReading(start, start, start + seconds, tuple(
            ChordSegment(float(a), float(b), CLIP_CHORDS[(k + i) % len(CLIP_CHORDS)])
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])))))
    return WindowChords(tuple(readings))


SEGMENTS = _readings([0.0])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("musicgen")
    fx.t5_dir(root / "t5-base")
    fx.encodec_dir(root / "encodec_32khz")
    fx.chord_checkpoint(root / "musicgen-chord.th")
    fx.chord_checkpoint(root / "musicgen-stereo-chord.th", stereo=True, seed=1)
    fx.melody_files(root / "musicgen-melody")
    return root


@pytest.fixture(scope="session")
def shared(assets):
    return load_text_encoder(assets / "t5-base"), load_encodec(assets / "encodec_32khz")


@pytest.fixture(scope="session")
def mono(assets, shared) -> Generator:
    text_encoder, encodec = shared
    return Generator(load_chord_model(assets / "musicgen-chord.th", device="cpu",
                                      text_encoder=text_encoder, compression_model=encodec))


@pytest.fixture(scope="session")
def stereo(assets, shared) -> Generator:
    text_encoder, encodec = shared
    return Generator(load_chord_model(assets / "musicgen-stereo-chord.th", device="cpu",
                                      text_encoder=text_encoder, compression_model=encodec))


def _conditioner(generator: Generator) -> ChordConditioner:
    return generator.model.lm.condition_provider.conditioners["self_wav"]


# --- loading ---------------------------------------------------------------------------------------

def test_chord_checkpoint_loads_strictly_with_published_layout(assets, mono, stereo):
    # Published: 619 (mono) / 627 (stereo) keys with 48 layers of 8 keys; the fixture has 2 layers.
    state = mono.model.lm.state_dict()
    assert len(state) == 619 - 8 * (48 - fx.LAYERS)
    assert len(stereo.model.lm.state_dict()) == 627 - 8 * (48 - fx.LAYERS)
    btc_keys = [k for k in state if k.startswith("condition_provider.conditioners.self_wav.chroma.model.")]
    assert len(btc_keys) == 221
    conditioner = _conditioner(mono)
    assert isinstance(conditioner.chroma.model, BTC) and conditioner.chroma.model.config.num_chords == 170
    assert tuple(conditioner.output_proj.weight.shape) == (fx.DIM, 12)
    saved = torch.load(assets / "musicgen-chord.th", weights_only=False)["model"]
    assert torch.equal(state["condition_provider.conditioners.self_wav.chroma.model."
                             "output_layer.output_projection.weight"],
                       saved["condition_provider.conditioners.self_wav.chroma.model."
                             "output_layer.output_projection.weight"])


def test_loader_builds_from_the_edited_config_copy(assets, mono):
    package = torch.load(assets / "musicgen-chord.th", weights_only=False)
    cfg = mono.model.lm.cfg
    # The stored config says cuda; building from it would fail on this CPU-only machine.
    assert package["xp.cfg"].device == "cuda" and cfg.device == "cpu" and cfg.dtype == "float32"
    assert "cache_path" not in cfg.conditioners.self_wav.chroma_chord
    assert "merge_text_conditions_p" not in cfg.conditioners.args
    assert {p.device.type for p in mono.model.lm.parameters()} == {"cpu"}
    assert {p.dtype for p in mono.model.lm.parameters()} == {torch.float32}
    assert _conditioner(mono).chroma_len == 1 + int(fx.WINDOW * 32000) // 4096 == 16


def test_strict_load_names_missing_and_unexpected_keys(assets, shared, tmp_path):
    package = torch.load(assets / "musicgen-chord.th", weights_only=False)
    del package["model"]["condition_provider.conditioners.self_wav.chroma.model.output_layer.lstm.bias_hh_l0"]
    package["model"]["condition_provider.conditioners.self_wav.chroma.spec.window"] = torch.zeros(4)
    torch.save(package, tmp_path / "broken.th")
    with pytest.raises(ValueError, match=r"missing keys .*lstm\.bias_hh_l0.*unexpected keys .*spec\.window"):
        load_chord_model(tmp_path / "broken.th", device="cpu", text_encoder=shared[0],
                         compression_model=shared[1])


def test_missing_files_name_the_file_and_the_fetch_command(assets, shared, tmp_path):
    with pytest.raises(MissingWeightsError, match=r"musicgen-stereo-chord\.th.*fetch musicgen-stereo-chord"):
        load_chord_model(tmp_path / "musicgen-stereo-chord.th", device="cpu", text_encoder=shared[0],
                         compression_model=shared[1])
    t5 = shutil.copytree(assets / "t5-base", tmp_path / "t5-base")
    (t5 / "tokenizer.json").unlink()
    with pytest.raises(MissingWeightsError,
                       match=r"tokenizer\.json.*python -m remixer\.weights fetch t5-base"):
        load_text_encoder(t5)
    encodec = shutil.copytree(assets / "encodec_32khz", tmp_path / "encodec")
    (encodec / "model.safetensors").unlink()
    with pytest.raises(MissingWeightsError, match=r"model\.safetensors.*fetch encodec-32khz"):
        load_chord_model(assets / "musicgen-chord.th", device="cpu", text_encoder=shared[0],
                         compression_model=encodec)


def test_empty_t5_tokenizer_is_refused(assets, tmp_path):
    t5 = shutil.copytree(assets / "t5-base", tmp_path / "t5-base")
    # What transformers 5 builds when it finds no vocabulary: specials and "▁" only.
    T5Tokenizer().save_pretrained(str(t5))
    with pytest.raises(ValueError, match="EMPTY"):
        load_text_encoder(t5)


def test_tiny_t5_tokenizer_reads_words(shared):
    tokenizer = shared[0].tokenizer
    ids = tokenizer("k pop, 4/4", add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids and len(ids) >= 4


# --- conditioning ----------------------------------------------------------------------------------

def test_null_condition_embedding_is_exactly_zero(mono):
    provider = mono.model.lm.condition_provider
    chroma = torch.from_numpy(chord_grid.fit_to_window(
        PROGRESSION.chroma(start=0.0, duration=fx.WINDOW), _conditioner(mono).chroma_len))
    real = [ConditioningAttributes(text={"description": "pop"},
                                   wav={"self_wav": _conditioner(mono).condition(chroma)})]
    null = ClassifierFreeGuidanceDropout(p=1.0)(real)  # the LM's own CFG nullification
    embeds, mask = provider(provider.tokenize(real + null))["self_wav"]
    assert embeds.shape == (2, 16, fx.DIM)
    assert torch.count_nonzero(embeds[1]) == 0 and torch.count_nonzero(mask[1]) == 0
    assert torch.all(mask[0] == 1)
    expected = _conditioner(mono).output_proj(chroma)
    torch.testing.assert_close(embeds[0], expected)


def test_chord_progressions_steer_the_tokens(mono):
    params = GenerationParams(duration=1.0, seed=7)
    first = mono.generate("pop", params, chords=TextChords("C G A:min F", 120.0)).tokens
    again = mono.generate("pop", params, chords=TextChords("C G A:min F", 120.0)).tokens
    other = mono.generate("pop", params, chords=TextChords("F#:min B E:7 A", 120.0)).tokens
    none = mono.generate("pop", params).tokens
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, none)


def test_chroma_coefficient_scales_audio_and_text_chords(mono, monkeypatch):
    seen = _spy_conditioner(mono, monkeypatch)
    for chords in (PROGRESSION, SEGMENTS):
        mono.generate("", GenerationParams(duration=0.5, seed=1), chords=chords, chroma_coefficient=2.0)
        raw = chord_grid.fit_to_window(chords.chroma(start=0.0, duration=fx.WINDOW), 16)
        assert raw.max() == 1.0
        np.testing.assert_array_equal(seen.pop(), 2.0 * raw)


def _spy_conditioner(generator: Generator, monkeypatch) -> list[np.ndarray]:
    """Records the conditional chroma each window feeds the conditioner."""
    conditioner = _conditioner(generator)
    seen: list[np.ndarray] = []
    forward = conditioner.forward

    def spy(x):
        seen.append(x.wav[0, 0].reshape(conditioner.chroma_len, 12).numpy().copy())
        return forward(x)
    monkeypatch.setattr(conditioner, "forward", spy)
    return seen


WINDOW_STARTS = [0.0, 1.2, 2.4, 3.6]  # 5 s with a 2 s window and a 1.2 s stride


@pytest.mark.parametrize("chords", [PROGRESSION, _readings(WINDOW_STARTS)], ids=["text", "audio"])
def test_each_window_gets_the_chroma_of_its_own_span(mono, monkeypatch, chords):
    calls: list[tuple[float, float]] = []
    real = chords.chroma
    seen = _spy_conditioner(mono, monkeypatch)
    result = mono.generate("pop", GenerationParams(duration=5.0, seed=3), chords=_ChordSpy(chords, calls))
    assert result.tokens.shape == (4, 250) and result.audio.shape == (1, 5 * 32000)
    starts = [start for start, _ in calls]
    np.testing.assert_allclose(starts, WINDOW_STARTS)
    spans = [span for _, span in calls]
    np.testing.assert_allclose(spans, [2.0] * 4)  # the whole window, even past the output's end
    assert len(seen) == 4
    for (start, span), chroma in zip(calls, seen):
        expected = chord_grid.fit_to_window(real(start=start, duration=span), 16)
        np.testing.assert_array_equal(chroma, expected)
    assert not np.array_equal(seen[0], seen[1])


class _ChordSpy:
    """A chord source that records the windows it is asked for."""

    def __init__(self, chords, calls: list) -> None:
        self.real, self.calls = chords, calls

    def chroma(self, *, start, duration):
        self.calls.append((start, duration))
        return self.real.chroma(start=start, duration=duration)


@pytest.fixture(scope="module")
def full_window(assets, shared) -> Generator:
    """A tiny chord LM with the published 30 s window (235 chroma frames), for the window loop."""
    text_encoder, encodec = shared
    path = fx.chord_checkpoint(assets.parent / "musicgen-chord-30s.th", window=30.0, layers=1, dim=16)
    return Generator(load_chord_model(path, device="cpu", text_encoder=text_encoder,
                                      compression_model=encodec))


def _window_chroma(generator: Generator, monkeypatch, duration: float, chords) -> list[tuple[float, np.ndarray]]:
    """(start, chroma) of every window of a generation, sampling stubbed out (only conditions matter)."""
    lm, conditioner = generator.model.lm, _conditioner(generator)
    seen: list[tuple[float, np.ndarray]] = []
    steps_done = [0]

    def fake_generate(prompt, conditions, max_gen_len, **kwargs):
        wav = conditions[0].wav["self_wav"].wav
        seen.append((steps_done[0] / generator.model.frame_rate,
                     wav[0, 0].reshape(conditioner.chroma_len, 12).numpy().copy()))
        steps_done[0] += int(generator.extend_stride * generator.model.frame_rate)
        return torch.zeros(1, lm.num_codebooks, max_gen_len, dtype=torch.long)  # prompt included
    monkeypatch.setattr(lm, "generate", fake_generate)
    monkeypatch.setattr(generator.model, "generate_audio", lambda tokens: torch.zeros(1, 1, 1))
    generator.generate("", GenerationParams(duration=duration, seed=0), chords=chords)
    return seen


@pytest.mark.parametrize("duration", [45.0, 100.0])
def test_every_window_gets_the_chords_read_for_it(full_window, monkeypatch, duration):
    starts = [18.0 * k for k in range(math.ceil((duration - 30.0) / 18.0) + 1)]
    chords = _readings(starts, seconds=30.0, chord=1.0)
    windows = _window_chroma(full_window, monkeypatch, duration, chords)
    assert [start for start, _ in windows] == starts
    for (start, chroma), reading in zip(windows, chords.readings):
        assert chroma.shape == (235, 12) and chroma.sum(axis=1).min() > 0
        np.testing.assert_array_equal(chroma, chord_grid.reading_chroma(reading.segments, 30.0))
    assert not np.array_equal(windows[0][1], windows[1][1])


def test_a_reading_shorter_than_the_window_is_tiled(full_window, monkeypatch):
    # An 8 s output read from a 10 s clip: 78 frames, repeated as match_len_on_eval did.
    chords = _readings([0.0], seconds=10.0, chord=1.0)
    [(_, chroma)] = _window_chroma(full_window, monkeypatch, 8.0, chords)
    raw = chord_grid.reading_chroma(chords.readings[0].segments, 30.0)
    assert raw.shape == (78, 12)
    np.testing.assert_array_equal(chroma, chord_grid.fit_to_window(raw))
    np.testing.assert_array_equal(chroma[78:156], raw)


def test_an_all_n_source_gives_silent_chroma(full_window, monkeypatch):
    silent = WindowChords(tuple(WindowReading(start, start, start + 30.0, (ChordSegment(0.0, 30.0, "N"),))
                                for start in (0.0, 18.0)))
    windows = _window_chroma(full_window, monkeypatch, 45.0, silent)
    assert len(windows) == 2 and all(chroma.max() == 0 for _, chroma in windows)


def test_a_window_without_a_reading_is_an_error(full_window):
    with pytest.raises(ValueError, match="no chords were read for a window at 18"):
        full_window.generate("", GenerationParams(duration=45.0, seed=0), chords=_readings([0.0], 30.0))


def test_window_chords_need_a_reading():
    with pytest.raises(ValueError, match="at least one window"):
        WindowChords(())


# --- generation ------------------------------------------------------------------------------------

def _spy_lm(generator: Generator, monkeypatch) -> list[tuple[int, int, str]]:
    """Records each window's (prompt frames, max_gen_len, description) as the LM receives them."""
    lm = generator.model.lm
    calls: list[tuple[int, int, str]] = []
    generate = lm.generate

    def spy(prompt, conditions, max_gen_len, **kwargs):
        calls.append((0 if prompt is None else prompt.shape[-1], max_gen_len, conditions[0].text["description"]))
        return generate(prompt, conditions, max_gen_len=max_gen_len, **kwargs)
    monkeypatch.setattr(lm, "generate", spy)
    return calls


def test_generator_follows_a_window_plan(mono, monkeypatch):
    plan = (Window(0.0, 0.0, 0.8, "intro", "soft"), Window(0.0, 0.8, 2.0, "verse", "loud"),
            Window(1.0, 2.0, 3.0, "verse", "loud"))
    calls = _spy_lm(mono, monkeypatch)
    params = GenerationParams(duration=3.0, seed=2)
    planned = mono.generate("unused", params, chords=PROGRESSION, plan=plan)
    # Window k re-reads [start, new_start) and writes up to new_end (50 frames a second).
    assert calls == [(0, 40, "soft"), (40, 100, "loud"), (50, 100, "loud")]
    assert planned.tokens.shape == (4, 150) and planned.audio.shape == (1, 3 * 32000)
    calls.clear()
    default = mono.generate("pop", params, chords=PROGRESSION)
    assert calls == [(0, 100, "pop"), (40, 90, "pop")]
    assert not np.array_equal(planned.tokens, default.tokens)
    # The default is audiocraft's stride, as an explicit plan gives it.
    same = stride_plan(3.0, "pop", window=mono.window, stride=mono.extend_stride, frame_rate=50)
    assert np.array_equal(mono.generate("x", params, chords=PROGRESSION, plan=same).tokens, default.tokens)
    with pytest.raises(ValueError, match="the plan ends at 3 s, the output at 4 s"):
        mono.generate("pop", GenerationParams(duration=4.0), plan=plan)
    with pytest.raises(ValueError, match="cannot continue an audio prompt"):
        mono.generate("pop", params, plan=plan, prompt=AudioClip(np.zeros((1, 3200), np.float32), 32000))


def test_seed_is_reported_and_reproduces_the_output(mono):
    drawn = mono.generate("pop", GenerationParams(duration=0.5))
    assert 0 <= drawn.seed < 2 ** 32
    replay = mono.generate("pop", GenerationParams(duration=0.5, seed=drawn.seed))
    assert np.array_equal(drawn.tokens, replay.tokens)
    np.testing.assert_array_equal(drawn.audio, replay.audio)
    zero = mono.generate("pop", GenerationParams(duration=0.5, seed=0))
    assert zero.seed == 0
    assert np.array_equal(zero.tokens, mono.generate("pop", GenerationParams(duration=0.5, seed=0)).tokens)
    one = mono.generate("pop", GenerationParams(duration=0.5, seed=1))
    assert not np.array_equal(zero.tokens, one.tokens)


def test_mono_short_output(mono):
    result = mono.generate("lofi hip hop beat", GenerationParams(duration=1.0, seed=5), chords=SEGMENTS)
    assert result.sample_rate == 32000 and result.audio.dtype == np.float32
    assert result.audio.shape == (1, 32000) and np.isfinite(result.audio).all()
    assert result.tokens.shape == (4, 50) and result.tokens.min() >= 0 and result.tokens.max() < fx.CARD


def test_stereo_windowed_output(stereo, shared):
    result = stereo.generate("k pop", GenerationParams(duration=3.0, seed=2), chords=PROGRESSION)
    assert result.audio.shape == (2, 3 * 32000) and result.tokens.shape == (8, 150)
    left, right = result.tokens[0::2], result.tokens[1::2]  # streams L0 R0 L1 R1 ...
    assert not np.array_equal(left, right)
    for channel, codes in enumerate((left, right)):
        decoded = shared[1].decode(torch.from_numpy(codes)[None])[0, 0].detach().numpy()
        np.testing.assert_allclose(result.audio[channel], decoded, atol=1e-5)


def test_continuation_keeps_the_prompt_tokens(mono):
    rng = np.random.default_rng(0)
    prompt = AudioClip(rng.standard_normal((2, 22050)).astype(np.float32) * 0.1, 44100)  # 0.5 s stereo
    encoded, _ = mono.model.compression_model.encode(prompt.tensor(32000, 1))
    for duration, chords in ((1.5, None), (3.5, PROGRESSION)):
        params = GenerationParams(duration=duration, seed=4)
        result = mono.generate("pop", params, prompt=prompt, chords=chords)
        assert result.tokens.shape == (4, int(duration * 50))
        np.testing.assert_array_equal(result.tokens[:, :25], encoded[0].numpy())
    with pytest.raises(ValueError, match="audio prompt lasts 2.50 s"):
        too_long = AudioClip(np.zeros((1, 80000), np.float32), 32000)
        mono.generate("pop", GenerationParams(duration=4.0), prompt=too_long)


def test_melody_model_follows_a_waveform(assets, shared):
    files = assets / "musicgen-melody"
    lm_path, codec_path = files / "state_dict.bin", files / "compression_state_dict.bin"
    model = load_melody_model(lm_path, codec_path, device="cpu", text_encoder=shared[0],
                              stem_model=tiny_htdemucs())
    assert "condition_provider.conditioners.self_wav.chroma.spec.window" in model.lm.state_dict()
    melody_gen = Generator(model)
    t = np.arange(32000) / 32000
    melody = AudioClip(np.sin(2 * np.pi * 440 * t)[None].astype(np.float32), 32000)
    params = GenerationParams(duration=1.0, seed=3)
    result = melody_gen.generate("piano", params, melody=melody)
    assert result.audio.shape == (1, 32000) and result.tokens.shape == (4, 50)
    assert not np.array_equal(result.tokens, melody_gen.generate("piano", params).tokens)
    with pytest.raises(ValueError, match="does not take chords"):
        melody_gen.generate("piano", params, chords=PROGRESSION)


def test_multi_band_diffusion_decodes_the_same_tokens(mono, tmp_path):
    mbd = load_mbd(fx.mbd_file(tmp_path / "mbd.th"), fx.audiocraft_codec_file(tmp_path / "codec.bin"),
                   device="cpu")
    params = GenerationParams(duration=0.5, seed=6)
    plain = mono.generate("pop", params, chords=PROGRESSION)
    diffused = mono.generate("pop", params, chords=PROGRESSION, mbd=mbd)
    assert np.array_equal(plain.tokens, diffused.tokens)
    assert diffused.audio.shape == (1, 16000) and np.isfinite(diffused.audio).all()
    assert not np.allclose(plain.audio, diffused.audio)
    with pytest.raises(MissingWeightsError, match="fetch mbd"):
        load_mbd(tmp_path / "absent.th", tmp_path / "codec.bin", device="cpu")


def test_request_errors_are_clear(mono, stereo):
    melody = AudioClip(np.zeros((1, 3200), np.float32), 32000)
    with pytest.raises(ValueError, match="does not take a melody"):
        mono.generate("pop", GenerationParams(duration=1.0), melody=melody)
    with pytest.raises(ValueError, match="mono models only"):
        stereo.generate("pop", GenerationParams(duration=1.0), mbd=object())
    with pytest.raises(ValueError, match="chroma_coefficient"):
        mono.generate("pop", GenerationParams(duration=1.0), chords=PROGRESSION, chroma_coefficient=0.0)
    with pytest.raises(ValueError, match="bpm"):
        mono.generate("pop", GenerationParams(duration=1.0), chords=TextChords("C G", bpm=0.0))


@pytest.mark.parametrize("kwargs, message", [
    ({"duration": 0.0}, "duration"), ({"duration": float("nan")}, "duration"),
    ({"duration": 1.0, "top_k": -1}, "top_k"), ({"duration": 1.0, "top_p": 1.5}, "top_p"),
    ({"duration": 1.0, "temperature": -0.1}, "temperature"), ({"duration": 1.0, "seed": -1}, "seed"),
    ({"duration": 1.0, "seed": 2 ** 32}, "seed"), ({"duration": 1.0, "seed": 1.5}, "seed"),
])
def test_generation_params_reject_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerationParams(**kwargs)


def test_model_cache_loads_each_version_once_across_threads(assets, tmp_path, monkeypatch):
    manifest = Manifest.load(unpinned_manifest(tmp_path / "manifest.json"))
    store = WeightsStore(tmp_path / "weights", offline=True, manifest=manifest)
    for name, source in (("musicgen-chord", assets / "musicgen-chord.th"),
                         ("t5-base-config", assets / "t5-base" / "config.json"),
                         ("t5-base-spiece", assets / "t5-base" / "spiece.model"),
                         ("t5-base-tokenizer", assets / "t5-base" / "tokenizer.json"),
                         ("t5-base-model", assets / "t5-base" / "model.safetensors"),
                         ("encodec-32khz-config", assets / "encodec_32khz" / "config.json"),
                         ("encodec-32khz-model", assets / "encodec_32khz" / "model.safetensors")):
        store.target(name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, store.target(name))
    loads = []
    real = generation.load_chord_model
    monkeypatch.setattr(generation, "load_chord_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    cache = ModelCache(store, device="cpu")
    got: list[Generator] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("chord"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len(got) == 3 and all(g is got[0] for g in got)
    assert cache.get("chord").generate("pop", GenerationParams(duration=0.5, seed=0)).tokens.shape == (4, 25)
    with pytest.raises(MissingWeightsError, match="musicgen-stereo-chord"):
        cache.get("stereo-chord")
    with pytest.raises(ValueError, match="unknown model version"):
        cache.get("chord-xl")
