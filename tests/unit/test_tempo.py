"""The song's tempo octave: the client's song_bpm as a prior, and the warning when a read is doubtful."""
from __future__ import annotations

import numpy as np
import pytest

from devtools.synth import demo_song
from remixer.analysis.madmom import MadmomAnalyzer
from remixer.beats import TempoPrior
from remixer.tempo import TempoAlternative, song_prior, tempo_alternative

pytestmark = pytest.mark.usefixtures("one_torch_thread")
RATE = 22_050


@pytest.fixture(scope="module")
def analyzer() -> MadmomAnalyzer:
    return MadmomAnalyzer()


def _frame_tempos(bpm: float) -> set[float]:
    """The tempos a read of ``bpm`` may report: the most common beat interval in whole 10 ms
    frames, as BPM in whole numbers (All-In-One's rule, remixer.beats): 188 or 194 for 190."""
    frames = 6000 / bpm
    return {float(round(6000 / k)) for k in (int(np.floor(frames)), int(np.ceil(frames)))}


def _read(analyzer, bpm: float, beats_per_bar: int = 4, prior=None):
    song = demo_song(8.0, bpm, beats_per_bar, sample_rate=RATE, seed=0)
    return song, analyzer.analyze(song.audio, RATE, prior=prior)


def test_a_fast_song_read_at_half_tempo_names_the_double_and_song_bpm(analyzer):
    song, beats = _read(analyzer, 190)
    assert beats.bpm == pytest.approx(95, abs=0.5)  # madmom hears every other beat
    alternative = tempo_alternative(song.audio, RATE, beats)
    assert alternative.factor == 2.0 and alternative.bpm == pytest.approx(190, abs=1)
    assert alternative.evidence >= 0.5
    message = alternative.message(beats.bpm)
    assert "read as 95.0 BPM" in message and "190 BPM" in message
    assert "song_bpm=190" in message and "--song-bpm 190" in message


@pytest.mark.parametrize("bpm, beats_per_bar", [(95, 4), (120, 4), (150, 4), (190, 3)])
def test_songs_read_at_their_tempo_get_no_warning(analyzer, bpm, beats_per_bar):
    song, beats = _read(analyzer, bpm, beats_per_bar)
    assert beats.bpm in _frame_tempos(bpm)
    assert tempo_alternative(song.audio, RATE, beats) is None


def test_song_bpm_makes_the_analysis_decode_at_that_tempo(analyzer):
    prior = song_prior(190)
    assert prior == TempoPrior(bpm=190.0, beats_per_bar=None) and song_prior(None) is None
    _, beats = _read(analyzer, 190, prior=prior)
    assert beats.bpm in _frame_tempos(190)
    assert np.median(np.diff(beats.beats)) == pytest.approx(60 / 190, abs=0.011)
    # The bar length stays the analyser's to find: 4 beats a bar, downbeats on the kicks.
    assert set(np.diff(np.flatnonzero(beats.beat_positions == 1))) == {4}


def test_an_alternative_outside_what_song_bpm_takes_is_not_offered(analyzer):
    song, beats = _read(analyzer, 190)
    fast = beats.__class__(bpm=130.0, beats=beats.beats, downbeats=beats.downbeats,
                           beat_positions=beats.beat_positions, backend="madmom")
    assert tempo_alternative(song.audio, RATE, fast) is None  # 260 BPM is beyond 240


def test_alternative_record_for_analysis_json():
    record = TempoAlternative(bpm=189.94, factor=2.0, evidence=0.6789).to_dict(94.97)
    assert record["bpm"] == 189.94 and record["factor"] == 2.0 and record["evidence"] == 0.679
    assert record["message"].startswith("the song's tempo was read as 95.0 BPM, but its onsets fit twice")
