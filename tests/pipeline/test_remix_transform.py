"""A remix at a new tempo and key, end to end through Pipeline.remix with tiny real-format models.

Separation and chord recognition are replaced by the synth's known stems and chords (the tiny
htdemucs and BTC are random), so the vocals and chords that go through the transform are known;
for the tempo test the generator is replaced by the accompaniment rendered at the bpm the
pipeline asks for, drifting (as MusicGen's takes do), so madmom can re-detect the result. Beat
analysis is madmom's real pretrained model throughout.
"""
from __future__ import annotations

import base64
import io
import json
import math
import re
import struct

import av
import librosa
import numpy as np
import pedalboard
import pytest
import pytsmod
import soundfile as sf

from bench.quality import known_stems
from btc.features import FRAME_SECONDS
from btc.labels import label_to_chroma
from btc.recognizer import frame_segments
from devtools.synth import SynthSong, demo_song, retimed
from devtools.tiny.cache import build_tiny_weights
from remixer import chords as chord_grid
from remixer import plot
from remixer.analysis.madmom import MadmomAnalyzer
from remixer.generation import GenerationResult
from remixer.musicgen.conditioners import CHROMA_ATTRIBUTE
from remixer.pipeline import Models, Pipeline
from remixer.requests import InputError, RemixRequest, Sampling
from remixer.weights import Manifest, WeightsStore

RATE = 32_000  # the model's rate: outputs keep the song's sample count base


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Models:
    root = tmp_path_factory.mktemp("weights")
    store = WeightsStore(root, offline=True, manifest=Manifest.load(build_tiny_weights(root)))
    return Models.load(store, analysis_backend="madmom", preload=("chord",))


@pytest.fixture(scope="module")
def song() -> SynthSong:
    """Long enough for madmom to find the tempo of the remix again (5 bars at 120 BPM)."""
    return demo_song(12.0, 100, sample_rate=RATE, channels=2, seed=2)


@pytest.fixture(scope="module")
def short_song() -> SynthSong:
    """For what needs no re-detection: each second costs a real (tiny) generation."""
    return demo_song(6.0, 100, sample_rate=RATE, channels=2, seed=2)


def _true_labels(song: SynthSong, start: float, frames: int) -> tuple[str, ...]:
    """The song's true chord at each reading frame ``k`` (``start + k * 10/108`` s, looped)."""
    times = np.mod(start + np.arange(frames) * FRAME_SECONDS, song.audio.shape[1] / song.sample_rate)
    return tuple(next(c.label for c in song.chords if c.start <= t < c.end) for t in times)


def _reading_frames(samples: int, rate: int) -> int:
    return max(1, math.ceil(round(samples / rate / FRAME_SECONDS, 6)))  # 108 per 10 s chunk


@pytest.fixture
def oracle(models, monkeypatch):
    """Makes separation and chord recognition return a song's truth: a reading of any slice of
    the song's chord source (found by its samples) gives the true chords at its frames."""
    def use(song: SynthSong) -> SynthSong:
        source = known_stems(song).chord_source
        monkeypatch.setattr(models.separator, "separate", lambda wav, rate, **_: known_stems(song))

        def read(wav, rate):
            looped = np.concatenate([source, source], axis=1)
            head = wav[0, :64]
            first = next(i for i in np.flatnonzero(looped[0, :source.shape[1]] == head[0])
                         if np.array_equal(looped[0, i:i + 64], head))
            return _true_labels(song, first / rate, _reading_frames(wav.shape[1], rate))
        # The chord model reads 170-class chords with the BTC its checkpoint carries.
        monkeypatch.setattr(models.chord_recognizer("chord", large_voca=True), "read", read)
        return song
    return use


def _write_song(song: SynthSong, tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, song.audio.T, song.sample_rate, subtype="FLOAT")
    return path


def _request(path, **kwargs) -> RemixRequest:
    return RemixRequest(**{"song": path, "prompt": "lofi", "model_version": "chord",
                           "sampling": Sampling(seed=4), **kwargs})


def _outputs(result) -> dict[str, object]:
    return {path.name: path for path in result.outputs}


def _nearest_errors(truth: np.ndarray, detected: np.ndarray) -> np.ndarray:
    return np.array([np.min(np.abs(detected - t)) for t in truth])


