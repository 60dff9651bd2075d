"""How Pipeline.remix / Pipeline.generate connect their stages, observed at each stage.

The unit tests prove each module right on its own; these prove the pipeline hands each stage the
right thing: the generator (real, wrapped by :mod:`fixtures.recording`) is checked for the
description, chords per window, coefficient, melody, prompt audio, seed and decoder it was given,
and the outputs are checked against each other and against the synthesized song's known truth
(its vocals, stems and downbeats). Every request input has a test showing that changing it
changes what its stage receives, in the documented way.

Stand-ins, where the tiny random models could not show anything: the remixes separate with a
double that returns the synthesized song's own stems (real vocals to find in the mix), and hand
the pipeline a synthesized take whose downbeats are known (the tiny LM's noise has no beat to
sync); the real generator still runs, and what it received is what the tests check.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.quality import known_stems
from btc.labels import label_to_chroma
from devtools.synth import demo_song
from devtools.tiny.cache import build_tiny_weights
from fixtures.recording import Call, RecordingCache
from remixer import chords as chord_grid
from remixer.audio import fit_length, normalize
from remixer.chords import TextChords, WindowChords
from remixer.generation import GenerationParams
from remixer.mixing import INSTRUMENTAL_GAIN_DB, VOCAL_GAIN_DB, active_level_db
from remixer.pipeline import Models, Pipeline, Result
from remixer.requests import GenerateRequest, Output, RemixRequest, Sampling
from remixer.weights import Manifest, WeightsStore

RATE = 32_000  # the song's rate and MusicGen's: nothing is resampled, so samples compare exactly
SONG_SECONDS = 3.0
BPM = 120.0
SONG_DOWNBEAT = 0.25
TAKE_DOWNBEAT = 0.45  # the stand-in take plays 0.2 s late: beat-sync must pull it onto the song
PEAK_DB = -1.0  # the "peak" normalization's level: outputs are the mix scaled, sample for sample
PROMPT = "bossa nova with nylon guitar"
QUANTUM = 1 / 32768  # 16-bit PCM


class _Recorder:
    """Forwards ``methods`` of ``real`` and keeps each call's arguments and result: the first
    method's in ``calls``, every method's in ``log[method]``."""

    def __init__(self, real, *methods: str) -> None:
        self.real = real
        self.log: dict[str, list[tuple[tuple, object]]] = {method: [] for method in methods}
        self.calls = self.log[methods[0]]
        for method in methods:
            self._record(method)

    def _record(self, method: str) -> None:
        forward = getattr(self.real, method)

        def recorded(*args, **kwargs):
            result = forward(*args, **kwargs)
            self.log[method].append((args, result))
            return result
        setattr(self, method, recorded)

    def __getattr__(self, name):
        return getattr(self.real, name)


class _KnownStems:
    """A separator that returns the synthesized song's true stems (and records what it got)."""

    def __init__(self, song) -> None:
        self.stems = known_stems(song)
        self.calls: list[tuple[tuple, object]] = []  # as _Recorder's
        self.sample_rate = song.sample_rate

    def separate(self, wav: np.ndarray, sample_rate: int, *, cancel=None):
        self.calls.append(((wav, sample_rate), self.stems))
        return self.stems


@pytest.fixture(scope="module")
def song():
    return demo_song(SONG_SECONDS, BPM, 4, sample_rate=RATE, first_downbeat=SONG_DOWNBEAT, seed=0)


@pytest.fixture(scope="module")
def take() -> np.ndarray:
    """The stand-in generated instrumental (mono, like the "chord" model's)."""
    late = demo_song(SONG_SECONDS, BPM, 4, vocals=False, sample_rate=RATE, channels=1,
                     first_downbeat=TAKE_DOWNBEAT, seed=1)
    return late.audio


