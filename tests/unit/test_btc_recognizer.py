"""btc.features + btc.recognizer: input handling, batching, timestamps, outputs, and a trained end-to-end check."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import librosa

from btc.features import FRAME_SECONDS, cqt_features, frame_times
from btc.labels import ChordSegment
from btc.model import BTC, BTCConfig
from btc.recognizer import ChordRecognizer, frame_segments
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


def _published_features(wav: np.ndarray) -> np.ndarray:
    """The published features of 22 050 Hz audio, transcribed from sakemin/cog-musicgen-remixer
    audiocraft/modules/chord_chroma.py lines 71-89 (``ChordExtractor.forward``): CQT of
    consecutive 10 s chunks while more than a chunk is left, then of the rest, concatenated."""
    def cqt(piece):
        return librosa.cqt(piece, sr=22050, n_bins=144, bins_per_octave=24, hop_length=2048)
    currunt_sec_hz = 0
    while len(wav) > currunt_sec_hz + 22050 * 10:
        start_idx, end_idx = int(currunt_sec_hz), int(currunt_sec_hz + 22050 * 10)
        tmp = cqt(wav[start_idx:end_idx])
        feature = tmp if start_idx == 0 else np.concatenate((feature, tmp), axis=1)
        currunt_sec_hz = end_idx
    if currunt_sec_hz == 0:
        feature = cqt(wav[currunt_sec_hz:])
    else:
        feature = np.concatenate((feature, cqt(wav[currunt_sec_hz:])), axis=1)
    return np.log(np.abs(feature) + 1e-6).T


@pytest.mark.parametrize("seconds", [2.0, 10.0, 12.0, 23.4, 30.0])
def test_features_are_the_published_10_s_chunks_frame_for_frame(seconds):
    wav = _noise(seconds, 22050, seed=int(seconds))
    features = cqt_features(wav, 22050)
    published = _published_features(wav)
    # Every full chunk is one 108-frame block (one BTC window), the rest follows: 23.4 s ->
    # 108 + 108 + 1 + 74970 // 2048 frames, where one pass over the song gives 1 + 515970 // 2048.
    assert features.shape == published.shape and features.dtype == np.float32
    np.testing.assert_array_equal(features, published)  # one batched call, the same numbers
    assert len(features) == {2.0: 22, 10.0: 108, 12.0: 130, 23.4: 253, 30.0: 324}[seconds]


def test_features_values():
    assert cqt_features(np.zeros(22050, np.float32), 22050).max() == pytest.approx(np.log(1e-6))
    # A 440 Hz tone peaks in the A4 bin: C1 + 24 bins/octave * (log2(440/32.70)).
    tone = np.sin(2 * np.pi * 440 * np.arange(22050 * 2) / 22050).astype(np.float32)
    assert int(np.median(cqt_features(tone, 22050)[3:-3].argmax(axis=1))) == round(24 * np.log2(440 / 32.7032))
    # A short last chunk is padded for librosa and keeps one frame per hop.
    assert cqt_features(_noise(10.5, 22050), 22050).shape == (108 + 1 + 11025 // 2048, 144)
    assert frame_times(110)[[0, 107, 108, 109]] == pytest.approx([0.0, 107 * 2048 / 22050, 10.0, 10.0 + 2048 / 22050])


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
    features = cqt_features(_noise(23.0, 22050), 22050)  # 249 frames -> 3 windows
    calls = []
    handle = random_recognizer.model.register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    try:
        indices = random_recognizer.frame_labels(features)
    finally:
        handle.remove()
    assert calls == [torch.Size([3, 108, 144])] and indices.shape == (249,)
    # Reference style: zero-pad after normalising, one window at a time.
    padded = np.zeros((324, 144), np.float32)
    padded[:249] = (features - random_recognizer.mean) / random_recognizer.std
    with torch.no_grad():
        one_by_one = np.concatenate([
            random_recognizer.model(torch.from_numpy(padded[i:i + 108])[None]).argmax(-1)[0].numpy()
            for i in range(0, 324, 108)
        ])
    np.testing.assert_array_equal(indices, one_by_one[:249])
    assert len(set(indices.tolist())) > 1


def _published_lines(labels: list[str]) -> list[tuple[float, float, str]]:
    """The published chord lines of per-frame labels, transcribed from sakemin/cog-musicgen-remixer
    audiocraft/modules/chord_chroma.py lines 91-126 (``time_unit = inst_len / timestep``, a line
    whenever the prediction changes, the last one ending at the last real frame)."""
    time_unit, n_timestep = 10 / 108, 108
    num_pad = n_timestep - (len(labels) % n_timestep)
    padded = labels + ["<pad>"] * num_pad
    start_time, lines = 0.0, []
    for t in range(len(padded) // n_timestep):
        for i in range(n_timestep):
            if t == 0 and i == 0:
                prev_chord = padded[i]
                continue
            if padded[n_timestep * t + i] != prev_chord:
                lines.append((start_time, time_unit * (n_timestep * t + i), prev_chord))
                start_time = time_unit * (n_timestep * t + i)
                prev_chord = padded[n_timestep * t + i]
            if t == len(padded) // n_timestep - 1 and i + num_pad == n_timestep:
                if start_time != time_unit * (n_timestep * t + i):
                    lines.append((start_time, time_unit * (n_timestep * t + i), prev_chord))
                break
    return [line for line in lines if line[2] != "<pad>"]


def test_segment_times_are_the_published_frame_times(random_recognizer):
    wav = _noise(30.0, 22050, seed=3)
    labels = random_recognizer.read(wav, 22050)
    segments = random_recognizer.recognize(wav, 22050)
    _contiguous(segments, 30.0)
    published = _published_lines(list(labels))
    assert len(published) > 20 and len(segments) == len(published)
    # A change at frame k is at k * 10/108 s, not (k - 1/2) * 2048/22050 (46 ms later) as before.
    assert [(s.start, s.label) for s in segments] == [(pytest.approx(a, abs=1e-12), c) for a, _, c in published]
    assert segments[-1].end == 30.0 == published[-1][1]  # 324 frames of 10/108 s end at 30 s


def test_frame_segments_end_where_asked():
    assert frame_segments(("C", "C", "G", "G", "G"), end=0.45) == [
        ChordSegment(0.0, 2 * FRAME_SECONDS, "C"), ChordSegment(2 * FRAME_SECONDS, 0.45, "G")]
    assert frame_segments(("N",), end=0.05) == [ChordSegment(0.0, 0.05, "N")]
    with pytest.raises(ValueError, match="before the last change"):
        frame_segments(("C", "G"), end=0.05)
    with pytest.raises(ValueError, match="no frames"):
        frame_segments((), end=1.0)


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
    frames = len(cqt_features(np.zeros(int(duration * 22050), np.float32), 22050))
    starts = np.array([segment.start for segment in segments])
    times = frame_times(frames)
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
        # Chord changes land where they are, also late in the song: the published 10/108 s
        # frames restart with every 10 s chunk, so they never drift.
        found = np.array([segment.start for segment in segments[1:]])
        late = [np.abs(found - segment.start).min() for segment in truth[1:] if segment.start > 30]
        assert late and np.median(late) < 0.05
