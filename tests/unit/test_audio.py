"""remixer.audio: decoding every container, resampling, channels, normalization, export, errors."""

from __future__ import annotations

import math
import re

import av
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import torch
import torchaudio
from audiocraft.data.audio_utils import normalize_audio

from fixtures.audio import (
    CHANNEL_FREQS, chord, damaged_copy, declared_samples, dominant_freq, noise, ogg_cut_at_page,
    tones, truncated_copy, video_without_audio, write_audio, write_lossless,
)
from remixer import audio
from remixer.audio import (
    AudioError, Mp3Settings, export_audio, load_audio, loudness_lufs, mp3_settings, normalize, resample,
    sanitize, to_channels,
)

PEAK_1DB = 10 ** (-1 / 20)


# --- decoding ------------------------------------------------------------------------------------

# (kind, file rate, channels). mp3 holds at most 2 channels and 48 kHz, AAC at most 96 kHz;
# "opus" is an Ogg file with an Opus stream.
ROUND_TRIPS = [
    ("wav", 8000, 1), ("wav", 44100, 2), ("wav", 96000, 6), ("wav", 192000, 2),
    ("flac", 8000, 2), ("flac", 44100, 6), ("flac", 96000, 1), ("flac", 192000, 6),
    ("mp3", 8000, 1), ("mp3", 44100, 2),
    ("ogg", 8000, 6), ("ogg", 44100, 2), ("ogg", 96000, 1), ("ogg", 192000, 2),
    ("opus", 48000, 2), ("opus", 48000, 6),
    ("m4a", 8000, 1), ("m4a", 44100, 2), ("m4a", 96000, 6),
]


@pytest.mark.parametrize("kind,rate,channels", ROUND_TRIPS, ids=lambda v: str(v))
def test_load_round_trip(tmp_path, kind, rate, channels):
    n = rate + 7  # one second and an odd tail, so off-by-a-frame errors show
    source = tones(n, rate, channels)
    path = write_audio(tmp_path / f"in.{'ogg' if kind == 'opus' else kind}", source, rate, kind)

    wav, sr = load_audio(path)

    assert wav.dtype == np.float32 and sr == rate and wav.shape[0] == channels
    if kind == "mp3":
        assert abs(wav.shape[1] - n) <= 0.05 * rate
    elif kind == "m4a":
        # FFmpeg 5.1's AAC muxer records the length to within a frame; the loader must honour the
        # container's figure (trimming the encoder's padding) exactly.
        assert abs(wav.shape[1] - declared_samples(path)) <= 1
        assert abs(wav.shape[1] - n) <= 1024
    else:
        assert abs(wav.shape[1] - n) <= 1
    if kind in ("wav", "flac"):
        np.testing.assert_allclose(wav, source, atol=1 / 2**15)
    # Channel order survives (Vorbis/Opus surround is reordered to FL FR FC LFE BL BR); the LFE
    # channel (index 3) is low-passed by lossy codecs, so it is not checked there.
    for ch in range(channels):
        if ch != 3 or kind in ("wav", "flac"):
            assert dominant_freq(wav[ch], sr) == pytest.approx(CHANNEL_FREQS[ch], abs=3)


def test_load_converts_rate_and_channels(tmp_path):
    n = 44100 * 2 + 3
    path = write_lossless(tmp_path / "song.wav", tones(n, 44100, 2), 44100)

    mono, sr = load_audio(path, sample_rate=16000, channels=1)
    assert sr == 16000 and mono.shape == (1, round(n * 16000 / 44100))
    stereo, _ = load_audio(write_lossless(tmp_path / "mono.flac", tones(n, 44100, 1), 44100),
                           sample_rate=32000, channels=2)
    assert stereo.shape == (2, round(n * 32000 / 44100))
    np.testing.assert_array_equal(stereo[0], stereo[1])
    assert dominant_freq(stereo[0], 32000) == pytest.approx(440, abs=2)


def test_load_surround_to_stereo_uses_standard_downmix(tmp_path):
    wav = np.zeros((6, 8000), np.float32)
    wav[2] = 0.5  # centre only: equal in both outputs at -3 dB relative to a front channel
    wav[3] = 0.9  # LFE: dropped
    out, _ = load_audio(write_lossless(tmp_path / "c.wav", wav, 8000), channels=2)
    expected = 0.5 * math.sqrt(0.5) / (1 + 2 * math.sqrt(0.5))
    np.testing.assert_allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize("channels", [3, 6])
