"""The quality harness (bench/quality.py): on one short song the real analysis, beat-sync, mix
and export chain puts the drifting take's downbeats on the song's and keeps the vocals intact;
its measuring functions give the answers known by construction."""
from __future__ import annotations

import numpy as np
import pytest

from bench.quality import (Case, MadmomChords, SongQuality, chord_majmin, evaluate, lead_ms,
                           nearest_errors_ms, vocal_correlation)
from btc.labels import ChordSegment
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