def test_remix_at_120_bpm_from_a_100_bpm_song(models, song, oracle, tmp_path, monkeypatch):
    oracle(song)
    asked: list[str] = []

    def take_at_the_asked_tempo(description, params, **_):
        asked.append(description)
        bpm = float(re.search(r"bpm : (\d+)", description).group(1))
        take = retimed(song, (0.97 * bpm, 1.02 * bpm), vocals=False, sample_rate=RATE,
                       first_downbeat=0.3, duration=params.duration)
        return GenerationResult(take.audio, RATE, params.seed, np.zeros((1, 0), np.int64))

    monkeypatch.setattr(models.generators.get("chord"), "generate", take_at_the_asked_tempo)
    result = Pipeline(models).remix(
        _request(_write_song(song, tmp_path), target_bpm=120, return_instrumental=True,
                 return_stems=True, return_analysis=True), tmp_path / "out")
    out = _outputs(result)
    analysis = json.loads(out["analysis.json"].read_text())
    song_bpm = analysis["song"]["bpm"]
    ratio = analysis["transform"]["stretch_ratio"]
    assert abs(song_bpm - 100) < 1.5 and ratio == pytest.approx(song_bpm / 120, rel=1e-12)
    assert analysis["transform"]["bpm"] == 120 and re.search(r"bpm : 120\b", asked[0])

    mix, rate = sf.read(out["remix.wav"], always_2d=True)
    assert rate == RATE and abs(mix.shape[0] - song.audio.shape[1] * ratio) <= 1
    # The remix's tempo, measured (the reported bpm is All-In-One's mode of whole-BPM intervals,
    # which 10 ms beat frames make jump by 2-5 BPM on 10 s of music).
    assert abs(60 / np.median(np.diff(MadmomAnalyzer().analyze(mix.T, rate).beats)) - 120) < 2

    # Downbeats of the synced instrumental, re-detected, on the song's downbeats scaled by the ratio.
    targets = np.array(analysis["transform"]["downbeats"])
    assert np.allclose(targets, np.array(analysis["song"]["downbeats"]) * ratio)
    instrumental, _ = sf.read(out["instrumental.wav"], always_2d=True)
    detected = MadmomAnalyzer().analyze(instrumental.T, RATE).downbeats
    errors = _nearest_errors(targets, detected)
    assert len(targets) >= 3 and np.median(errors) <= 0.020 and errors.max() <= 0.035

    # The returned vocal stem is the song's vocals stretched like an independent Rubber Band run,
    # and phrased like another algorithm's stretch (pytsmod's phase vocoder: loudness envelopes).
    vocals, _ = sf.read(out["stem-vocals.wav"], always_2d=True)
    reference = pedalboard.time_stretch(song.stems["vocals"], RATE, stretch_factor=120 / song_bpm)
    n = min(vocals.shape[0], reference.shape[1])
    assert vocals.shape[0] == round(song.audio.shape[1] * ratio)
    assert np.corrcoef(vocals[:n, 0], reference[0, :n])[0, 1] > 0.95
    vocoded = np.asarray(pytsmod.phase_vocoder(song.stems["vocals"][0], ratio, phase_lock=True))
    a, b = _envelope(vocals[:, 0]), _envelope(vocoded)
    n = min(a.size, b.size)
    assert abs(a.size - b.size) <= 2 and np.corrcoef(a[:n], b[:n])[0, 1] > 0.95


def _envelope(wav: np.ndarray) -> np.ndarray:
    return librosa.feature.rms(y=np.asarray(wav, dtype=np.float32), frame_length=1024, hop_length=256)[0]


def _median_f0_cents(wav: np.ndarray, rate: int) -> float:
    f0 = librosa.yin(wav, fmin=150, fmax=1000, sr=rate, frame_length=2048, hop_length=256)
    rms = librosa.feature.rms(y=wav, frame_length=2048, hop_length=256)[0][:f0.size]
    return float(np.median(1200 * np.log2(f0[rms > 0.3 * rms.max()] / 27.5)))


