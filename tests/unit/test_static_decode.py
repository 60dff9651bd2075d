"""The static decoder gives audiocraft's tokens: greedy and sampled, with and without a prompt,
prepended and cross-attended conditions, across cache buckets, windows and calls."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from devtools.tiny import musicgen as fx
from remixer.chords import TextChords
from remixer.generation import GenerationParams, Generator, ModelCache
from remixer.musicgen.builders import build_chord_model
from remixer.musicgen.loaders import load_chord_model, load_encodec, load_text_encoder
from remixer.static_decode import (BUCKET, DECODE_ENV, StaticDecoder, decoder_from_env,
                                   resolve_decoder, unsupported)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHORDS = TextChords("C G A:min F", bpm=120.0)
GREEDY = dict(use_sampling=False, top_k=1)
TOP_K = dict(use_sampling=True, top_k=20)
TOP_P = dict(use_sampling=True, top_k=0, top_p=0.9)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("static-decode")
    fx.t5_dir(root / "t5-base")
    fx.encodec_dir(root / "encodec_32khz")
    fx.chord_checkpoint(root / "mono.th")
    fx.chord_checkpoint(root / "stereo.th", stereo=True, seed=1)
    return root, load_text_encoder(root / "t5-base"), load_encodec(root / "encodec_32khz")


def _model(shared, name: str):
    root, text_encoder, encodec = shared
    return load_chord_model(root / name, device="cpu", text_encoder=text_encoder, compression_model=encodec)


@pytest.fixture(scope="module")
def cross_model(shared):
    """A chord LM whose text is cross-attended (as the stock melody models do), every weight random."""
    _, text_encoder, encodec = shared
    cfg = fx.lm_config()
    cfg.transformer_lm.cross_attention = True
    cfg.fuser.prepend, cfg.fuser.cross = ["self_wav"], ["description"]
    model = build_chord_model(cfg, name="cross", device="cpu", text_encoder=text_encoder,
                              compression_model=encodec)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for parameter in model.lm.parameters():
            parameter.data.normal_(0.0, 0.05)  # audiocraft zero-initialises biases: exercise them
    return model


def _attributes(model, description: str = "lofi, bpm : 120"):
    condition = Generator(model)._condition_maker(GenerationParams(duration=4), CHORDS, 1.0, None)
    return condition(0.0, description)


def _both(model, decoder: StaticDecoder, prompt, attributes, length: int, sampling: dict):
    torch.manual_seed(3)
    reference = model.lm.generate(prompt, [attributes], max_gen_len=length, cfg_coef=3.0,
                                  two_step_cfg=False, **sampling)
    torch.manual_seed(3)
    ours = decoder.generate(prompt, [attributes], max_gen_len=length, cfg_coef=3.0, **sampling)
    return reference, ours


@pytest.mark.parametrize("name", ["mono.th", "stereo.th"])
@pytest.mark.parametrize("sampling", [GREEDY, TOP_K, TOP_P], ids=["greedy", "top_k", "top_p"])
def test_same_tokens_as_audiocraft(shared, name, sampling):
    model = _model(shared, name)
    decoder = StaticDecoder(model.lm)
    attributes = _attributes(model)
    for prompt_steps in (0, 7):
        prompt = None
        if prompt_steps:
            prompt = torch.randint(0, model.lm.card, (1, model.lm.num_codebooks, prompt_steps),
                                   generator=torch.Generator().manual_seed(5))
        reference, ours = _both(model, decoder, prompt, attributes, 120, sampling)
        assert ours.shape == reference.shape == (1, model.lm.num_codebooks, 120)
        assert torch.equal(ours, reference), f"prompt of {prompt_steps} steps"
        if prompt is not None:
            assert torch.equal(ours[..., :prompt_steps], prompt)


def test_cross_attention_and_bucket_edges(cross_model):
    """400 steps after a prefix of ~250 positions cross two cache buckets."""
    decoder = StaticDecoder(cross_model.lm)
    attributes = _attributes(cross_model, "solo piano, bpm : 120")
    for sampling in (GREEDY, TOP_K):
        reference, ours = _both(cross_model, decoder, None, attributes, 400, sampling)
        assert torch.equal(ours, reference)
    assert decoder._cache is not None and decoder._cache.length % BUCKET == 0
    assert decoder._cache.length >= 400


def test_cache_is_reused_and_grown_between_calls(shared):
    model = _model(shared, "mono.th")
    decoder = StaticDecoder(model.lm)
    attributes = _attributes(model)
    _both(model, decoder, None, attributes, 30, GREEDY)
    small = decoder._cache.keys[0]
    reference, ours = _both(model, decoder, None, _attributes(model, "a longer description, bpm : 96"),
                            30, TOP_K)
    assert torch.equal(ours, reference)
    assert decoder._cache.keys[0] is small  # same bucket: no new allocation
    reference, ours = _both(model, decoder, None, attributes, 2 * BUCKET, GREEDY)
    assert torch.equal(ours, reference)
    assert decoder._cache.length >= 2 * BUCKET and decoder._cache.keys[0] is not small


def test_generator_windows_match_audiocraft_and_report_progress(shared):
    """A 40 s generation runs in several windows that re-read what came before: same tokens,
    same audio, and the same progress calls (what cancellation hangs on) as audiocraft's loop."""
    model = _model(shared, "stereo.th")
    params = GenerationParams(duration=40.0, top_k=20, seed=11)
    plain, static = Generator(model), Generator(model, decoder="static")
    assert (plain.decoder, static.decoder) == ("audiocraft", "static")

    class Progress:
        def __init__(self):
            self.steps: list[tuple[int, int]] = []

        def check(self):
            pass

        def progress_callback(self, done, total):
            self.steps.append((done, total))

    seen, ours = Progress(), Progress()
    expected = plain.generate("lofi", params, chords=CHORDS, cancel=seen)
    result = static.generate("lofi", params, chords=CHORDS, cancel=ours)
    assert result.tokens.shape == expected.tokens.shape == (8, 2000)
    np.testing.assert_array_equal(result.tokens, expected.tokens)
    np.testing.assert_allclose(result.audio, expected.audio, atol=1e-6)
    assert ours.steps == seen.steps
    # The windows' steps, reported as one rising count of the output's frames.
    done = [step for step, _ in ours.steps]
    assert done == sorted(done) and ours.steps[-1] == (2000, 2000)


