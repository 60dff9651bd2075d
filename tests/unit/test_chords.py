"""Chord chroma on the conditioner grid: text progressions, recognised segments, window fitting."""
import math

import numpy as np
import pytest

from btc.labels import ChordSegment, ChordSyntaxError, label_to_chroma
from remixer.chords import (AUDIO_FRAME_RATE, CHROMA_FRAMES, TEXT_FRAME_RATE, ChordTimeline, fit_to_window,
                            frame_times, null_chroma, segments_to_chroma, text_chords_to_chroma)
from remixer.requests import InputError

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
    with pytest.raises(ValueError, match="duration|start|frame_rate"):
        segments_to_chroma([ChordSegment(0.0, 1.0, "C")], **kwargs)


KNOWN = [ChordSegment(0.0, 1.0, "C"), ChordSegment(1.0, 2.5, "G"), ChordSegment(2.5, 4.0, "N")]


@pytest.mark.parametrize("denoise", [False, True])
def test_segments_fill_the_frames_whose_centres_they_hold(denoise):
    chroma = segments_to_chroma(KNOWN, duration=4.0, denoise=denoise)
    assert chroma.shape == (31, 12)  # round(4 * 235 / 30)
    # Centres (j + 0.5) * 30/235: frames 0-7 are before 1.0 s, 8-19 before 2.5 s.
    np.testing.assert_array_equal(chroma[:8], np.tile(label_to_chroma("C"), (8, 1)))
    np.testing.assert_array_equal(chroma[8:20], np.tile(label_to_chroma("G"), (12, 1)))
    assert not chroma[20:].any()


def test_boundary_on_a_frame_centre_belongs_to_the_chord_that_starts_there():
    centre = frame_times(5.0)[23]
    assert centre == 3.0  # 23.5 * 30 / 235: at 80 bpm 4/4 the second bar line falls on it
    text = text_chords_to_chroma("C G", 80, "4/4", duration=5.0)
    audio = segments_to_chroma([ChordSegment(0.0, centre, "C"), ChordSegment(centre, 5.0, "G")],
                               duration=5.0, denoise=False)
    for chroma in (text, audio):
        np.testing.assert_array_equal(chroma[22], label_to_chroma("C"))
        np.testing.assert_array_equal(chroma[23], label_to_chroma("G"))


def test_denoise_removes_a_one_frame_blip():
    blip = 10
    segments = [ChordSegment(0.0, blip * FRAME, "C"), ChordSegment(blip * FRAME, (blip + 1) * FRAME, "E:min"),
                ChordSegment((blip + 1) * FRAME, 3.0, "C")]
    raw = segments_to_chroma(segments, duration=3.0, denoise=False)
    np.testing.assert_array_equal(raw[blip], label_to_chroma("E:min"))
    clean = segments_to_chroma(segments, duration=3.0)
    np.testing.assert_array_equal(clean[:20], np.tile(label_to_chroma("C"), (20, 1)))


@pytest.mark.parametrize("label", ["N", "X"])
def test_no_chord_and_unknown_give_zeros(label):
    for denoise in (False, True):
        chroma = segments_to_chroma([ChordSegment(0.0, 5.0, label)], duration=5.0, denoise=denoise)
        assert chroma.shape == (39, 12) and not chroma.any()
    chroma = text_chords_to_chroma(f"C {label}", 120, "4/4", duration=4.0)
    np.testing.assert_array_equal(chroma[:15], np.tile(label_to_chroma("C"), (15, 1)))
    assert not chroma[16:].any()


def test_segment_windows_are_slices_of_one_long_grid():
    rng = np.random.default_rng(0)
    edges = np.concatenate([[0.0], np.cumsum(rng.uniform(0.1, 2.5, 60))])
    labels = rng.choice(["C", "G", "A:min", "F", "E:min7", "N"], len(edges) - 1)
    segments = [ChordSegment(float(a), float(b), str(c)) for a, b, c in zip(edges[:-1], edges[1:], labels)]
    long = segments_to_chroma(segments, duration=84.0)
    for k in (1, 3):
        window = segments_to_chroma(segments, duration=30.0, start=18.0 * k)
        np.testing.assert_array_equal(window, long[141 * k:141 * k + CHROMA_FRAMES])


def test_a_looped_source_repeats_end_to_end_and_denoises_across_the_seam():
    # 2.3 s of C then G, looped: after the source's end the chord at t is the chord at t mod 2.3.
    segments = [ChordSegment(0.0, 1.0, "C"), ChordSegment(1.0, 2.3, "G")]
    raw = segments_to_chroma(segments, duration=12.0, loop=2.3, denoise=False)
    centres = (np.arange(len(raw)) + 0.5) / AUDIO_FRAME_RATE
    is_c = np.mod(centres, 2.3) < 1.0
    np.testing.assert_array_equal(raw[is_c], np.tile(label_to_chroma("C"), (is_c.sum(), 1)))
    np.testing.assert_array_equal(raw[~is_c], np.tile(label_to_chroma("G"), ((~is_c).sum(), 1)))
    # Segments this long survive the denoiser unchanged, seams included; windows are slices.
    np.testing.assert_array_equal(segments_to_chroma(segments, duration=12.0, loop=2.3), raw)
    window = segments_to_chroma(segments, duration=4.0, start=6.0, loop=2.3)
    first = round(6.0 * AUDIO_FRAME_RATE)
    np.testing.assert_array_equal(window, raw[first:first + len(window)])
    # Without loop nothing sounds after the last segment.
    assert not segments_to_chroma(segments, duration=12.0)[20:].any()


@pytest.mark.parametrize("loop", [0.0, -1.0, float("inf")])
def test_invalid_loop_is_named(loop):
    with pytest.raises(ValueError, match="loop must be a positive number"):
        segments_to_chroma([ChordSegment(0.0, 1.0, "C")], duration=5.0, loop=loop)


@pytest.mark.parametrize("segment", [ChordSegment(2.0, 1.0, "C"), ChordSegment(float("nan"), 1.0, "C")])
def test_invalid_segment_times_are_named(segment):
    with pytest.raises(ValueError, match="chord segment 1"):
        segments_to_chroma([ChordSegment(0.0, 1.0, "G"), segment], duration=5.0)


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