def test_key_shift_conditions_on_the_transposed_chords_and_shifts_the_vocals(models, short_song, oracle,
                                                                             tmp_path, monkeypatch):
    song = oracle(short_song)
    generator = models.generators.get("chord")
    conditioner = generator.model.lm.condition_provider.conditioners[CHROMA_ATTRIBUTE]
    chromas: list[np.ndarray] = []
    real_condition = conditioner.condition

    def spy(chroma):
        chromas.append(chroma.numpy().copy())
        return real_condition(chroma)

    monkeypatch.setattr(conditioner, "condition", spy)
    result = Pipeline(models).remix(
        _request(_write_song(song, tmp_path), key_shift=2, return_stems=True, return_analysis=True),
        tmp_path / "out")
    out = _outputs(result)

    # Window k of the generation is conditioned on the known chords of its own reading (a whole
    # window from its start, the song looping past its end), shifted up 2.
    frame_rate = generator.model.frame_rate
    stride = int(generator.extend_stride * frame_rate) / frame_rate
    assert len(chromas) >= 3
    frames = _reading_frames(int(generator.window * RATE), RATE)
    for k, chroma in enumerate(chromas):
        labels = _true_labels(song, k * stride, frames)
        known = chord_grid.fit_to_window(chord_grid.reading_chroma(
            frame_segments(labels, end=frames * FRAME_SECONDS), generator.window), conditioner.chroma_len)
        assert known.sum() > 0 and np.array_equal(chroma, np.roll(known, 2, axis=1)), k
    # The same, label by label: C G A:min became D A B:min; analysis.json holds both.
    analysis = json.loads(out["analysis.json"].read_text())
    assert [c["label"] for c in analysis["chords"][:4]] == ["N", "C", "G", "A:min"]
    assert [c["label"] for c in analysis["transform"]["chords"][:4]] == ["N", "D", "A", "B:min"]
    assert all(np.array_equal(np.roll(label_to_chroma(a["label"]), 2), label_to_chroma(b["label"]))
               and a["start"] == b["start"] for a, b in zip(analysis["chords"], analysis["transform"]["chords"]))
    assert analysis["transform"]["stretch_ratio"] == 1.0 and analysis["transform"]["key_shift"] == 2

    vocals, rate = sf.read(out["stem-vocals.wav"], always_2d=True)
    truth = song.stems["vocals"].mean(axis=0)
    assert vocals.shape[0] == song.audio.shape[1] and rate == RATE
    shift = _median_f0_cents(vocals.mean(axis=1), rate) - _median_f0_cents(truth, RATE)
    assert shift == pytest.approx(200, abs=15)
    assert sf.info(out["remix.wav"]).frames == song.audio.shape[1]


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_analysis_png_and_html_are_written_beside_the_json_stereo_model(models, short_song, oracle, tmp_path,
                                                                        monkeypatch):
    song = oracle(short_song)
    figures = []
    real_figure = plot.analysis_figure
    monkeypatch.setattr(plot, "analysis_figure", lambda data: figures.append(real_figure(data)) or figures[-1])
    result = Pipeline(models).remix(_request(_write_song(song, tmp_path), target_bpm=90, key_shift=-1,
                                             model_version="stereo-chord", return_instrumental=True,
                                             return_analysis=True), tmp_path / "out")
    out = _outputs(result)
    assert [p.name for p in result.outputs] == ["remix.wav", "instrumental.wav", "analysis.json", "analysis.png",
                                                "analysis.html"]
    assert out["analysis.png"].parent == out["analysis.html"].parent == out["analysis.json"].parent
    assert _png_size(out["analysis.png"]) == (1600, plot.HEADER_PX + plot.ROW_PX + plot.WARP_PX + plot.FOOTER_PX)
    # The picture drew what analysis.json reports, on the remix's timeline.
    analysis = json.loads(out["analysis.json"].read_text())
    (figure,) = figures
    marks: dict[str, list[float]] = {}
    for artist in figure.findobj():
        if (gid := artist.get_gid()) in ("downbeats", "beats", "generated downbeats"):
            marks.setdefault(gid, []).extend(seg[0, 0] for seg in artist.get_segments())
    assert len(analysis["song"]["downbeats"]) >= 2
    assert marks["downbeats"] == pytest.approx(analysis["transform"]["downbeats"])
    assert len(marks["beats"]) == len(analysis["song"]["beats"])
    assert marks["generated downbeats"] == pytest.approx(analysis["instrumental"]["downbeats"])
    assert figure.axes[-1].get_xlim()[1] == pytest.approx(sf.info(out["remix.wav"]).duration)
    texts = {text.get_text() for text in figure.findobj(lambda a: hasattr(a, "get_text"))}
    assert any(text.startswith(f"song {analysis['song']['bpm']:.1f} BPM, 4/4 -> remix 90.0 BPM") for text in texts)
    # The stereo model's remix and instrumental: two channels at the stretched length.
    ratio = analysis["transform"]["stretch_ratio"]
    for name in ("remix.wav", "instrumental.wav"):
        info = sf.info(out[name])
        assert info.channels == 2 and abs(info.frames - song.audio.shape[1] * ratio) <= 1
    # The page: the same analysis, and players for the song (on its own clock), the remix and the
    # instrumental after and before beat-sync, each as long as what it plays.
    page = out["analysis.html"].read_text()
    data = json.loads(re.search(r'<script id="analysis-data" type="application/json">(.*?)</script>', page, re.S)[1])
    assert data["downbeats"] == pytest.approx(analysis["transform"]["downbeats"], abs=1e-3)
    assert data["generated"] == pytest.approx(analysis["instrumental"]["downbeats"], abs=1e-3)
    assert data["duration"] == pytest.approx(sf.info(out["remix.wav"]).duration, abs=1e-3)
    assert data["tracks"] == [{"label": "song", "timescale": ratio}, {"label": "remix", "timescale": 1.0},
                              {"label": "instrumental, after beat-sync", "timescale": 1.0},
                              {"label": "instrumental, as generated", "timescale": 1.0}]
    previews = [_mp3_seconds(base64.b64decode(uri)) for uri in re.findall(r'src="data:audio/mpeg;base64,([^"]+)"', page)]
    assert previews == pytest.approx([short_song.duration, *[sf.info(out["remix.wav"]).duration] * 3], abs=0.06)