def test_unsupported_lm_is_named_and_refused(shared):
    _, text_encoder, encodec = shared
    cfg = fx.lm_config()
    cfg.transformer_lm.memory_efficient = False
    model = build_chord_model(cfg, name="plain", device="cpu", text_encoder=text_encoder,
                              compression_model=encodec)
    assert "memory_efficient" in unsupported(model.lm)
    with pytest.raises(ValueError, match="does not support this LM: attention without memory_efficient"):
        StaticDecoder(model.lm)
    assert Generator(model, decoder="static").decoder == "audiocraft"  # falls back, with a warning
    with pytest.raises(ValueError, match="CUDA graphs need the LM on a CUDA device"):
        StaticDecoder(_model(shared, "mono.th").lm, graphs=True)
    with pytest.raises(ValueError, match="two_step_cfg=False"):
        StaticDecoder(_model(shared, "mono.th").lm).generate(None, [], 10, two_step_cfg=True)


def test_decoder_choice_from_the_environment(tmp_path):
    assert decoder_from_env({}) == "auto"
    assert decoder_from_env({DECODE_ENV: " Static "}) == "static"
    with pytest.raises(ValueError, match="REMIXER_DECODE='graphs': choose one of auto, audiocraft, static"):
        decoder_from_env({DECODE_ENV: "graphs"})
    with pytest.raises(ValueError, match="decoder must be one of auto, audiocraft, static, got 'fast'"):
        Generator.__init__(Generator.__new__(Generator), _FakeModel(), decoder="fast")
    assert resolve_decoder("auto", torch.device("cuda")) == "static"
    assert resolve_decoder("auto", torch.device("cpu")) == "audiocraft"
    assert ModelCache(None, device="cpu", decoder="static").decoder == "static"
    assert ModelCache(None, device="cpu", decoder="auto").decoder == "audiocraft"


class _FakeModel:
    max_duration = 30.0
    device = "cpu"
