"""Chord chroma on the conditioner grid: text progressions, chords read per window, window fitting."""
import logging
import math

import numpy as np
import pytest
import torch

from btc.features import FRAME_SECONDS
from btc.labels import VOCAB_170, ChordSegment, ChordSyntaxError, label_to_chroma
from btc.recognizer import frame_segments
from remixer.chords import (AUDIO_FRAME_RATE, CHROMA_FRAMES, TEXT_FRAME_RATE, ChordTimeline, fit_to_window,
                            frame_times, null_chroma, read_window_chords, reading_chroma,
                            text_chords_to_chroma)
from remixer.requests import InputError
from remixer.transform import Transform, transpose_label

POP = ["C", "G", "A:min", "F"]
FRAME = 1 / AUDIO_FRAME_RATE


def _runs(chroma: np.ndarray) -> list[tuple[int, int]]:
    """(first frame, length) of each run of identical frames."""
    changes = np.flatnonzero(np.any(np.diff(chroma, axis=0) != 0, axis=1)) + 1
    edges = np.concatenate([[0], changes, [len(chroma)]])
    return [(int(a), int(b - a)) for a, b in zip(edges[:-1], edges[1:])]


def test_full_window_is_235_frames_of_30_seconds():
    chroma = text_chords_to_chroma("C G A:min F", 120, "4/4", duration=30.0)
    assert chroma.shape == (CHROMA_FRAMES, 12) and chroma.dtype == np.float32
    assert frame_times(30.0)[-1] == pytest.approx(30.0 - FRAME / 2)