def test_max_channels_downmixes_only_files_with_more(tmp_path, channels):
    wav = noise(8000, channels=channels, seed=channels)
    out, _ = load_audio(write_lossless(tmp_path / "s.wav", wav, 8000, subtype="FLOAT"), max_channels=2)
    np.testing.assert_allclose(out, to_channels(wav, 2), atol=1e-6)
    mono, _ = load_audio(write_lossless(tmp_path / "m.wav", wav[:1], 8000, subtype="FLOAT"), max_channels=2)
    assert mono.shape == (1, 8000)


# --- bad inputs ----------------------------------------------------------------------------------

def _raises(path, match, **kwargs):
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path, **kwargs)
    assert path.name in str(info.value)
    return info.value


def test_missing_directory_and_empty_files(tmp_path):
    _raises(tmp_path / "nope.wav", "not found")
    (tmp_path / "folder.wav").mkdir()
    _raises(tmp_path / "folder.wav", "not a regular file")
    (tmp_path / "empty.mp3").write_bytes(b"")
    _raises(tmp_path / "empty.mp3", "empty")


def test_not_audio(tmp_path):
    (tmp_path / "notes.txt").write_text("C G Am F\n" * 20)
    _raises(tmp_path / "notes.txt", "not an audio file")
    (tmp_path / "noise.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    _raises(tmp_path / "noise.wav", "not an audio file")
    _raises(video_without_audio(tmp_path / "clip.mp4"), "no audio stream")


@pytest.mark.parametrize("kind", ["wav", "flac", "mp3", "ogg", "m4a"])
def test_truncated_files(tmp_path, kind):
    path = write_audio(tmp_path / f"song.{kind}", tones(3 * 44100, 44100, 2), 44100, kind)
    _raises(truncated_copy(path), "truncated|damaged|corrupt")


def test_ogg_cut_at_a_page_boundary(tmp_path):
    path = write_audio(tmp_path / "song.ogg", tones(3 * 44100, 44100, 2), 44100, "ogg")
    _raises(ogg_cut_at_page(path), "truncated")


def test_corrupt_flac(tmp_path):
    path = write_lossless(tmp_path / "song.flac", noise(3 * 44100), 44100)
    _raises(damaged_copy(path), "corrupt")


def test_zero_length_silent_and_non_finite(tmp_path):
    _raises(write_lossless(tmp_path / "zero.wav", np.zeros((2, 0), np.float32), 44100), "no audio")

    silent = write_lossless(tmp_path / "silent.flac", np.zeros((2, 4410), np.float32), 44100)
    _raises(silent, "silent")
    wav, _ = load_audio(silent, allow_silent=True)
    assert wav.shape == (2, 4410) and not wav.any()

    for bad in (np.nan, np.inf):
        wav = tones(4410, 44100, 2)
        wav[1, 100] = bad
        _raises(write_lossless(tmp_path / f"bad_{bad}.wav", wav, 44100, subtype="FLOAT"), "NaN")


def test_too_long_is_refused_before_decoding_more_than_its_first_frames(tmp_path, monkeypatch):
    wav_path = write_lossless(tmp_path / "long.wav", tones(5 * 8000, 8000), 8000)
    m4a_path = write_audio(tmp_path / "long.m4a", tones(5 * 8000, 8000), 8000, "m4a")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a file that its header already showed too long")

    decoded = []
    decode = av.container.InputContainer.decode

    def first_frames(container, *args, **kwargs):  # FFmpeg's: a few prove the file is audio
        for frame in decode(container, *args, **kwargs):
            decoded.append(frame)
            assert len(decoded) <= audio._PROBE_FRAMES, "decoded a file that its header already showed too long"
            yield frame

    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    monkeypatch.setattr(av.container.InputContainer, "decode", first_frames)
    _raises(wav_path, "longer than the 4 s limit", max_duration=4)
    _raises(m4a_path, "longer than the 4 s limit", max_duration=4)
    assert 0 < len(decoded) <= audio._PROBE_FRAMES
    monkeypatch.undo()
    assert load_audio(wav_path, max_duration=5.5)[0].shape == (1, 5 * 8000)


@pytest.mark.parametrize("rate, limit, shown", [(8000, 4, "4.0001"), (44_100, 600, "600.00002"),
                                                (192_000, 600, "600.00001")])
def test_one_sample_over_the_limit_reads_as_over_it(tmp_path, monkeypatch, rate, limit, shown):
    path = tmp_path / "over.wav"
    path.write_bytes(b"RIFF")  # read by the stand-in below only
    frames = limit * rate + 1

    class Header:  # a WAV header declaring one sample more than the limit (no 10 min file written)
        format, samplerate = "WAV", rate

        def __init__(self, _path):
            self.frames = frames

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(sf, "SoundFile", Header)
    message = str(_raises(path, "longer than", max_duration=limit))
    assert message.endswith(f"over.wav: audio is {shown} s long, longer than the {limit} s limit"), message


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_named_mp3_are_not_audio(tmp_path, seed):
    # FFmpeg reads a sample rate of 0, or a rate and a length of hours, into some of these.
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(seed).bytes(1_000_000))
    _raises(path, re.escape("noise.mp3: not an audio file, or an unsupported or damaged format (no decodable "
                            "audio in it"), max_duration=20)


