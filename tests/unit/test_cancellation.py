"""Cancellation stops the models between steps: demucs between chunks, MusicGen between decoding
steps, and leaves them usable (the sampling lock released, the same seed giving the same tokens)."""
from __future__ import annotations

import numpy as np
import pytest

from devtools.tiny import musicgen as fx
from fixtures.cancel import CancelAfter, CountingSources
from remixer.cancellation import CancelToken, Cancelled
from remixer.generation import GenerationParams, Generator
from remixer.musicgen.loaders import load_chord_model, load_encodec, load_text_encoder
from remixer.separation import Separator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> Generator:
    root = tmp_path_factory.mktemp("musicgen")
    fx.t5_dir(root / "t5-base")
    fx.encodec_dir(root / "encodec_32khz")
    fx.chord_checkpoint(root / "musicgen-chord.th")
    return Generator(load_chord_model(root / "musicgen-chord.th", device="cpu",
                                      text_encoder=load_text_encoder(root / "t5-base"),
                                      compression_model=load_encodec(root / "encodec_32khz")))


def test_token_raises_only_once_cancelled_and_is_no_ordinary_exception():
    token = CancelToken()
    token.check()
    token.progress_callback(3, 10)
    assert not token.cancelled
    token.cancel()
    with pytest.raises(Cancelled):
        token.check()
    assert not issubclass(Cancelled, Exception)  # `except Exception` must not swallow it


def test_a_reporting_token_shares_the_flag_and_reports_steps_until_cancelled():
    request, steps = CancelToken(), []
    stage = request.reporting(lambda done, total: steps.append((done, total)))
    stage.progress_callback(1, 4)
    request.cancel()
    assert stage.cancelled
    with pytest.raises(Cancelled):
        stage.progress_callback(2, 4)
    assert steps == [(1, 4)]  # a cancelled step is not reported


def test_separation_stops_at_the_chunk_after_the_cancel():
    model = CountingSources()
    wav = np.random.default_rng(0).standard_normal((2, 10 * 44_100)).astype(np.float32) * 0.1
    token = CancelAfter(steps=2)  # a report per chunk as it ends: cancel at the 2nd
    with pytest.raises(Cancelled):
        Separator(model).separate(wav, 44_100, cancel=token)
    uncancelled, steps = CountingSources(), []
    separator = Separator(uncancelled)
    separator.separate(wav, 44_100, cancel=CancelToken().reporting(lambda *step: steps.append(step)))
    assert model.chunks == 2 and uncancelled.chunks >= 10
    # Every chunk reported once as it ended, of the count known before the first one ran.
    assert steps == [(done, uncancelled.chunks) for done in range(1, uncancelled.chunks + 1)]
    assert separator.chunks(10 * 44_100) == uncancelled.chunks


def test_generation_stops_within_one_step_and_the_model_stays_usable(generator):
    params = GenerationParams(duration=0.5, seed=11)
    before = generator.generate("calm", params).tokens
    token = CancelAfter(steps=5)
    with pytest.raises(Cancelled):
        generator.generate("calm", GenerationParams(duration=60.0, seed=3), cancel=token)
    assert token.seen == 5  # of the 3000+ decoding steps of 60 s
    assert generator._lock.acquire(blocking=False)  # the sampling lock was released
    generator._lock.release()
    np.testing.assert_array_equal(generator.generate("calm", params).tokens, before)


def test_a_cancelled_token_stops_generation_before_the_first_window(generator, monkeypatch):
    windows = []
    sample = generator.model.lm.generate
    monkeypatch.setattr(generator.model.lm, "generate",
                        lambda *args, **kwargs: windows.append(args) or sample(*args, **kwargs))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        generator.generate("calm", GenerationParams(duration=1.0, seed=0), cancel=token)
    assert windows == []  # not even the first window's prompt was run


def test_generation_reports_the_frames_written_of_the_whole_output_across_windows(generator):
    """The tiny model's window is 2 s: 5 s runs in several windows, yet progress runs once from the
    first frame to the output's 250 frames (50 Hz), never backwards."""
    steps: list[tuple[int, int]] = []
    generator.generate("calm", GenerationParams(duration=5.0, seed=0),
                       cancel=CancelToken().reporting(lambda *step: steps.append(step)))
    done = [d for d, _ in steps]
    assert {total for _, total in steps} == {250}
    assert done == sorted(done) and done[-1] == 250 and done[0] < 10
    # More reports than frames: each window also decodes its codebook pattern's extra steps.
    assert len(steps) > 250