def _mp3_seconds(mp3: bytes) -> float:
    with av.open(io.BytesIO(mp3)) as container:
        return sum(frame.samples for frame in container.decode(audio=0)) / container.streams.audio[0].rate


def test_bad_target_for_the_song_fails_before_separation(models, short_song, tmp_path, monkeypatch):
    # madmom reads the mix, so the song's tempo is known, and the target refused, before any separation.
    monkeypatch.setattr(models.separator, "separate", lambda *a, **k: pytest.fail("separation ran"))
    monkeypatch.setattr(models.generators.get("chord"), "generate",
                        lambda *a, **k: pytest.fail("generation ran"))
    with pytest.raises(InputError, match=r"^target_bpm 230 is 2\.\d\dx the song's tempo \(\d+\.\d BPM\); "
                                         r"it must stay within 0\.5x-2x of it \(\d+\.\d-\d+\.\d BPM\)$"):
        Pipeline(models).remix(_request(_write_song(short_song, tmp_path), target_bpm=230), tmp_path / "out")


class _StemReader(MadmomAnalyzer):
    """madmom's analysis presented as one that reads the stems, as All-In-One does."""

    needs_stems = True


def test_a_stem_reading_analysis_checks_the_target_right_after_separation_and_says_why(
        models, short_song, oracle, tmp_path, monkeypatch):
    oracle(short_song)
    separated = []
    real = models.separator.separate
    monkeypatch.setattr(models.separator, "separate", lambda *a, **k: separated.append(1) or real(*a, **k))
    monkeypatch.setattr(models, "analyzer", _StemReader())
    monkeypatch.setattr(models.chord_recognizer("chord", large_voca=True), "recognize",
                        lambda *a, **k: pytest.fail("chords were read"))
    with pytest.raises(InputError, match=r"target_bpm 230 is .* \(All-In-One reads the tempo from the separated "
                                         r"stems, so this showed only after the separation; song_bpm would "
                                         r"have it checked at once\)"):
        Pipeline(models).remix(_request(_write_song(short_song, tmp_path), target_bpm=230), tmp_path / "out")
    assert separated == [1]
