import numpy as np
import pytest

from remixer.mixing import active_level_db, mix

SR = 32_000


def tone(freq: float, seconds: float, amplitude: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return np.tile(amplitude * np.sin(2 * np.pi * freq * t), (channels, 1)).astype(np.float32)


def test_reference_gains_and_centred_mono_vocals():
    instrumental = tone(110, 2.0, 0.9, channels=2)
    instrumental[1] *= 0.5  # a real stereo image, kept as is
    vocals = tone(440, 2.0, 0.3)
    result = mix(instrumental, vocals, SR)
    assert result.vocals_used and result.audio.shape == (2, 2 * SR)
    assert result.audio.dtype == np.float32
    expected = 0.5 * instrumental / 0.9 + 0.25 * vocals / np.abs(vocals).max()
    np.testing.assert_allclose(result.audio, expected, atol=1e-6)
    assert result.vocal_level_db == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.05)


def test_stereo_vocals_downmixed_only_for_mono_instrumental():
    vocals = np.stack([tone(440, 1.0, 0.4)[0], tone(660, 1.0, 0.2)[0]])
    stereo = mix(tone(110, 1.0, 0.5, channels=2), vocals, SR)
    assert stereo.audio.shape == (2, SR)
    assert not np.allclose(stereo.audio[0], stereo.audio[1])
    mono = mix(tone(110, 1.0, 0.5), vocals, SR)
    assert mono.audio.shape == (1, SR)
    downmix = vocals.mean(axis=0)
    np.testing.assert_allclose(mono.audio[0], 0.5 * tone(110, 1.0, 1.0)[0]
                               + 0.25 * downmix / np.abs(downmix).max(), atol=1e-6)


@pytest.mark.parametrize("vocal_seconds", [1.0, 3.0])
def test_vocals_fitted_to_instrumental_length(vocal_seconds):
    result = mix(tone(110, 2.0, 0.5, channels=2), tone(440, vocal_seconds, 0.5), SR)
    assert result.audio.shape == (2, 2 * SR)
    if vocal_seconds < 2.0:
        np.testing.assert_allclose(result.audio[:, SR:], 0.5 * tone(110, 2.0, 1.0, 2)[:, SR:],
                                   atol=1e-6)


def test_no_vocal_song_keeps_instrumental_only():
    instrumental = tone(110, 1.0, 0.8, channels=2)
    # An instrumental song: vocals stem all zero, or faint separation residue.
    rng = np.random.default_rng(0)
    residue = rng.standard_normal((2, SR)).astype(np.float32) * 10 ** (-70 / 20)
    for vocals in (np.zeros((2, SR), np.float32), residue):
        result = mix(instrumental, vocals, SR)
        assert not result.vocals_used and result.vocal_level_db < -50
        np.testing.assert_allclose(result.audio, 0.5 * instrumental / 0.8, atol=1e-7)
    assert mix(instrumental, np.zeros((2, SR), np.float32), SR).vocal_level_db == float("-inf")
    # The floor is the caller's to move.
    assert mix(instrumental, residue, SR, vocal_floor_db=-80).vocals_used


def test_sparse_vocals_count_as_sung():
    vocals = np.zeros((1, 10 * SR), np.float32)
    vocals[:, 4 * SR:5 * SR] = tone(440, 1.0, 0.1)  # sings 10 % of the time
    result = mix(tone(110, 10.0, 0.5, 2), vocals, SR)
    assert result.vocals_used and result.vocal_level_db == pytest.approx(-23.0, abs=0.2)


def test_silent_parts_never_give_nan():
    silent = np.zeros((2, SR), np.float32)
    result = mix(silent, silent, SR)
    assert np.all(result.audio == 0) and not result.vocals_used
    result = mix(silent, tone(440, 1.0, 0.5, 2), SR)
    assert result.vocals_used and np.abs(result.audio).max() == pytest.approx(0.25)
    assert mix(np.zeros((2, 0), np.float32), tone(440, 1.0, 0.5), SR).audio.shape == (2, 0)


def test_custom_gains():
    result = mix(tone(110, 1.0, 0.3), np.zeros((1, SR), np.float32), SR, instrumental_gain_db=0.0)
    assert np.abs(result.audio).max() == pytest.approx(1.0, abs=1e-4)


def test_active_level_of_short_clip():
    level = active_level_db(np.full((1, 10), 0.5, np.float32), SR)
    assert level == pytest.approx(20 * np.log10(0.5))


@pytest.mark.parametrize("instrumental,vocals,rate,match", [
    (np.zeros(10, np.float32), np.zeros((1, 10), np.float32), SR, "instrumental must be shaped"),
    (np.zeros((2, 10), np.float32), np.zeros((1, 10), np.int32), SR, "vocals must be floating"),
    (np.full((2, 10), np.nan, np.float32), np.zeros((1, 10), np.float32), SR, "NaN"),
    (np.zeros((2, 10), np.float32), np.zeros((3, 10), np.float32), SR, "3-channel vocals"),
    (np.zeros((2, 10), np.float32), np.zeros((1, 10), np.float32), 0, "sample_rate"),
])
def test_mix_rejects_bad_input(instrumental, vocals, rate, match):
    with pytest.raises(ValueError, match=match):
        mix(instrumental, vocals, rate)
