"""devtools.synth: the demo song's beats, kicks, chords and stems are what it says they are."""
from __future__ import annotations

import numpy as np
import pytest

from devtools.synth import beat_grid, demo_song, retimed
from remixer.separation import STEM_NAMES

RATE = 22_050


def _onset(stem: np.ndarray, t: float, rate: int) -> int:
    """First non-silent sample within 40 ms of ``t``."""
    lo = int(round((t - 0.04) * rate))
    window = np.abs(stem[0, lo:lo + int(0.08 * rate)])
    return lo + int(np.flatnonzero(window > 1e-6)[0])


def _low_energy(stem: np.ndarray, t: float, rate: int, cutoff: float = 120.0) -> float:
    """Energy below ``cutoff`` Hz in the 100 ms after ``t``."""
    i = int(round(t * rate))
    spectrum = np.abs(np.fft.rfft(stem[0, i:i + int(0.1 * rate)])) ** 2
    freqs = np.fft.rfftfreq(int(0.1 * rate), 1 / rate)
    return float(spectrum[freqs < cutoff].sum())


def _pitch_class_energy(x: np.ndarray, rate: int) -> np.ndarray:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    keep = (freqs > 30) & (freqs < 2000)
    classes = np.round(12 * np.log2(freqs[keep] / 440.0) + 69).astype(int) % 12
    return np.bincount(classes, weights=spectrum[keep], minlength=12)


@pytest.fixture(scope="module")
def song():
    return demo_song(8.0, bpm=120.0, beats_per_bar=4, sample_rate=RATE)


def test_beats_downbeats_and_kick_positions(song):
    np.testing.assert_allclose(song.beats, 0.5 + 0.5 * np.arange(15))
    np.testing.assert_allclose(song.downbeats, [0.5, 2.5, 4.5, 6.5])
    drums = song.stems["drums"]
    # Every drum hit starts exactly on its beat's sample, after silence.
    onsets = [_onset(drums, t, RATE) for t in song.beats]
    assert onsets == [int(round(t * RATE)) for t in song.beats]
    kicks = [_low_energy(drums, t, RATE) for t in song.downbeats]
    others = [_low_energy(drums, t, RATE) for i, t in enumerate(song.beats) if i % 4]
    assert min(kicks) > 20 * max(others)


def test_chord_segments_and_what_the_bass_and_pads_play(song):
    assert [c.label for c in song.chords] == ["N", "C", "G", "A:min", "F"]
    assert [c.start for c in song.chords] == [0.0, 0.5, 2.5, 4.5, 6.5]
    assert [c.end for c in song.chords] == [0.5, 2.5, 4.5, 6.5, 8.0]
    tones = {"C": {0, 4, 7}, "G": {7, 11, 2}, "A:min": {9, 0, 4}, "F": {5, 9, 0}}
    roots = {"C": 0, "G": 7, "A:min": 9, "F": 5}
    for chord in song.chords[1:]:
        span = slice(int(chord.start * RATE) + 500, int(chord.end * RATE) - 500)
        pads = _pitch_class_energy(song.stems["other"][0, span], RATE)
        bass = _pitch_class_energy(song.stems["bass"][0, span], RATE)
        assert set(np.argsort(pads)[-3:]) == tones[chord.label]
        assert int(np.argmax(bass)) == roots[chord.label]
    assert not song.stems["other"][:, :int(0.5 * RATE)].any()


def test_stems_sum_to_the_mix_and_the_voice_enters_after_the_intro(song):
    assert song.audio.dtype == np.float32 and song.audio.shape == (2, 8 * RATE)
    assert tuple(song.stems) == STEM_NAMES  # the names htdemucs gives them
    np.testing.assert_array_equal(sum(song.stems.values()), song.audio)
    assert 0.5 < np.abs(song.audio).max() <= 0.9
    vocals = song.stems["vocals"]
    assert not vocals[:, :int(2.5 * RATE)].any()  # bar 0 is the intro
    assert np.sqrt(np.mean(vocals[:, int(2.5 * RATE):] ** 2)) > 0.02
    np.testing.assert_array_equal(vocals[0], vocals[1])  # centred
    instrumental = demo_song(8.0, bpm=120.0, sample_rate=RATE, vocals=False)
    assert not instrumental.stems["vocals"].any()
    np.testing.assert_array_equal(instrumental.stems["drums"], song.stems["drums"])


