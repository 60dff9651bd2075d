"""remixer.alignment: the take's lag behind the song, from the chroma and onsets both share."""
from __future__ import annotations

import numpy as np
import pytest

from devtools.synth import demo_song, retimed
from fixtures.music import noise
from remixer.alignment import FEATURE_HOP, FEATURE_RATE, agreement
from remixer.audio import fit_length

RATE = 22_050
FRAME = FEATURE_HOP / FEATURE_RATE


@pytest.fixture(scope="module")
def song():
    return demo_song(16.0, 120.0, 4, vocals=False, sample_rate=RATE, channels=1, first_downbeat=0.5)


@pytest.fixture(scope="module")
def take(song):
    """The song's pads alone (no percussion), 0.3 s late and drifting 118 -> 122 BPM."""
    return retimed(song, (118.0, 122.0), first_downbeat=0.8)


def _true_lag(song, take, times: np.ndarray) -> np.ndarray:
    """Take time minus song time at song ``times``: beat k of one plays beat k of the other."""
    n = min(song.beats.size, take.beats.size)
    return np.interp(times, song.beats[:n], take.beats[:n] - song.beats[:n])


def test_the_lag_track_follows_a_drifting_late_take_to_a_frame(song, take):
    heard = agreement(take.stems["other"], RATE, song.stems["other"], RATE, max_lag=0.6)
    track = heard.track()
    truth = _true_lag(song, take, heard.centres)
    assert truth.max() - truth.min() > 0.03  # the lag really drifts
    errors = np.abs(track.lags - truth)
    assert np.median(errors) <= FRAME and errors.max() <= 3 * FRAME
    assert track.at_edge == 0.0
    assert heard.confidence(track.score) > 0.5


def test_the_true_alignment_scores_above_one_half_a_beat_off(song, take):
    heard = agreement(take.audio, RATE, song.audio, RATE, max_lag=0.6)
    beats = song.beats[song.beats < 15.0]
    take_times = beats + _true_lag(song, take, beats)
    right = heard.score(take_times, beats)
    assert right > heard.score(take_times + 0.25, beats) + 0.1
    assert right > heard.score(take_times - 0.25, beats) + 0.1


def test_noise_agrees_with_nothing(song):
    heard = agreement(noise(16.0, sample_rate=RATE, channels=1), RATE, song.audio, RATE,
                      max_lag=0.6)
    assert heard.confidence(heard.track().score) < 0.2


def test_a_take_further_off_than_the_range_is_pinned_to_its_edge(song):
    late = retimed(song, 120.0, first_downbeat=1.1)  # 0.6 s late: beyond 0.1 s everywhere
    heard = agreement(late.audio, RATE, song.audio, RATE, max_lag=0.1)
    assert heard.track().at_edge > 0.5


def test_a_song_shorter_than_a_window_gives_no_track(song):
    short = song.audio[:, :RATE]
    heard = agreement(short, RATE, short, RATE, max_lag=0.5)
    assert heard.centres.size == 0 and heard.track().lags.size == 0
    assert heard.score(np.array([0.5]), np.array([0.5])) == 0.0


@pytest.mark.parametrize("first_downbeat", [0.8, 0.2], ids=["late", "early"])
def test_the_edge_windows_follow_a_take_cut_to_the_song(song, first_downbeat):
    # As the pipeline hands it over: as long as the song, so a late take lacks the song's last
    # moments and an early one its first. Counting the missing frames as silence pulled the
    # first window's lag 2 frames off here (and 44 ms at the end of a late pads take).
    take = retimed(song, (118.0, 122.0), first_downbeat=first_downbeat)
    heard = agreement(fit_length(take.stems["other"], song.audio.shape[1]), RATE,
                      song.stems["other"], RATE, max_lag=0.75)
    errors = np.abs(heard.track().lags - _true_lag(song, take, heard.centres))
    assert heard.centres[0] < 3.0 and heard.centres[-1] > 13.0  # the edges are still covered
    assert errors.max() <= FRAME
