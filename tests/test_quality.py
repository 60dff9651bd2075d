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