@pytest.mark.parametrize("rate", [4000, 384000])
def test_sample_rate_out_of_range(tmp_path, rate):
    _raises(write_lossless(tmp_path / f"r{rate}.wav", tones(rate // 10, rate), rate), "outside")


def test_channel_count_without_standard_conversion(tmp_path):
    _raises(write_lossless(tmp_path / "six.wav", tones(800, 8000, 6), 8000), "6 to 4", channels=4)


def test_bad_arguments(tmp_path):
    path = write_lossless(tmp_path / "ok.wav", tones(800, 8000), 8000)
    for kwargs in ({"sample_rate": 1000}, {"channels": 0}, {"max_duration": 0}):
        with pytest.raises(ValueError):
            load_audio(path, **kwargs)


# --- resampling, channels, sanitize --------------------------------------------------------------

@pytest.mark.parametrize("orig,target", [(44100, 32000), (8000, 192000), (48000, 44100)])
def test_resample_keeps_frequency_amplitude_and_length(orig, target):
    n = orig + 11
    t = np.arange(n) / orig
    wav = np.stack([0.5 * np.sin(2 * np.pi * 1000 * t), 0.25 * np.sin(2 * np.pi * 3000 * t)])

    out = resample(wav, orig, target)

    assert out.dtype == np.float32 and out.shape == (2, round(n * target / orig))
    assert dominant_freq(out[0], target) == pytest.approx(1000, abs=1.5)
    assert dominant_freq(out[1], target) == pytest.approx(3000, abs=1.5)
    middle = slice(target // 10, -target // 10)  # skip filter edges
    assert np.abs(out[0, middle]).max() == pytest.approx(0.5, rel=0.01)
    assert np.abs(out[1, middle]).max() == pytest.approx(0.25, rel=0.01)


def test_resample_passband_and_anti_aliasing():
    n = 44100
    t = np.arange(n) / 44100
    kept, above_nyquist = (0.5 * np.sin(2 * np.pi * f * t) for f in (13000, 20000))
    middle = slice(3200, -3200)
    assert np.abs(resample(kept, 44100, 32000)[middle]).max() == pytest.approx(0.5, rel=0.01)
    # 20 kHz cannot exist at 32 kHz; a poor filter folds it back to 12 kHz.
    assert np.abs(resample(above_nyquist, 44100, 32000)[middle]).max() < 1e-3


def test_resample_same_rate_copies_and_rejects_bad_rates():
    wav = tones(100, 8000, 2)
    out = resample(wav, 8000, 8000)
    np.testing.assert_array_equal(out, wav)
    assert out is not wav
    with pytest.raises(ValueError, match="target_sr"):
        resample(wav, 8000, 0)


def test_to_channels():
    stereo = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    np.testing.assert_array_equal(to_channels(stereo, 1), [[0.5, 0.5]])
    np.testing.assert_array_equal(to_channels(stereo[:1], 2), [[1.0, 0.0], [1.0, 0.0]])
    # One impulse per 5.1 channel reveals the downmix matrix column by column.
    h = math.sqrt(0.5)
    left, right = to_channels(np.eye(6, dtype=np.float32), 2) * (1 + 2 * h)
    np.testing.assert_allclose(left, [1, 0, h, 0, h, 0], atol=1e-6)
    np.testing.assert_allclose(right, [0, 1, h, 0, 0, h], atol=1e-6)
    with pytest.raises(ValueError, match="6 to 4"):
        to_channels(np.eye(6, dtype=np.float32), 4)


def test_sanitize():
    wav = np.array([[np.nan, np.inf, -np.inf, 0.25]], np.float64)
    out = sanitize(wav)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.0, 1.0, -1.0, 0.25]])
    assert np.isnan(wav[0, 0])  # input untouched


# --- loudness and normalization ------------------------------------------------------------------

def _music(sr: int, seconds: float = 4.0, channels: int = 2) -> np.ndarray:
    n = int(sr * seconds)
    wav = chord(n, sr, channels=channels) + noise(n, channels, amplitude=0.02)
    wav[:, : n // 4] *= 0.05  # a quiet intro exercises the gates
    return wav


@pytest.mark.parametrize("sr,channels", [(8000, 1), (32000, 2), (44100, 2), (48000, 5), (96000, 2)])
def test_loudness_matches_pyloudnorm_and_torchaudio(sr, channels):
    wav = _music(sr, channels=channels)
    ours = loudness_lufs(wav, sr)
    assert ours == pytest.approx(pyloudnorm.Meter(sr).integrated_loudness(wav.T.astype(np.float64)),
                                 abs=0.1)
    assert ours == pytest.approx(torchaudio.functional.loudness(torch.from_numpy(wav), sr).item(),
                                 abs=0.1)


def test_loudness_edge_cases():
    wav = _music(48000, channels=6)
    with_lfe = wav.copy()
    with_lfe[3] = 0.5  # BS.1770 ignores the LFE channel
    assert loudness_lufs(with_lfe, 48000) == pytest.approx(loudness_lufs(wav, 48000), abs=1e-6)
    assert loudness_lufs(np.zeros((2, 48000), np.float32), 48000) == -math.inf
    short = tones(4000, 48000, 2)  # shorter than one 400 ms block
    assert math.isfinite(loudness_lufs(short, 48000))


@pytest.mark.parametrize("compressor", [False, True])
def test_loudness_normalization_hits_target_like_audiocraft(compressor):
    sr = 32000
    wav = _music(sr) * 0.2  # about -30 LUFS
    out = normalize(wav, sr, "loudness", loudness_compressor=compressor)
    expected = normalize_audio(torch.from_numpy(wav), strategy="loudness", sample_rate=sr,
                               loudness_compressor=compressor).numpy()
    np.testing.assert_allclose(out, expected, atol=2e-3)
    meter = pyloudnorm.Meter(sr).integrated_loudness(out.T.astype(np.float64))
    assert meter == pytest.approx(-14.0, abs=0.5 if not compressor else 1.5)
    assert np.abs(out).max() <= 1.0


def test_quiet_audio_keeps_its_level():
    wav = tones(8000, 8000, 2, amplitude=1e-3)  # RMS 7e-4 < 2e-3
    np.testing.assert_array_equal(normalize(wav, 8000, "loudness"), wav)


def test_peak_rms_clip_and_none():
    wav = _music(16000)
    peak = normalize(wav, 16000, "peak")
    assert np.abs(peak).max() == pytest.approx(PEAK_1DB, rel=1e-6)
    rms = normalize(wav, 16000, "rms")
    assert np.sqrt(np.mean(rms.mean(axis=0) ** 2)) == pytest.approx(10 ** (-18 / 20), rel=1e-4)
    loud = wav * 3
    clipped = normalize(loud, 16000, "clip")
    assert clipped.max() == pytest.approx(PEAK_1DB) and clipped.min() == pytest.approx(-PEAK_1DB)
    inside = np.abs(loud) < PEAK_1DB
    np.testing.assert_array_equal(clipped[inside], loud[inside])
    for strategy in ("peak", "rms", "clip"):
        expected = normalize_audio(torch.from_numpy(wav), strategy=strategy).numpy()
        np.testing.assert_allclose(normalize(wav, 16000, strategy), expected, atol=1e-5)
    np.testing.assert_array_equal(normalize(loud, 16000, None), loud)


def test_normalize_silence_and_bad_input():
    zeros = np.zeros((2, 1000), np.float32)
    for strategy in ("peak", "rms", "loudness"):
        np.testing.assert_array_equal(normalize(zeros, 8000, strategy), zeros)
    with pytest.raises(ValueError, match="unknown normalization strategy 'lufs'"):
        normalize(zeros, 8000, "lufs")
    with pytest.raises(ValueError, match="sanitize"):
        normalize(np.full((1, 10), np.nan, np.float32), 8000, "peak")


# --- export --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,bit_depth,subtype", [
    ("wav", 16, "PCM_16"), ("wav", 24, "PCM_24"), ("wav", "float", "FLOAT"),
    ("flac", 16, "PCM_16"), ("flac", 24, "PCM_24"),
])
def test_export_lossless(tmp_path, fmt, bit_depth, subtype):
    wav = tones(32000, 32000, 2, amplitude=0.7)
    path = export_audio(wav, 32000, tmp_path / "out" / "nested" / f"mix.{fmt}", strategy=None,
                        bit_depth=bit_depth)
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == (
        fmt.upper(), subtype, 32000, 2, 32000)
    back, _ = sf.read(path, dtype="float32", always_2d=True)
    np.testing.assert_allclose(back.T, wav, atol=1 / 2**15 if bit_depth == 16 else 1e-6)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_export_default_is_loudness_normalized(tmp_path):
    path = export_audio(_music(32000) * 0.2, 32000, tmp_path / "mix.wav")
    back, _ = sf.read(path, dtype="float64")
    assert pyloudnorm.Meter(32000).integrated_loudness(back) == pytest.approx(-14, abs=0.5)