def test_each_chord_covers_two_seconds_at_120_bpm_and_the_progression_loops():
    chroma = text_chords_to_chroma("C G A:min F", 120, "4/4", duration=30.0)
    runs = _runs(chroma)
    assert len(runs) == 15  # 30 s / 2 s per bar
    for number, (first, length) in enumerate(runs[:-1]):
        assert abs(length * FRAME - 2.0) <= FRAME
        # The run starts at the first frame whose centre is at or past the bar line.
        assert first == math.ceil(2.0 * number * AUDIO_FRAME_RATE - 0.5)
        np.testing.assert_array_equal(chroma[first + length // 2], label_to_chroma(POP[number % 4]))
    # Every frame, not just samples: the chord of bar floor(t / 2) of the looping progression.
    expected = np.stack([label_to_chroma(POP[int(t // 2) % 4]) for t in frame_times(30.0)])
    np.testing.assert_array_equal(chroma, expected)


def test_progression_loops_for_any_duration():
    chroma = text_chords_to_chroma("C G A:min F", 120, "4/4", duration=100.0)
    times = frame_times(100.0)
    assert len(chroma) == round(100 * AUDIO_FRAME_RATE) == 783
    for t_sample in (0.5, 8.5, 66.1, 91.0, 99.9):
        j = int(np.argmin(abs(times - t_sample)))
        np.testing.assert_array_equal(chroma[j], label_to_chroma(POP[int(times[j] // 2) % 4]))


@pytest.mark.parametrize("k", [1, 2, 5])
def test_window_k_is_the_slice_of_one_long_grid(k):
    long = text_chords_to_chroma("C G,G:7 E:min,E:min7 A:min", 97, "4/4", duration=30.0 + 18.0 * 5)
    window = text_chords_to_chroma("C G,G:7 E:min,E:min7 A:min", 97, "4/4", duration=30.0, start=18.0 * k)
    np.testing.assert_array_equal(window, long[141 * k:141 * k + CHROMA_FRAMES])


def test_multi_chord_bars_split_evenly_without_drift_over_100_bars():
    text, bpm = "C,G A:min,F,E:min D:7", 97.0
    timeline = ChordTimeline.from_text(text, bpm, "4/4")
    bar = 240.0 / bpm
    assert timeline.bar_seconds == bar
    segments = timeline.segments(100 * bar)
    assert len(segments) == 33 * 6 + 2  # 33 loops of 6 chords + bar 100 (C,G)
    assert segments[-1].end == pytest.approx(100 * bar, abs=1e-9)
    chroma = text_chords_to_chroma(text, bpm, "4/4", duration=100 * bar)
    position = 0
    for bar_number in range(100):
        chords = timeline.bars[bar_number % 3]
        for i, label in enumerate(chords):
            segment = segments[position]
            position += 1
            assert segment.label == label
            assert segment.start == pytest.approx((bar_number + i / len(chords)) * bar, abs=1e-9)
            assert segment.end - segment.start == pytest.approx(bar / len(chords), abs=1e-9)
            first = math.ceil(segment.start * AUDIO_FRAME_RATE - 0.5)
            last = math.ceil(segment.end * AUDIO_FRAME_RATE - 0.5) - 1
            assert last - first + 1 in (math.floor(bar / len(chords) * AUDIO_FRAME_RATE),
                                        math.ceil(bar / len(chords) * AUDIO_FRAME_RATE))
            for j in (first, last):
                if j < len(chroma):
                    np.testing.assert_array_equal(
                        chroma[j], label_to_chroma(label), err_msg=f"bar {bar_number}"
                    )


@pytest.mark.parametrize(
    "time_sig, bpm, bar_seconds",
    [("3/4", 90, 2.0), ("6/8", 120, 3.0), ("7/8", 210, 2.0)],
)
def test_other_meters_use_the_numerator_as_beats_per_bar(time_sig, bpm, bar_seconds):
    timeline = ChordTimeline.from_text("C G", bpm, time_sig)
    assert timeline.bar_seconds == bar_seconds
    assert [(s.start, s.end, s.label) for s in timeline.segments(2 * bar_seconds)] == [
        (0.0, bar_seconds, "C"), (bar_seconds, 2 * bar_seconds, "G")]
    chroma = text_chords_to_chroma("C G", bpm, time_sig, duration=4 * bar_seconds)
    starts = [first for first, _ in _runs(chroma)]
    assert starts == [math.ceil(n * bar_seconds * AUDIO_FRAME_RATE - 0.5) for n in range(4)]


def test_reference_text_grid_can_be_requested():
    # The reference's worked example: 140 bpm 4/4 at 7.8125 frames/s gives 13 or 14 frames a bar.
    chroma = text_chords_to_chroma("C G A:min F", 140, "4/4", duration=30.0, frame_rate=TEXT_FRAME_RATE)
    assert len(chroma) == round(30 * TEXT_FRAME_RATE)
    assert {length for _, length in _runs(chroma)[:-1]} == {13, 14}


@pytest.mark.parametrize("time_sig, bpm, message", [("4-4", 120, "time signature"), ("4/4", 1000, "bpm"),
                                                     ("4/4", True, "bpm")])
def test_text_chords_are_checked_as_the_client_typed_them(time_sig, bpm, message):
    with pytest.raises(InputError, match=message):
        text_chords_to_chroma("C G", bpm, time_sig, duration=10.0)


def test_chord_too_short_for_one_frame_is_rejected():
    with pytest.raises(InputError, match="less than one chroma frame"):
        text_chords_to_chroma("C,D,E,F,G,A,B,C C", 300, "4/4", duration=10.0)


def test_syntax_errors_propagate_with_the_token():
    with pytest.raises(ChordSyntaxError, match="Hm") as error:
        text_chords_to_chroma("C Hm F", 120, "4/4", duration=10.0)
    assert error.value.token == "Hm"
    with pytest.raises(ChordSyntaxError, match="'G,'"):
        text_chords_to_chroma("C G, A:min", 120, "4/4", duration=10.0)


@pytest.mark.parametrize("kwargs", [dict(duration=0.0), dict(duration=float("nan")), dict(duration=0.05),
                                    dict(duration=10.0, start=-1.0), dict(duration=10.0, frame_rate=0.0)])
def test_bad_window_is_rejected(kwargs):
    with pytest.raises(ValueError, match="duration|start|frame_rate"):
        text_chords_to_chroma("C G", 120, "4/4", **kwargs)


def test_boundary_on_a_frame_centre_belongs_to_the_chord_that_starts_there():
    centre = frame_times(5.0)[23]
    assert centre == 3.0  # 23.5 * 30 / 235: at 80 bpm 4/4 the second bar line falls on it
    text = text_chords_to_chroma("C G", 80, "4/4", duration=5.0)
    np.testing.assert_array_equal(text[22], label_to_chroma("C"))
    np.testing.assert_array_equal(text[23], label_to_chroma("G"))


@pytest.mark.parametrize("label", ["N", "X"])
def test_typed_no_chord_and_unknown_give_zeros(label):
    chroma = text_chords_to_chroma(f"C {label}", 120, "4/4", duration=4.0)
    np.testing.assert_array_equal(chroma[:15], np.tile(label_to_chroma("C"), (15, 1)))
    assert not chroma[16:].any()


# --- audio chords: one reading per window, made chroma as the published conditioner did -----

def _published_chroma(lines: list[str], chroma_len: int = 235, max_duration: float = 30.0) -> np.ndarray:
    """Transcribed from sakemin/cog-musicgen-remixer audiocraft/modules/chord_chroma.py lines
    130-167 (``ChordExtractor.forward``, after the BTC lines): frames from the ``%.3f`` times,
    X (``UNKNOWN_CHORD``, utils/chords.py line 47) -1 everywhere and not rolled, then
    ``conv1d(ones(7)/7, padding=3) > 0.5``."""
    to_timebin = max_duration / chroma_len
    chroma, count = [], 0
    for line in lines:
        if count >= chroma_len:
            break
        s, e, label = line.split()
        # chords.Chords().chord(label)[2] rolled by the root: the chroma btc.labels reproduces.
        multihot = torch.Tensor(label_to_chroma(label))
        for _ in range(round(float(s) / to_timebin), round(float(e) / to_timebin)):
            if count >= chroma_len:
                break
            chroma.append(multihot)
            count += 1
    chroma = torch.stack(chroma, dim=0)
    kernel = torch.ones(7) / 7
    filtered = torch.stack([torch.nn.functional.conv1d(chroma[..., i].unsqueeze(0), kernel[None, None],
                                                       padding=3) for i in range(12)], dim=-1)
    return (filtered > 0.5).squeeze(0).numpy().astype(np.float32)


def _lines(segments) -> list[str]:
    return ["%.3f %.3f %s\n" % (s.start, s.end, s.label) for s in segments]


def _random_frames(rng, frames: int, labels=("C", "G", "A:min", "F:maj7", "X", "N", "E:min7")) -> tuple[str, ...]:
    """Per-frame labels in runs of 1-12 frames (BTC's short blips included)."""
    out: list[str] = []
    while len(out) < frames:
        out += [str(rng.choice(labels))] * int(rng.integers(1, 13))
    return tuple(out[:frames])


@pytest.mark.parametrize("frames", [324, 330, 200, 40, 1])
def test_a_reading_becomes_the_published_chroma(frames):
    """Random readings (X runs and one-frame blips included): the published rule, frame for frame.
    324 frames are a 30 s window; 200 and 40 a shorter source, whose chroma is then tiled."""
    rng = np.random.default_rng(frames)
    for _ in range(30):
        segments = frame_segments(_random_frames(rng, frames), end=frames * FRAME_SECONDS)
        ours = reading_chroma(segments, 30.0)
        np.testing.assert_array_equal(ours, _published_chroma(_lines(segments)))
        assert ours.shape == (min(235, round(frames * FRAME_SECONDS * 235 / 30) or 1), 12)


def test_x_takes_part_in_the_vote_and_blanks_two_frames_each_side():
    # 40 frames of C, 5 of X, 40 of C: the published -1s pull the mean of the two C frames on
    # each side of the X run under 0.5 (the old zeros blanked none of them).
    frames = ("C",) * 40 + ("X",) * 5 + ("C",) * 40
    chroma = reading_chroma(frame_segments(frames, end=len(frames) * FRAME_SECONDS), 30.0)
    on = chroma.any(axis=1)
    first_x, last_x = round(40 * FRAME_SECONDS * AUDIO_FRAME_RATE), round(45 * FRAME_SECONDS * AUDIO_FRAME_RATE)
    assert not on[first_x - 2:last_x + 2].any() and on[first_x - 3] and on[last_x + 2]
    np.testing.assert_array_equal(chroma[0], label_to_chroma("C"))


def test_a_readings_edges_are_zero_padded_for_the_vote():
    # F# starts 3 chroma frames before the window's end: published, the zeros past the edge
    # outvote it (3 of 7), where reading on into more F# (the old way) would have shown it.
    frames = ("C",) * 320 + ("F#",) * 4
    chroma = reading_chroma(frame_segments(frames, end=324 * FRAME_SECONDS), 30.0)
    assert chroma.shape == (235, 12)
    np.testing.assert_array_equal(chroma[-4], label_to_chroma("C"))
    assert not chroma[-3:].any()


def test_change_times_round_to_the_millisecond_like_the_published_lines():
    # A change at 15.0004 s: its %.3f line says 15.000, so frame 117.5 -> round(117.5) = 118.
    segments = [ChordSegment(0.0, 15.0004, "C"), ChordSegment(15.0004, 30.0, "G")]
    chroma = reading_chroma(segments, 30.0)
    np.testing.assert_array_equal(chroma, _published_chroma(_lines(segments)))


@pytest.mark.parametrize("segments, match", [
    ([], "at least one segment"),
    ([ChordSegment(0.5, 1.0, "C")], "consecutive from 0"),
    ([ChordSegment(0.0, 1.0, "C"), ChordSegment(1.5, 2.0, "G")], "consecutive from 0"),
    ([ChordSegment(0.0, float("nan"), "C")], "consecutive from 0"),
])
def test_bad_readings_are_named(segments, match):
    with pytest.raises(ValueError, match=match):
        reading_chroma(segments, 30.0)


class _SliceRecognizer:
    """Stands in for BTC: reads a source whose sample value at second ``t`` is the index of the
    chord it plays, so every reading shows exactly which slice it was given."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.slices: list[np.ndarray] = []

    def read(self, wav, sample_rate):
        assert sample_rate == self.rate and wav.ndim == 2
        self.slices.append(wav)
        frames = max(1, math.ceil(round(wav.shape[1] / self.rate / FRAME_SECONDS, 6)))  # 108 per 10 s
        at = np.minimum((np.arange(frames) * FRAME_SECONDS * self.rate).astype(int), wav.shape[1] - 1)
        return tuple(VOCAB_170[int(v)] for v in wav[0, at])


def _source(seconds: float, rate: int) -> np.ndarray:
    """One chord a second, cycling through the first 40 labels of BTC's 170 vocabulary."""
    values = (np.arange(int(seconds * rate)) // rate) % 40
    return np.stack([values, values]).astype(np.float32)


def test_each_window_reads_its_own_30_s_looping_the_source(caplog):
    rate = 100
    source = _source(100.0, rate)
    recognizer = _SliceRecognizer(rate)
    with caplog.at_level(logging.INFO, logger="remixer.chords"):
        chords = read_window_chords(recognizer, source, rate, [0.0, 18.0, 36.0, 54.0, 72.0, 90.0],
                                    duration=100.0, window=30.0)
    assert [r.start for r in chords.readings] == [0.0, 18.0, 36.0, 54.0, 72.0, 90.0]
    assert len(recognizer.slices) == 6  # once per window
    for reading, piece in zip(chords.readings, recognizer.slices):
        first = int(reading.start * rate)
        np.testing.assert_array_equal(piece, source[:, np.arange(first, first + 30 * rate) % source.shape[1]])
        assert (reading.source_start, reading.source_end) == (reading.start, reading.start + 30)
        assert reading.segments[0].label == VOCAB_170[int(reading.start) % 40]
    # The last window runs 10 s past the song's end: it read the song's start again.
    assert "looped past its end" in caplog.records[-1].getMessage()
    assert sum("chords of window" in r.getMessage() for r in caplog.records) == 6
    window = chords.chroma(start=18.0, duration=30.0)
    assert window.shape == (235, 12)
    np.testing.assert_array_equal(window[3], label_to_chroma(VOCAB_170[18]))
    with pytest.raises(ValueError, match="no chords were read for a window at 9"):
        chords.chroma(start=9.0, duration=30.0)


def test_one_window_reads_the_source_once_unlooped_and_tiles_it():
    rate = 100
    recognizer = _SliceRecognizer(rate)
    chords = read_window_chords(recognizer, _source(10.0, rate), rate, [0.0], duration=8.0, window=30.0)
    (piece,) = recognizer.slices
    assert piece.shape == (2, 1000)  # the whole 10 s source, not looped to 30 s
    raw = chords.chroma(start=0.0, duration=30.0)
    assert len(raw) == 78  # 108 frames of 10/108 s = 10 s -> round(78.3) chroma frames
    np.testing.assert_array_equal(fit_to_window(raw)[78:156], raw)  # match_len_on_eval's tiling
    longer = read_window_chords(_SliceRecognizer(rate), _source(70.0, rate), rate, [0.0], duration=8.0,
                                window=30.0)
    assert longer.readings[0].source_end == 30.0  # a longer source: its first window


def test_window_readings_follow_the_remix_tempo_and_key():
    rate = 100
    recognizer = _SliceRecognizer(rate)
    transform = Transform(ratio=1.25, semitones=2, bpm=80.0)
    chords = read_window_chords(recognizer, _source(100.0, rate), rate, [0.0, 22.5], duration=125.0,
                                window=30.0, transform=transform)
    second = chords.readings[1]
    assert recognizer.slices[1].shape == (2, 2400)  # 30 s of the remix are 24 s of the song
    assert (second.source_start, second.source_end) == (18.0, 42.0)
    labels = recognizer.read(recognizer.slices[1], rate)
    read = frame_segments(labels, end=len(labels) * FRAME_SECONDS)
    # Read on the song, then moved like the vocals: times x 1.25, two semitones up.
    assert [s.label for s in second.segments] == [transpose_label(s.label, 2) for s in read]
    assert second.segments[0].label == "D#:min6" and VOCAB_170[18] == "C#:min6"
    assert [s.start for s in second.segments] == pytest.approx([s.start * 1.25 for s in read])
    assert second.segments[-1].end == pytest.approx(260 * FRAME_SECONDS * 1.25)  # 24 s: 108 + 108 + 44 frames


def test_fit_to_window_truncates_or_tiles():
    chroma = np.random.default_rng(1).integers(0, 2, (300, 12)).astype(np.float32)
    np.testing.assert_array_equal(fit_to_window(chroma), chroma[:235])
    short = chroma[:100]
    fitted = fit_to_window(short)
    assert fitted.shape == (235, 12)
    np.testing.assert_array_equal(fitted[100:200], short)
    np.testing.assert_array_equal(fitted[200:], short[:35])
    assert not np.shares_memory(fitted, chroma)


@pytest.mark.parametrize("bad", [np.zeros((0, 12)), np.zeros((10, 11)), np.zeros(12)])
def test_fit_to_window_rejects_bad_shapes(bad):
    with pytest.raises(ValueError, match="shape"):
        fit_to_window(bad)


def test_null_chroma_is_exactly_zero():
    null = null_chroma()
    assert null.shape == (235, 12) and null.dtype == np.float32 and not null.any()
    with pytest.raises(ValueError, match="n_frames"):
        null_chroma(0)
