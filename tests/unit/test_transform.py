"""Tempo and key transforms: stretched and shifted audio measured, timelines and labels exact."""
from __future__ import annotations

import librosa
import numpy as np
import pytest

from btc.labels import ChordSegment
from devtools.synth import demo_song
from remixer.beats import Beats, Section
from remixer.transform import Transform, scale_beats, transform_audio, transform_chords, transpose_label

RATE = 22_050


@pytest.fixture(scope="module")
def sung_line() -> np.ndarray:
    """The synth's sung line alone (mono), 6 s at 100 BPM."""
    return demo_song(6.0, 100, sample_rate=RATE, channels=1, seed=3).stems["vocals"]


def median_f0_cents(wav: np.ndarray) -> float:
    """Median fundamental of the voiced frames, in cents above A0 (yin, 150-1000 Hz)."""
    mono = wav.mean(axis=0)
    f0 = librosa.yin(mono, fmin=150, fmax=1000, sr=RATE, frame_length=2048, hop_length=256)
    rms = librosa.feature.rms(y=mono, frame_length=2048, hop_length=256)[0][:f0.size]
    voiced = rms > 0.3 * rms.max()
    return float(np.median(1200 * np.log2(f0[voiced] / 27.5)))


def envelope(wav: np.ndarray) -> np.ndarray:
    return librosa.feature.rms(y=wav.mean(axis=0), frame_length=1024, hop_length=256)[0]


def test_key_shift_moves_the_sung_pitch_two_semitones_and_keeps_the_duration(sung_line):
    shifted = transform_audio(sung_line, RATE, Transform(semitones=2))
    assert shifted.shape == sung_line.shape and shifted.dtype == np.float32
    assert median_f0_cents(shifted) - median_f0_cents(sung_line) == pytest.approx(200, abs=15)
    # Same phrasing at the same times: the loudness envelopes line up without any lag.
    a, b = envelope(sung_line), envelope(shifted)
    lags = range(-8, 9)
    correlations = [np.corrcoef(np.roll(a, lag), b)[0, 1] for lag in lags]
    assert max(correlations) > 0.9 and abs(list(lags)[int(np.argmax(correlations))]) <= 1


def test_tempo_stretch_has_the_exact_length_and_keeps_the_pitch(sung_line):
    transform = Transform.for_song(100.0, 120.0)
    stretched = transform_audio(sung_line, RATE, transform)
    assert stretched.shape == (1, round(sung_line.shape[1] * 100 / 120))
    assert abs(median_f0_cents(stretched) - median_f0_cents(sung_line)) < 15
    # The phrasing is the original's, compressed in time by the ratio.
    a, b = envelope(sung_line), envelope(stretched)
    squeezed = np.interp(np.arange(b.size) / transform.ratio, np.arange(a.size), a)
    assert np.corrcoef(squeezed, b)[0, 1] > 0.9


def test_stereo_stretch_and_shift_at_once(sung_line):
    stereo = np.vstack([sung_line, 0.5 * sung_line])
    out = transform_audio(stereo, RATE, Transform.for_song(90.0, 60.0, -3))
    assert out.shape == (2, round(stereo.shape[1] * 1.5))
    assert median_f0_cents(out) - median_f0_cents(stereo) == pytest.approx(-300, abs=15)


def test_identity_returns_the_audio_untouched(sung_line):
    assert np.array_equal(transform_audio(sung_line, RATE, Transform()), sung_line)
    assert Transform.for_song(None, None, 0).identity and not Transform(semitones=1).identity


@pytest.mark.parametrize("label, semitones, expected", [
    ("C", 2, "D"), ("A:min7/b7", 2, "B:min7/b7"), ("B", 1, "C"), ("C", -1, "B"),
    ("Bbm", 2, "C:min"), ("F#:hdim7", 12, "F#:hdim7"), ("G/3", -12, "G/3"), ("E:sus4", 5, "A:sus4"),
    ("C:(1,b3,5)", 3, "D#:(1,b3,5)"), ("N", 4, "N"), ("X", 4, "X"),
])
def test_transpose_label_moves_the_root_only(label, semitones, expected):
    assert transpose_label(label, semitones) == expected


def test_transform_chords_scales_times_and_transposes_labels():
    chords = [ChordSegment(0.0, 0.5, "N"), ChordSegment(0.5, 2.9, "C"), ChordSegment(2.9, 5.3, "A:min")]
    out = transform_chords(chords, Transform.for_song(100.0, 125.0, 2))
    assert out == [ChordSegment(0.0, 0.4, "N"), ChordSegment(0.4, pytest.approx(2.32), "D"),
                   ChordSegment(pytest.approx(2.32), pytest.approx(4.24), "B:min")]


def test_scale_beats_moves_every_time_and_sets_the_target_tempo():
    beats = Beats(bpm=100.3, beats=np.array([0.5, 1.1, 1.7, 2.3, 2.9]), downbeats=np.array([0.5, 2.9]),
                  beat_positions=np.array([1, 2, 3, 4, 1]), sections=(Section(0.0, 2.9, "intro"),),
                  backend="madmom")
    transform = Transform.for_song(100.3, 120.0)
    scaled = scale_beats(beats, transform)
    ratio = 100.3 / 120
    assert scaled.bpm == 120.0
    assert np.allclose(scaled.beats, beats.beats * ratio)
    assert np.allclose(scaled.downbeats, [0.5 * ratio, 2.9 * ratio])
    assert scaled.sections == (Section(0.0, 2.9 * ratio, "intro"),)
    assert np.array_equal(scaled.beat_positions, beats.beat_positions) and scaled.backend == "madmom"


def test_target_tempo_is_checked_against_the_song():
    with pytest.raises(ValueError, match=r"target_bpm 210 is 2.10x the song's tempo \(100.0 BPM\); it "
                                         r"must stay within 0.5x-2x of it \(50.0-200.0 BPM\)"):
        Transform.for_song(100.0, 210.0)
    with pytest.raises(ValueError, match="target_bpm 45 is 0.45x"):
        Transform.for_song(100.0, 45.0)
    with pytest.raises(ValueError, match="target_bpm 90: no tempo was detected in the song"):
        Transform.for_song(None, 90.0)
    assert Transform.for_song(100.0, 200.0).ratio == 0.5 and Transform.for_song(100.0, 50.0).ratio == 2.0