@pytest.fixture(scope="module")
def song_path(song, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(path, song.audio.T, RATE, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Models:
    root = tmp_path_factory.mktemp("weights")
    manifest = Manifest.load(build_tiny_weights(root, with_melody=True, with_mbd=True))
    models = Models.load(WeightsStore(root, offline=True, manifest=manifest),
                         analysis_backend="madmom", preload=("chord",))
    models.generators = RecordingCache(models.generators)
    # 170 classes are read by the BTC inside the chord checkpoint, 25 by the separate file.
    models.recognizers = {True: _Recorder(models.chord_recognizer("chord", large_voca=True), "recognize", "read"),
                          False: _Recorder(models.recognizers[False], "recognize", "read")}
    models.chord_recognizer = lambda version, *, large_voca: models.recognizers[large_voca]
    models.separator = _Recorder(models.separator, "separate")
    return models


@dataclass
class Run:
    """One request through the pipeline and what its stages were given."""

    result: Result
    calls: list[Call]
    recognized: dict[bool, list[tuple[tuple, list]]]
    read: dict[bool, list[tuple[tuple, tuple]]]  # the per-window readings
    separated: list[tuple[np.ndarray, int]]
    stems: list  # what each separation returned

    @property
    def call(self) -> Call:
        assert len(self.calls) == 1, f"expected one generation, got {len(self.calls)}"
        return self.calls[0]

    def output(self, name: str) -> Path:
        matches = [path for path in self.result.outputs if path.stem == name and path.suffix not in (".png", ".html")]
        assert len(matches) == 1, [path.name for path in self.result.outputs]
        return matches[0]

    def audio(self, name: str) -> np.ndarray:
        """An output's samples, ``(channels, samples)``, as written."""
        wav, rate = sf.read(self.output(name), always_2d=True)
        assert rate == RATE
        return wav.T

    @property
    def analysis(self) -> dict:
        return json.loads(self.output("analysis").read_text())


def _run(models: Models, request, workdir: Path, *, separator=None, take=None) -> Run:
    """Run ``request`` (remix or generation) with an optional separator and stand-in take."""
    cache = models.generators
    first_call = len(cache.calls)
    first_recognized = {large: len(r.calls) for large, r in models.recognizers.items()}
    first_read = {large: len(r.log["read"]) for large, r in models.recognizers.items()}
    separator = separator or models.separator
    first_separated = len(separator.calls)
    real_separator, models.separator, cache.take = models.separator, separator, take
    try:
        pipeline = Pipeline(models)
        if isinstance(request, RemixRequest):
            result = pipeline.remix(request, workdir)
        else:
            result = pipeline.generate(request, workdir)
    finally:
        models.separator, cache.take = real_separator, None
    return Run(result=result, calls=cache.calls[first_call:],
               recognized={large: r.calls[first_recognized[large]:]
                           for large, r in models.recognizers.items()},
               read={large: r.log["read"][first_read[large]:] for large, r in models.recognizers.items()},
               separated=[(args[0], args[1]) for args, _ in separator.calls[first_separated:]],
               stems=[stems for _, stems in separator.calls[first_separated:]])


def _remix_request(song_path: Path, **changes) -> RemixRequest:
    fields = dict(song=song_path, prompt=PROMPT, model_version="chord", sampling=Sampling(seed=7),
                  output=Output(format="wav", normalization="peak"), return_instrumental=True,
                  return_stems=True, return_analysis=True)
    return RemixRequest(**{**fields, **changes})


@pytest.fixture(scope="module")
def main_remix(models, song, song_path, take, tmp_path_factory) -> Run:
    return _run(models, _remix_request(song_path), tmp_path_factory.mktemp("main"),
                separator=_KnownStems(song), take=lambda channels, samples: fit_length(take, samples))


@pytest.fixture(scope="module")
def repeat_remix(models, song, song_path, take, tmp_path_factory) -> Run:
    return _run(models, _remix_request(song_path), tmp_path_factory.mktemp("repeat"),
                separator=_KnownStems(song), take=lambda channels, samples: fit_length(take, samples))


VARIANT = dict(prompt="dark techno", sampling=Sampling(top_k=50, top_p=0.9, temperature=0.7,
                                                       classifier_free_guidance=1.5, seed=8),
               chroma_coefficient=2.0, large_chord_voca=False, beat_sync_threshold=0.05,
               multi_band_diffusion=True, return_stems=False)


@pytest.fixture(scope="module")
def variant_remix(models, song, song_path, take, tmp_path_factory) -> Run:
    """Every remix input changed from the main remix's (each test checks one)."""
    return _run(models, _remix_request(song_path, **VARIANT), tmp_path_factory.mktemp("variant"),
                separator=_KnownStems(song), take=lambda channels, samples: fit_length(take, samples))


def _peak_normalized(wav: np.ndarray) -> np.ndarray:
    return wav * (10 ** (PEAK_DB / 20) / np.abs(wav).max())


def _expected_chroma(generator, chords, start: float, coefficient: float) -> np.ndarray:
    """The documented chroma of window ``start``: a whole window of chords from ``start`` on (a
    short source loops, as the published model's did), fitted to the conditioner's frames, times
    the coefficient."""
    raw = chords.chroma(start=start, duration=generator.window)
    frames = generator.model.lm.condition_provider.conditioners["self_wav"].chroma_len
    return chord_grid.fit_to_window(raw, frames) * coefficient


def _window_starts(generator, count: int) -> list[float]:
    frame_rate = generator.model.frame_rate
    stride = int(generator.extend_stride * frame_rate)
    return [k * stride / frame_rate for k in range(count)]


def _best_lag(signal: np.ndarray, reference: np.ndarray, max_lag: int) -> int:
    """The lag (samples) at which ``signal[t] ~ reference[t + lag]`` correlates best."""
    n = signal.size - max_lag
    scores = [np.dot(signal[:n], reference[lag:lag + n]) /
              (np.linalg.norm(reference[lag:lag + n]) + 1e-12) for lag in range(0, max_lag, 16)]
    coarse = 16 * int(np.argmax(scores))
    fine = range(max(0, coarse - 16), min(max_lag, coarse + 17))
    return max(fine, key=lambda lag: np.dot(signal[:n], reference[lag:lag + n]) /
               (np.linalg.norm(reference[lag:lag + n]) + 1e-12))


# --- remix: what was mixed ------------------------------------------------------------------

def test_remix_is_the_returned_instrumental_plus_the_songs_vocals_sample_for_sample(main_remix, song):
    """remix = instrumental at -6 dB of its peak + the song's true vocals at -12 dB of theirs, in
    the song's stereo: the mono model's take is on both sides, the vocals as the song has them."""
    instrumental = main_remix.audio("instrumental")
    np.testing.assert_array_equal(instrumental[0], instrumental[1])
    vocals = song.stems["vocals"]
    assert vocals.shape[0] == 2 and np.abs(vocals).max() > 0.05  # the song sings
    mix = (10 ** (INSTRUMENTAL_GAIN_DB / 20) * instrumental / np.abs(instrumental).max()
           + 10 ** (VOCAL_GAIN_DB / 20) * vocals / np.abs(vocals).max())
    remix = main_remix.audio("remix")
    assert remix.shape == (2, int(SONG_SECONDS * RATE))
    assert np.abs(remix - _peak_normalized(mix)).max() < 4 * QUANTUM
    assert main_remix.analysis["mix"]["vocals_used"] is True
    assert main_remix.analysis["mix"]["vocal_level_db"] == pytest.approx(
        active_level_db(vocals.astype(np.float32), RATE), abs=0.01)


def test_mixed_instrumental_is_the_take_moved_onto_the_songs_downbeats(main_remix, take):
    """The take plays 0.2 s late; the instrumental that was mixed plays it on the song's bars."""
    analysis = main_remix.analysis
    song_downbeats = np.array(analysis["song"]["downbeats"])
    take_downbeats = np.array(analysis["instrumental"]["downbeats"])
    assert song_downbeats == pytest.approx([SONG_DOWNBEAT, SONG_DOWNBEAT + 2], abs=0.03)
    assert take_downbeats == pytest.approx([TAKE_DOWNBEAT, TAKE_DOWNBEAT + 2], abs=0.03)
    sync = analysis["beat_sync"]
    assert sync["warped"] is True and sync["matched_downbeats"] == 2
    assert sync["threshold_s"] == pytest.approx(1.1 * 60 / analysis["song"]["bpm"])  # default: 1.1 beats
    # The warp map analysis.json reports (take downbeat -> song downbeat) is the shift heard in
    # the instrumental that was returned, and so mixed (see the test above).
    lag = _best_lag(main_remix.audio("instrumental")[0], take[0], int(0.4 * RATE))
    assert lag / RATE == pytest.approx(take_downbeats[0] - song_downbeats[0], abs=0.005)
    assert lag / RATE == pytest.approx(TAKE_DOWNBEAT - SONG_DOWNBEAT, abs=0.015)


def test_return_stems_gives_the_four_separated_stems_unnormalized(main_remix, song):
    truth = known_stems(song)
    names = [path.name for path in main_remix.result.outputs]
    assert names[:2] == ["remix.wav", "instrumental.wav"]  # the main output first
    assert {"stem-drums.wav", "stem-bass.wav", "stem-other.wav", "stem-vocals.wav", "analysis.json"} <= set(names)
    for name, stem in truth.as_dict().items():
        assert np.abs(main_remix.audio(f"stem-{name}") - stem).max() <= QUANTUM


# --- remix: what the generator received -----------------------------------------------------

def test_generator_gets_the_prompt_and_the_songs_chords_window_by_window(main_remix, models, song):
    call = main_remix.call
    (_, segments), = main_remix.recognized[True]
    assert main_remix.recognized[False] == []
    assert call.version == "chord" and call.mbd is None and call.melody is None and call.prompt is None
    assert call.description.startswith(PROMPT)
    assert main_remix.analysis["description"] == call.description
    assert main_remix.analysis["prompt"] == PROMPT
    assert call.chroma_coefficient == 1.0
    assert main_remix.analysis["chords"] == [
        {"start": round(s.start, 3), "end": round(s.end, 3), "label": s.label} for s in segments]
    generator = models.generators.get("chord")
    assert len(call.windows) >= 2  # 3 s in the tiny LM's 2 s windows
    starts = _window_starts(generator, len(call.windows))
    # Each window's chords were read once, from its own 2 s of the song's vocals + bass + other
    # (looped past the song's end), by the BTC of the chord checkpoint.
    assert isinstance(call.chords, WindowChords)
    assert [r.start for r in call.chords.readings] == starts and main_remix.read[False] == []
    source = known_stems(song).chord_source
    window = int(generator.window * RATE)
    for start, ((piece, rate), labels), reading, listed in zip(
            starts, main_remix.read[True], call.chords.readings, main_remix.analysis["windows"]):
        first = int(round(start * RATE))
        assert rate == RATE and np.array_equal(piece, source[:, np.arange(first, first + window) % source.shape[1]])
        assert [s.label for s in reading.segments] == [labels[0], *(b for a, b in zip(labels, labels[1:]) if a != b)]
        assert listed["chords"] == [{"start": round(start + s.start, 3), "end": round(start + s.end, 3),
                                     "label": s.label} for s in reading.segments]
    assert len(main_remix.read[True]) == len(call.windows) == len(main_remix.analysis["windows"])
    for window, start in zip(call.windows, starts):
        assert set(window.text.values()) == {call.description}
        expected = _expected_chroma(generator, call.chords, start, 1.0)
        assert np.array_equal(window.chroma, expected), f"window at {start} s"
    # The chords change between windows, so a window given another's chords would be seen.
    assert not np.array_equal(call.windows[0].chroma, call.windows[1].chroma)


def test_remix_seed_reaches_the_lm_and_the_same_seed_gives_the_same_remix(main_remix, repeat_remix):
    call = main_remix.call
    assert call.params.seed == 7 and call.result.seed == 7
    assert main_remix.result.seed == 7 and main_remix.analysis["seed"] == 7
    assert {window.seed for window in call.windows} == {7}
    assert np.array_equal(repeat_remix.call.result.tokens, call.result.tokens)
    for name in ("remix", "instrumental"):
        assert np.array_equal(repeat_remix.audio(name), main_remix.audio(name))


# --- remix: every input changes what its stage receives -------------------------------------

def test_remix_prompt_and_sampling_settings_reach_the_generator(variant_remix):
    call = variant_remix.call
    assert call.description.startswith("dark techno")
    assert PROMPT not in call.description
    assert call.params == GenerationParams(duration=SONG_SECONDS, top_k=50, top_p=0.9, temperature=0.7,
                                           cfg_coef=1.5, seed=8)
    assert {window.seed for window in call.windows} == {8}


def test_large_chord_voca_off_reads_the_chords_with_the_25_class_model(variant_remix):
    assert variant_remix.recognized[True] == [] and variant_remix.read[True] == []
    (_, segments), = variant_remix.recognized[False]
    assert len(variant_remix.read[False]) == len(variant_remix.call.windows)  # once per window
    read = [s for r in variant_remix.call.chords.readings for s in r.segments]
    # 25 classes: major and minor triads (and N) only.
    assert {s.label.split(":")[1] if ":" in s.label else "maj" for s in segments + read} <= {"maj", "min", "N"}


def test_chroma_coefficient_scales_the_chords_the_lm_receives(variant_remix, models):
    call = variant_remix.call
    assert call.chroma_coefficient == 2.0
    generator = models.generators.get("chord")
    for window, start in zip(call.windows, _window_starts(generator, len(call.windows))):
        expected = _expected_chroma(generator, call.chords, start, 2.0)
        assert np.array_equal(window.chroma, expected)
    assert max(window.chroma.max() for window in call.windows) == 2.0


def test_beat_sync_threshold_bounds_the_gap_a_downbeat_is_moved_across(variant_remix, take):
    """0.05 s is less than the take's 0.2 s lateness: nothing is moved, the take is mixed as is."""
    sync = variant_remix.analysis["beat_sync"]
    assert sync["threshold_s"] == 0.05
    assert sync["warped"] is False and sync["matched_downbeats"] == 0
    instrumental = variant_remix.audio("instrumental")
    assert np.abs(instrumental - _peak_normalized(take)).max() < 2 * QUANTUM


def test_multi_band_diffusion_decodes_with_the_shared_mbd(variant_remix, main_remix, models):
    assert variant_remix.call.mbd is models.generators.mbd()
    assert main_remix.call.mbd is None


# --- generation -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_generation(models, tmp_path_factory) -> Run:
    request = GenerateRequest(prompt="jazz trio", model_version="chord", duration=1.5,
                              text_chords="C G A:min F", bpm=100, time_sig="3/4", sampling=Sampling(seed=3))
    return _run(models, request, tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def audio_chords_generation(models, song_path, tmp_path_factory) -> Run:
    request = GenerateRequest(prompt="lofi", model_version="chord", duration=1.0, audio=song_path,
                              audio_start=0.5, audio_end=2.0, large_chord_voca=False,
                              chroma_coefficient=1.5, multi_band_diffusion=True, sampling=Sampling(seed=4))
    return _run(models, request, tmp_path_factory.mktemp("audio-chords"))


def test_generation_lasts_the_requested_duration(text_generation, audio_chords_generation):
    assert text_generation.audio("generated").shape == (1, int(1.5 * RATE))
    assert audio_chords_generation.audio("generated").shape == (1, RATE)
    assert text_generation.call.params == GenerationParams(duration=1.5, seed=3)


def test_generation_is_loudness_normalised_without_the_remix_compressor(models, tmp_path):
    """The published chord predictor wrote its output with ``audio_write(..., strategy=...)``
    (sakemin/cog-musicgen-chord predict.py lines 418-423), whose ``loudness_compressor`` defaults
    to False (audiocraft/data/audio.py line 165): no tanh, unlike the Remixer's mix (its
    predict.py lines 394-400 pass True). Noise stands in for the take: peaks near 0.7 after the
    gain, where tanh and a clamp part."""
    noise = 0.05 * np.random.default_rng(0).standard_normal((1, RATE)).astype(np.float32)
    run = _run(models, GenerateRequest(prompt="jazz trio", model_version="chord", duration=1.0,
                                       sampling=Sampling(seed=3)),
               tmp_path, take=lambda channels, samples: noise[:, :samples])
    written = run.audio("generated")
    plain = normalize(noise, RATE, "loudness", loudness_compressor=False)
    assert np.abs(written - plain).max() <= QUANTUM
    assert np.abs(written - normalize(noise, RATE, "loudness", loudness_compressor=True)).max() > 0.05


def test_text_chords_reach_the_lm_at_their_tempo_and_meter(text_generation, models):
    call = text_generation.call
    assert call.description.startswith("jazz trio")
    assert "3/4" in call.description and "bpm : 100" in call.description
    assert call.chords == TextChords("C G A:min F", 100, "3/4")
    generator = models.generators.get("chord")
    window, = call.windows
    assert np.array_equal(window.chroma, _expected_chroma(generator, call.chords, 0.0, 1.0))
    # At 100 BPM in 3/4 a bar lasts 1.8 s: C until then, G after (frames ~7.8 per second).
    c_major, g_major = (label_to_chroma(label) for label in ("C", "G"))
    frame = 1 / chord_grid.AUDIO_FRAME_RATE
    assert np.array_equal(window.chroma[int(1.3 / frame)], c_major)
    assert np.array_equal(window.chroma[int(1.95 / frame)], g_major)


def test_input_audio_chords_are_read_from_the_separated_clip(audio_chords_generation, song, models):
    run = audio_chords_generation
    (clip, rate), = run.separated
    assert rate == RATE and np.array_equal(clip, song.audio[:, int(0.5 * RATE):int(2.0 * RATE)])
    assert run.recognized[True] == [] and run.read[True] == []
    # One window (1 s out of 2 s windows): the clip read once, whole and unlooped.
    ((piece, _), labels), = run.read[False]
    (stems,) = run.stems
    assert piece.shape == (2, int(1.5 * RATE)) and np.array_equal(piece, stems.chord_source)
    call = run.call
    (reading,) = call.chords.readings
    assert [s.label for s in reading.segments] == [labels[0], *(b for a, b in zip(labels, labels[1:]) if a != b)]
    assert call.melody is None and call.prompt is None
    assert call.description.startswith("lofi")
    generator = models.generators.get("chord")
    window, = call.windows
    assert np.array_equal(window.chroma, _expected_chroma(generator, call.chords, 0.0, 1.5))
    assert window.chroma.max() == 1.5
    assert call.mbd is models.generators.mbd()


def test_melody_model_follows_the_clip_of_input_audio(models, song, song_path, tmp_path):
    request = GenerateRequest(prompt="piano", model_version="melody", duration=1.0, audio=song_path,
                              audio_start=1.0, sampling=Sampling(seed=5))
    run = _run(models, request, tmp_path)
    call = run.call
    clip = song.audio[:, RATE:]  # audio_end unset: to the end of the file
    assert call.version == "melody" and call.chords is None and call.prompt is None
    assert call.melody.sample_rate == RATE and np.array_equal(call.melody.samples, clip)
    window, = run.call.windows
    np.testing.assert_allclose(window.melody, clip.mean(axis=0, keepdims=True), atol=1e-6)
    assert run.separated == []  # melody models take the waveform: nothing to read chords from
    assert run.audio("generated").shape == (1, RATE)


def test_continuation_starts_with_the_clip_and_lasts_the_duration(models, song, song_path, tmp_path):
    request = GenerateRequest(prompt="piano", model_version="chord", duration=1.5, audio=song_path,
                              audio_start=1.0, audio_end=1.5, continuation=True, sampling=Sampling(seed=6))
    run = _run(models, request, tmp_path)
    call = run.call
    clip = song.audio[:, RATE:int(1.5 * RATE)]
    assert call.melody is None and call.chords is None and run.separated == []
    assert call.prompt.sample_rate == RATE and np.array_equal(call.prompt.samples, clip)
    first, *_ = call.windows
    assert first.prompt_frames == 25  # 0.5 s at 50 codec frames per second
    assert first.chroma.shape == (0, 12)  # no chords: the null condition
    codec = models.generators.get("chord").model.compression_model
    with torch.no_grad():
        codes, _ = codec.encode(call.prompt.tensor(RATE, 1))
    assert np.array_equal(call.result.tokens[:, :25], codes[0].numpy())
    assert run.audio("generated").shape == (1, int(1.5 * RATE))


# --- remixes that share one reading of the song (python -m remixer batch) -------------------

@pytest.fixture
def known_pipeline(models, song, take):
    """A pipeline whose separator returns the song's true stems, with the stand-in take."""
    separator = _KnownStems(song)
    real, models.separator = models.separator, separator
    models.generators.take = lambda channels, samples: fit_length(take, samples)
    try:
        yield Pipeline(models), separator
    finally:
        models.separator, models.generators.take = real, None


def test_remixes_given_one_song_analysis_separate_once_and_equal_the_remix_alone(
        known_pipeline, models, main_remix, song_path, tmp_path):
    pipeline, separator = known_pipeline
    first_call = len(models.generators.calls)
    recognized = len(models.recognizers[True].calls)
    analysis = pipeline.analyze_song(_remix_request(song_path))
    same = pipeline.remix(_remix_request(song_path), tmp_path / "same", song_analysis=analysis)
    other = pipeline.remix(_remix_request(song_path, prompt="dark techno"), tmp_path / "other",
                           song_analysis=analysis)
    assert len(separator.calls) == 1 and len(models.recognizers[True].calls) == recognized + 1
    assert set(analysis.timings) == {"decode", "separation", "chords", "analysis (song)"}
    assert not set(same.timings) & set(analysis.timings) and "generation" in same.timings
    # The main remix's request and seed, on the shared analysis: the same remix, sample for sample.
    for name in ("remix", "instrumental", "stem-vocals"):
        assert np.array_equal(sf.read(tmp_path / "same" / f"{name}.wav")[0], main_remix.audio(name).T.squeeze())
    assert same.analysis["chords"] == main_remix.analysis["chords"]
    # The other prompt reached the generator, each window's chords read from the shared stems as
    # the main remix's were.
    _, call = models.generators.calls[first_call:]
    assert call.description.startswith("dark techno") and PROMPT not in call.description
    assert call.chords == main_remix.call.chords and len(call.chords.readings) >= 1
    assert other.analysis["song"] == main_remix.analysis["song"]


def test_a_song_analysis_serves_only_remixes_whose_chords_its_btc_read(known_pipeline, models, song_path,
                                                                     tmp_path):
    pipeline, separator = known_pipeline
    analysis = pipeline.analyze_song(_remix_request(song_path))
    small = _remix_request(song_path, large_chord_voca=False)
    with pytest.raises(ValueError, match=r"has the chords of chord \(170 classes\); the remix reads "
                                         r"them with btc \(25 classes\)"):
        pipeline.remix(small, tmp_path, song_analysis=analysis)
    recognized = len(models.recognizers[False].calls)
    reread = pipeline.analyze_song(small, separated=analysis)
    assert len(separator.calls) == 1  # the stems and beats are reused, the chords read again
    (args, segments), = models.recognizers[False].calls[recognized:]
    assert np.array_equal(args[0], analysis.stems.chord_source) and reread.chords == segments
    assert reread.beats is analysis.beats and reread.chord_reader == "btc (25 classes)"
    assert set(reread.timings) == {"chords"}
