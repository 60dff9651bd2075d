"""The quality harness (bench/quality.py): on one short song the real analysis, beat-sync, mix
and export chain puts the drifting take's downbeats on the song's and keeps the vocals intact;
its measuring functions give the answers known by construction."""
from __future__ import annotations

import numpy as np
import pytest

from bench.quality import (Case, MadmomChords, SongQuality, chord_majmin, evaluate, lead_ms,
                           nearest_errors_ms, vocal_correlation)
from btc.labels import ChordSegment
from remixer.analysis.madmom import MadmomAnalyzer


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return evaluate(Case(140.0, 4, 12.0), MadmomAnalyzer(), tmp_path_factory.mktemp("quality"),
                    [("madmom", MadmomChords())])


def test_downbeats_land_on_the_songs_within_20_ms(result):
    assert result.sync.startswith("warped")
    assert result.missed == 0
    assert result.aligned_ms.size >= 5  # every bar of the song was re-detected
    assert np.median(np.abs(result.aligned_ms)) <= 20.0
    assert np.median(np.abs(result.warp_ms)) <= 20.0


def test_vocals_survive_and_the_output_is_at_the_loudness_target(result):
    assert result.vocal_correlation > 0.9
    assert -15.0 < result.lufs < -13.0


def test_chord_accuracy_of_madmom_on_the_known_progression(result):
    assert [score.model for score in result.chords] == ["madmom"]
    assert result.chords[0].majmin > 0.9


def test_synced_downbeats_neither_lead_nor_lag_beyond_the_detectors_bias(result):
    assert abs(lead_ms(result)) <= 20.0


# The harness's measuring functions on inputs whose answers are known by construction.

def test_nearest_errors_are_signed_milliseconds_and_far_truths_are_missed():
    truth = np.array([1.0, 2.0, 3.0])
    errors, missed = nearest_errors_ms(truth, np.array([1.01, 2.3]), tolerance=0.1)
    assert errors == pytest.approx([10.0]) and missed == 2  # 2.3 is 300 ms from 2 and 700 from 3
    errors, missed = nearest_errors_ms(truth, np.array([0.995, 2.0, 3.02]), tolerance=0.1)
    assert errors == pytest.approx([-5.0, 0.0, 20.0]) and missed == 0
    assert nearest_errors_ms(truth, np.zeros(0), tolerance=0.1)[1] == 3


def test_lead_of_a_take_synced_15_ms_late_by_a_detector_5_ms_late_is_10_ms():
    truth = np.arange(0.5, 20.0, 2.0)
    aligned, _ = nearest_errors_ms(truth, truth + 0.015, tolerance=0.25)
    analysis, _ = nearest_errors_ms(truth, truth + 0.005, tolerance=0.25)
    quality = SongQuality(case=Case(120.0, 4, 20.0), aligned_ms=aligned, warp_ms=aligned, missed=0,
                          analysis_ms=analysis, chords=(), vocal_correlation=1.0, lufs=-14.0,
                          sync="warped", seconds=0.0)
    assert lead_ms(quality) == pytest.approx(10.0)


def test_vocal_correlation_finds_the_vocals_whatever_the_gains_and_misses_them_when_absent():
    rng = np.random.default_rng(0)
    instrumental, vocals = rng.standard_normal((2, 2, 32_000))
    assert vocal_correlation(0.5 * instrumental + 0.25 * vocals, instrumental, vocals) == pytest.approx(1.0)
    assert vocal_correlation(0.9 * instrumental + 0.05 * vocals, instrumental, vocals) == pytest.approx(1.0)
    assert abs(vocal_correlation(0.5 * instrumental, instrumental, vocals)) < 0.05


def test_majmin_accuracy_is_the_fraction_of_time_with_the_right_triad():
    truth = [ChordSegment(0.0, 2.0, "C"), ChordSegment(2.0, 4.0, "G")]
    assert chord_majmin(truth, truth) == 1.0
    # The first second is read as G: 3 of 4 seconds right.
    assert chord_majmin(truth, [ChordSegment(0.0, 1.0, "C"), ChordSegment(1.0, 4.0, "G")]) == 0.75
    # majmin compares triads: G7 counts as G, C minor does not count as C.
    assert chord_majmin(truth, [ChordSegment(0.0, 2.0, "C:min"), ChordSegment(2.0, 4.0, "G:7")]) == 0.5