def test_vocal_harmony_puts_the_chord_quality_in_the_voices_only(song):
    sung = demo_song(8.0, bpm=120.0, sample_rate=RATE, vocal_harmony=True)
    assert sung.vocal_harmony and [c.label for c in sung.chords] == [c.label for c in song.chords]
    np.testing.assert_array_equal(sum(sung.stems.values()), sung.audio)
    for chord, root, third, fifth in ((sung.chords[3], 9, 0, 4), (sung.chords[2], 7, 11, 2)):  # A:min, G
        span = slice(int(chord.start * RATE) + 500, int(chord.end * RATE) - 500)
        pads = _pitch_class_energy(sung.stems["other"][0, span], RATE)
        voices = _pitch_class_energy(sung.stems["vocals"][0, span], RATE)
        assert set(np.argsort(pads)[-2:]) == {root, fifth}  # a power chord ...
        assert pads[third] < 0.01 * pads[root]               # ... without its third,
        assert voices[third] > 0.1 * voices.max()             # which the voices sing.
    # The same score as retimed, and the default song is unchanged by the option's existence.
    assert retimed(sung, 120.0).vocal_harmony
    np.testing.assert_array_equal(demo_song(8.0, bpm=120.0, sample_rate=RATE).audio, song.audio)
    with pytest.raises(ValueError, match="vocal_harmony needs vocals=True"):
        demo_song(8.0, vocals=False, vocal_harmony=True)


def test_three_four_and_mono():
    waltz = demo_song(6.0, bpm=90.0, beats_per_bar=3, sample_rate=RATE, channels=1,
                      progression=("Am", "E7"))
    np.testing.assert_allclose(waltz.downbeats, 0.5 + 2.0 * np.arange(3))
    assert [c.label for c in waltz.chords] == ["N", "A:min", "E:7", "A:min"]
    assert waltz.audio.shape == (1, 6 * RATE)


def test_same_seed_same_song_other_seed_other_song(song):
    again = demo_song(8.0, bpm=120.0, beats_per_bar=4, sample_rate=RATE)
    assert again.audio.tobytes() == song.audio.tobytes()
    other = demo_song(8.0, bpm=120.0, beats_per_bar=4, sample_rate=RATE, seed=1)
    assert not np.array_equal(other.stems["vocals"], song.stems["vocals"])
    np.testing.assert_array_equal(other.beats, song.beats)


def test_retimed_plays_the_same_score_on_a_known_warp(song):
    same = retimed(song, 120.0)
    assert same.audio.tobytes() == song.audio.tobytes()
    take = retimed(song, (110.0, 130.0), vocals=False, sample_rate=16_000)
    assert take.sample_rate == 16_000 and not take.stems["vocals"].any()
    assert take.downbeats[0] == 0.5
    periods = np.diff(take.beats)
    assert periods[0] == pytest.approx(60 / 110, rel=0.01)
    assert periods[-1] == pytest.approx(60 / 130, rel=0.02)
    assert np.all(np.diff(periods) < 0)  # speeding up all the way
    n = min(len(take.chords), len(song.chords))
    assert [c.label for c in take.chords[:n]] == [c.label for c in song.chords[:n]]
    assert [_onset(take.stems["drums"], t, 16_000) for t in take.beats] == \
        [int(round(t * 16_000)) for t in take.beats]


def test_beat_grid_accumulates_the_tempo_curve():
    beats = beat_grid((60.0, 180.0), 10.0, first_downbeat=0.0)
    # bpm(t) = 60 + 12 t, so the phase is t + 0.1 t^2 beats: beat n at t = 5(sqrt(1 + 0.4 n) - 1).
    n = np.arange(len(beats))
    np.testing.assert_allclose(beats, 5 * (np.sqrt(1 + 0.4 * n) - 1), atol=1e-6)
    assert len(beats) == 20  # phase(10) = 20 beats, the 20th falls on the end


@pytest.mark.parametrize("kwargs, message", [
    ({"duration": 1.0}, "more than one bar"),
    ({"duration": float("nan")}, "duration"),
    ({"bpm": 0}, "bpm"),
    ({"beats_per_bar": 1}, "beats_per_bar"),
    ({"progression": ()}, "progression"),
    ({"progression": "C G"}, "progression"),
    ({"progression": ("C", "H")}, "H"),
    ({"progression": ("C", "X")}, "X"),
    ({"channels": 3}, "channels"),
    ({"sample_rate": 100}, "sample_rate"),
    ({"first_downbeat": -1.0}, "first_downbeat"),
    ({"seed": -1}, "seed"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        demo_song(**{"duration": 4.0, "sample_rate": RATE, **kwargs})
