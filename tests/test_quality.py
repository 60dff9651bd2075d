"""The quality harness (bench/quality.py) on one short song: the real analysis, beat-sync, mix
and export chain puts the drifting take's downbeats on the song's and keeps the vocals intact."""
from __future__ import annotations

import numpy as np
import pytest

from bench.quality import Case, MadmomChords, evaluate, lead_ms
from remixer.analysis import MadmomAnalyzer


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


def test_lead_is_the_synced_shift_beyond_the_detectors_bias(result):
    expected = np.median(result.aligned_ms) - np.median(result.analysis_ms)
    assert lead_ms(result) == pytest.approx(expected)


def test_the_judge_measures_known_lags_independently_of_any_tracker():
    from bench.quality import downbeat_lags_ms
    from remixer.synth import demo_song

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