def test_the_judge_measures_known_lags_independently_of_any_tracker():
    from bench.quality import downbeat_lags_ms
    from devtools.synth import demo_song

    song = demo_song(12.0, 120.0, 4, vocals=False, sample_rate=22_050, seed=2)
    downbeats = song.downbeats[(song.downbeats > 5.0) & (song.downbeats < 7.0)]
    for shift_s in (0.0, 0.03, -0.5):  # on time, 30 ms late, a beat early
        shift = int(round(shift_s * song.sample_rate))
        moved = np.roll(song.audio, shift, axis=1)
        lags = downbeat_lags_ms(moved, song.audio, song.sample_rate, downbeats)
        assert lags.size == downbeats.size >= 1
        np.testing.assert_allclose(lags, 1000 * shift_s, atol=3.0)


def test_stand_in_take_plays_the_source_along_its_time_map():
    from bench.quality import GENERATION_RATE, take_source_times, stand_in_take

    rate = 16_000
    source = np.zeros((1, 20 * rate), np.float32)
    clicks = np.array([3.0, 9.0, 15.0])  # source times, inside the 1.0, 1.02 and 0.985 segments
    source[0, (clicks * rate).astype(int)] = 1.0
    take = stand_in_take(source, rate)
    assert take.shape == (1, 20 * GENERATION_RATE)
    times = take_source_times(take.shape[1], GENERATION_RATE)
    expected = np.interp(clicks, times, np.arange(take.shape[1]) / GENERATION_RATE)
    found = [t - 0.05 + np.abs(take[0, int((t - 0.05) * GENERATION_RATE):
                                      int((t + 0.05) * GENERATION_RATE)]).argmax() / GENERATION_RATE
             for t in expected]
    np.testing.assert_allclose(found, expected, atol=1e-3)
    assert expected[0] == pytest.approx(3.0 - 0.23, abs=1e-3)  # 0.23 s early from the start


def test_misread_bar_phase_puts_one_on_three():
    from bench.quality import misread_bar_phase
    from remixer.beats import Beats

    beats = np.arange(8) * 0.5
    positions = np.array([1, 2, 3, 4, 1, 2, 3, 4])
    read = misread_bar_phase(Beats(120.0, beats, beats[::4], positions))
    assert read.beat_positions.tolist() == [3, 4, 1, 2, 3, 4, 1, 2]
    np.testing.assert_array_equal(read.downbeats, beats[[2, 6]])


def test_harmonic_and_quiet_takes_hold_no_percussion_and_are_quiet():
    from bench.quality import QUIET_DB, stand_in_source
    from bench.recordings import Excerpt, Recording
    from devtools.synth import demo_song

    song = demo_song(6.0, 120.0, 4, vocals=False, sample_rate=22_050, seed=2)
    excerpt = Excerpt(Recording("test/song", None, "test", "CC0-1.0"), 0.0, song.audio, 22_050)
    sparse = stand_in_source(excerpt, "sparse", song.beats)
    quiet = stand_in_source(excerpt, "quiet", song.beats)
    np.testing.assert_allclose(quiet, sparse * 10 ** (QUIET_DB / 20), rtol=1e-5, atol=1e-9)
    harmonic = stand_in_source(excerpt, "harmonic", song.beats)
    # The drums are gone: at each snare hit (every beat but the downbeats) the harmonic part
    # keeps under a tenth of the mix's high-frequency burst.
    from scipy.signal import butter, sosfilt
    high = butter(4, 4000, btype="high", fs=22_050, output="sos")
    for t in song.beats[1:6]:
        if t in song.downbeats:
            continue
        span = slice(int(t * 22_050), int((t + 0.03) * 22_050))
        assert np.abs(sosfilt(high, harmonic[0])[span]).max() < 0.1 * np.abs(sosfilt(high, song.audio[0])[span]).max()
    with pytest.raises(ValueError, match="unknown take kind"):
        stand_in_source(excerpt, "loud", song.beats)