@pytest.mark.parametrize("sr,channels,bitrate", [(44100, 2, 320), (32000, 1, 128), (16000, 2, 64)])
def test_export_mp3(tmp_path, sr, channels, bitrate):
    n = 2 * sr + 123
    path = export_audio(tones(n, sr, channels), sr, tmp_path / "mix.mp3", mp3_bitrate=bitrate)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert (container.format.name, stream.bit_rate, stream.sample_rate, stream.channels) == (
            "mp3", bitrate * 1000, sr, channels)
    back, rate = load_audio(path)
    assert rate == sr and back.shape[0] == channels
    assert abs(back.shape[1] - n) <= 0.05 * sr
    assert dominant_freq(back[0], sr) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("rate, settings", [
    (96_000, Mp3Settings(48_000, 320)), (88_200, Mp3Settings(48_000, 320)), (44_100, Mp3Settings(44_100, 320)),
    (22_050, Mp3Settings(22_050, 160)), (10_000, Mp3Settings(11_025, 160)), (8_000, Mp3Settings(8_000, 160)),
])
def test_mp3_settings_are_legal_for_export(tmp_path, rate, settings):
    assert mp3_settings(rate) == settings
    path = export_audio(tones(settings.sample_rate // 10, settings.sample_rate, 2), settings.sample_rate,
                        tmp_path / "a.mp3", mp3_bitrate=settings.bitrate)
    assert sf.info(path).samplerate == settings.sample_rate


def test_export_non_finite_input_gives_finite_file(tmp_path):
    wav = tones(8000, 16000, 2)
    wav[0, ::50] = np.nan
    wav[1, 7] = np.inf
    for name in ("nan.wav", "nan.mp3"):
        back, _ = sf.read(export_audio(wav, 16000, tmp_path / name, mp3_bitrate=128))
        assert np.isfinite(back).all() and np.abs(back).max() > 0.1


def test_export_replaces_atomically_and_cleans_up_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "mix.wav"
    export_audio(tones(800, 8000), 8000, path)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(sf, "write", disk_full)
    with pytest.raises(AudioError, match="mix.wav.*No space left"):
        export_audio(tones(1600, 8000), 8000, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mix.wav"]
    monkeypatch.undo()
    with pytest.raises(AudioError, match="mix.wav"):  # its "directory" is a file
        export_audio(tones(800, 8000), 8000, path / "mix.wav")


@pytest.mark.parametrize("name,kwargs,match", [
    ("mix.ogg", {}, "cannot export format 'ogg'"),
    ("mix", {}, "no suffix"),
    ("mix.wav", {"bit_depth": 8}, "bit depth 8"),
    ("mix.flac", {"bit_depth": "float"}, "bit depth 'float'"),
    ("mix.mp3", {"mp3_bitrate": 100}, "100 kbps"),
    ("mix.mp3", {"rate": 16000, "mp3_bitrate": 320}, "320 kbps"),
    ("mix.mp3", {"rate": 96000}, "96000 Hz"),
    ("mix.mp3", {"channels": 6}, "1 or 2 channels"),
])
def test_export_rejects_bad_requests(tmp_path, name, kwargs, match):
    rate, channels = kwargs.pop("rate", 44100), kwargs.pop("channels", 2)
    with pytest.raises(ValueError, match=match):
        export_audio(tones(rate // 10, rate, channels), rate, tmp_path / name, **kwargs)
    assert not list(tmp_path.iterdir())


def test_export_format_overrides_suffix(tmp_path):
    path = export_audio(tones(800, 8000), 8000, tmp_path / "mix.bin", format="flac")
    assert sf.info(path).format == "FLAC"
