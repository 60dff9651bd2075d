"""btc.features + btc.recognizer: input handling, batching, timestamps, outputs, and a trained end-to-end check."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from btc.features import FRAME_SECONDS, cqt_features
from btc.labels import ChordSegment
from btc.model import BTC, BTCConfig
from btc.recognizer import ChordRecognizer
from devtools.tiny.btc import (
    frame_truth, random_progression, synth_progression, train_tiny_recognizer,
    write_checkpoint,
)


@pytest.fixture(scope="module")
def random_recognizer() -> ChordRecognizer:
    """Small 25-class BTC with random weights (the full size is covered in test_btc_model.py)."""
    torch.manual_seed(7)
    config = BTCConfig(hidden_size=32, num_layers=2, total_key_depth=32, total_value_depth=32,
                       filter_size=32, num_chords=25)
    return ChordRecognizer(BTC(config), mean=-5.0, std=2.0)


@pytest.fixture(scope="module")
def trained() -> ChordRecognizer:
    return train_tiny_recognizer(seed=0)


def _noise(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sample_rate))).astype(np.float32)


def _contiguous(segments: list[ChordSegment], duration: float) -> None:
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(duration)
    for before, after in zip(segments, segments[1:]):
        assert before.end == after.start and before.start < before.end and before.label != after.label


def test_features_one_pass_shape_and_values():
    wav = _noise(12.0, 44100)
    features = cqt_features(wav, 44100)
    # 12 s at 22050 Hz = 264600 samples -> 1 + 264600 // 2048 frames.
    assert features.shape == (130, 144) and features.dtype == np.float32
    assert cqt_features(np.zeros(22050, np.float32), 22050).max() == pytest.approx(np.log(1e-6))
    # A 440 Hz tone peaks in the A4 bin: C1 + 24 bins/octave * (log2(440/32.70)).
    tone = np.sin(2 * np.pi * 440 * np.arange(22050 * 2) / 22050).astype(np.float32)
    assert int(np.median(cqt_features(tone, 22050)[3:-3].argmax(axis=1))) == round(24 * np.log2(440 / 32.7032))


@pytest.mark.parametrize("wav, sample_rate, message", [
    (np.array([0.0, np.nan], np.float32), 22050, "NaN/Inf"),
    (np.zeros(0, np.float32), 22050, "empty"),
    (np.zeros((2, 100), np.float32), 22050, "mono"),
    (np.zeros(100, np.int16), 22050, "float audio"),
    (np.zeros(100, np.float32), 0, "positive integer"),
])
def test_features_reject_bad_input(wav, sample_rate, message):
    with pytest.raises(ValueError, match=message):
        cqt_features(wav, sample_rate)


def test_silence_is_a_single_no_chord_segment(random_recognizer):
    for wav, rate in [(np.zeros((2, 44100 * 12), np.float32), 44100),
                      (1e-6 * _noise(3.0, 32000), 32000)]:
        duration = wav.shape[-1] / rate
        assert random_recognizer.recognize(wav, rate) == [ChordSegment(0.0, duration, "N")]


@pytest.mark.parametrize("samples", [1, 500, 22050, 3 * 48000])
def test_audio_shorter_than_one_window(random_recognizer, samples):
    wav = _noise(samples / 48000, 48000)[:samples] if samples > 1 else np.array([0.3], np.float32)
    segments = random_recognizer.recognize(wav, 48000)
    _contiguous(segments, samples / 48000)
    assert all(segment.label in random_recognizer.vocab for segment in segments)


@pytest.mark.parametrize("wav, message", [
    (np.full((2, 1000), np.nan, np.float32), "NaN/Inf"),
    (np.array([0.1, np.inf] * 500, np.float32), "NaN/Inf"),
    (np.zeros((44100, 2), np.float32), r"\(channels, samples\), got \(44100, 2\)"),
    (np.zeros((1, 2, 100), np.float32), "got \\(1, 2, 100\\)"),
    (np.zeros(1000, np.int16), "float samples"),
    (np.zeros((0, 100), np.float32), "no channels"),
    (np.zeros((2, 0), np.float32), "empty"),
])
def test_recognize_rejects_bad_audio(random_recognizer, wav, message):
    with pytest.raises(ValueError, match=message):
        random_recognizer.recognize(wav, 44100)


def test_all_windows_run_as_one_batch_and_match_window_by_window(random_recognizer):
    features = cqt_features(_noise(23.0, 22050), 22050)  # 248 frames -> 3 windows
    calls = []
    handle = random_recognizer.model.register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    try:
        indices = random_recognizer.frame_labels(features)
    finally:
        handle.remove()
    assert calls == [torch.Size([3, 108, 144])] and indices.shape == (248,)
    # Reference style: zero-pad after normalising, one window at a time.
    padded = np.zeros((324, 144), np.float32)
    padded[:248] = (features - random_recognizer.mean) / random_recognizer.std
    with torch.no_grad():
        one_by_one = np.concatenate([
            random_recognizer.model(torch.from_numpy(padded[i:i + 108])[None]).argmax(-1)[0].numpy()
            for i in range(0, 324, 108)
        ])
    np.testing.assert_array_equal(indices, one_by_one[:248])
    assert len(set(indices.tolist())) > 1


def test_segment_times_use_the_true_hop_and_centred_frames(random_recognizer):
    wav = _noise(30.0, 22050, seed=3)
    indices = random_recognizer.frame_labels(cqt_features(wav, 22050))
    segments = random_recognizer.recognize(wav, 22050)
    _contiguous(segments, 30.0)
    changes = np.flatnonzero(np.diff(indices)) + 1
    assert [s.start for s in segments[1:]] == pytest.approx(list((changes - 0.5) * 2048 / 22050))
    assert [s.label for s in segments] == [random_recognizer.vocab[i] for i in indices[np.r_[0, changes]]]


def test_lab_and_json_outputs():
    segments = [ChordSegment(0.0, 1.25, "N"), ChordSegment(1.25, 3.0004, "A:min"), ChordSegment(3.0004, 4.5, "C")]
    assert ChordRecognizer.to_lab(segments) == "0.000 1.250 N\n1.250 3.000 A:min\n3.000 4.500 C\n"
    assert json.loads(ChordRecognizer.to_json(segments)) == [
        {"start": 0.0, "end": 1.25, "label": "N"},
        {"start": 1.25, "end": 3.0004, "label": "A:min"},
        {"start": 3.0004, "end": 4.5, "label": "C"},
    ]
    assert ChordRecognizer.to_lab([]) == "" and ChordRecognizer.to_json([]) == "[]"


def _frame_accuracy(segments: list[ChordSegment], truth: list[ChordSegment], duration: float) -> float:
    frames = 1 + int(duration * 22050) // 2048
    starts = np.array([segment.start for segment in segments])
    times = np.arange(frames) * FRAME_SECONDS
    predicted = [segments[int(np.searchsorted(starts, t, side="right")) - 1].label for t in times]
    return float(np.mean([p == t for p, t in zip(predicted, frame_truth(truth, frames))]))


@pytest.mark.slow
def test_tiny_trained_btc_recognizes_held_out_progressions(trained, tmp_path):
    # The tiny model goes through the same checkpoint path as the published files.
    path = write_checkpoint(tmp_path / "tiny.pt", trained.model.state_dict(), trained.mean, trained.std)
    recognizer = ChordRecognizer.from_checkpoint(path)
    for seed in (101, 102):
        labels, seconds = random_progression(36, seed)
        wav, truth = synth_progression(labels, seconds, 32000, seed)
        duration = len(wav) / 32000
        segments = recognizer.recognize(np.stack([wav, 0.5 * wav]), 32000)  # stereo, resampled
        _contiguous(segments, duration)
        assert _frame_accuracy(segments, truth, duration) >= 0.9
        # Chord changes land where they are, also late in the song: 10/108 s frames (the
        # reference's, fit for its chunked CQT) would put changes after 30 s > 0.1 s early.
        found = np.array([segment.start for segment in segments[1:]])
        late = [np.abs(found - segment.start).min() for segment in truth[1:] if segment.start > 30]
        assert late and np.median(late) < 0.05
