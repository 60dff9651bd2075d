"""The remix pipeline with tiny real-format models: data flow, lengths and edge cases."""
from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
import soundfile as sf

from devtools.tiny.cache import build_tiny_weights
from devtools.tiny.demucs import ScaledSources
from fixtures.cancel import CancelAfter, CountingSources
from fixtures.music import noise, synth_song
from remixer.beats import TempoPrior
from remixer.cancellation import Cancelled
from remixer.client_audio import load_clip
from remixer.pipeline import Models, Pipeline, _chord_description, _with_bpm
from remixer.requests import GenerateRequest, InputError, RemixRequest, Sampling
from remixer.separation import Separator
from remixer.weights import Manifest, WeightsStore


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Models:
    root = tmp_path_factory.mktemp("weights")
    store = WeightsStore(root, offline=True, manifest=Manifest.load(build_tiny_weights(root)))
    return Models.load(store, analysis_backend="madmom", preload=("chord",))


def _write(path, wav: np.ndarray, rate: int):
    sf.write(path, wav.T, rate, subtype="FLOAT")
    return path


def _request(song, **kwargs) -> RemixRequest:
    return RemixRequest(song=song, prompt="bossa nova", model_version="chord",
                        sampling=Sampling(seed=7), **kwargs)


class _Spy:
    """Records the calls of one method and forwards them."""

    def __init__(self, monkeypatch, owner, name: str, order: list[str] | None = None) -> None:
        self.calls: list[tuple] = []
        self.results: list = []
        real = getattr(owner, name)

        def spy(*args, **kwargs):
            if order is not None:
                order.append(name)
            self.calls.append((args, kwargs))
            self.results.append(real(*args, **kwargs))
            return self.results[-1]
        monkeypatch.setattr(owner, name, spy)


class _StemReader:
    """madmom's analysis presented as an analyser that reads the stems (as All-In-One does)."""

    name = "allinone"
    needs_stems = True

    def __init__(self, real) -> None:
        self.real = real

    def analyze(self, wav, sample_rate, stems=None, *, prior=None):
        return self.real.analyze(wav, sample_rate, stems, prior=prior)


@pytest.mark.parametrize("reads_stems", [False, True])
def test_remix_separates_once_and_every_stage_reuses_the_stems(models, tmp_path, monkeypatch, reads_stems):
    song = synth_song(120, duration=2.5, sample_rate=8_000, channels=1)
    path = _write(tmp_path / "song.wav", song.audio, 8_000)
    if reads_stems:
        monkeypatch.setattr(models, "analyzer", _StemReader(models.analyzer))
    order: list[str] = []
    separate = _Spy(monkeypatch, models.separator, "separate", order)
    analyze = _Spy(monkeypatch, models.analyzer, "analyze", order)
    recognize = _Spy(monkeypatch, models.chord_recognizer("chord", large_voca=True), "recognize", order)
    result = Pipeline(models).remix(_request(path, return_instrumental=True), tmp_path / "out")

    assert len(separate.calls) == 1
    stems = separate.results[0]
    assert stems.sample_rate == 8_000
    # Chords are read from that pass's vocals + bass + other (the published input); the song is
    # analysed with its stems by an analyser that reads stems, after the separation, and from its
    # mix by madmom, before the separation (so a bad target_bpm fails first); the instrumental
    # (no vocals) is analysed without separating anything.
    np.testing.assert_array_equal(recognize.calls[0][0][0], stems.vocals + stems.bass + stems.other)
    assert len(analyze.calls) == 2
    if reads_stems:
        assert order[:3] == ["separate", "analyze", "recognize"] and analyze.calls[0][1]["stems"] is stems
    else:
        assert order[:3] == ["analyze", "separate", "recognize"] and analyze.calls[0][1]["stems"] is None
    assert "stems" not in analyze.calls[1][1]
    # ... at the song's tempo and bar length, so it cannot be read at another tempo octave.
    prior = analyze.calls[1][1]["prior"]
    assert prior == TempoPrior.of(analyze.results[0]) and prior.beats_per_bar == 4
    # Model rate (32 kHz) beats the song's 8 kHz; the output has exactly the song's duration.
    for output in result.outputs:
        info = sf.info(output)
        assert (info.samplerate, info.frames) == (32_000, 2.5 * 32_000)
        assert output.parent == tmp_path / "out"
    assert set(result.timings) >= {"separation", "chords", "generation", "beat-sync", "mix"}


def test_remix_reports_every_stage_and_the_steps_of_the_long_ones(models, tmp_path, caplog):
    song = synth_song(120, duration=2.5, sample_rate=16_000, channels=1)
    path = _write(tmp_path / "song.wav", song.audio, 16_000)
    reports = []
    with caplog.at_level(logging.INFO, logger="remixer"):
        result = Pipeline(models).remix(_request(path), tmp_path / "out", progress=reports.append)
    stages = list(dict.fromkeys(report.stage for report in reports))
    # madmom reads the mix before the separation; the chords of each window after the plan.
    assert stages == ["decode", "analysis (song)", "separation", "chords", "chords per window", "generation",
                      "analysis (instrumental)", "beat-sync", "mix", "export"] == list(result.timings)
    for stage in stages:
        mine = [report for report in reports if report.stage == stage]
        # Each starts at 0 and ends once, at 1 with nothing left; in between the fraction rises.
        assert (mine[0].fraction, mine[0].ended) == (0.0, False)
        assert (mine[-1].fraction, mine[-1].eta_s, mine[-1].ended) == (1.0, 0.0, True)
        assert [r.ended for r in mine].count(True) == 1
        assert [r.fraction for r in mine] == sorted(r.fraction for r in mine)
        assert mine[-1].elapsed_s == pytest.approx(result.timings[stage])
    chunks = [(r.done, r.total, r.unit) for r in reports if r.stage == "separation" and 0 < r.fraction < 1]
    total = models.separator.chunks(int(2.5 * models.separator.sample_rate))
    assert chunks == [(done, total, "chunk") for done in range(1, total)]
    steps = [(r.done, r.total) for r in reports if r.stage == "generation" and not r.ended]
    # 2.5 s at 50 frames/s in two windows (the tiny model's is 2 s), counted as one run.
    assert {t for _, t in steps[1:]} == {125} and steps[-1] == (125, 125)
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)
    assert all(r.eta_s >= 0 for r in reports if r.eta_s is not None)
    # One log line per stage, the long ones with their steps; no line per generation window.
    done_lines = [m for m in caplog.messages if " done in " in m]
    assert [line.split(" done in ")[0] for line in done_lines] == stages
    assert f"separation done in {result.timings['separation']:.2f} s ({total} chunks)" in done_lines
    assert not [m for m in caplog.messages if m.startswith("window ")]


def test_high_rate_stereo_song_keeps_its_rate_length_and_stereo_with_a_mono_model(models, tmp_path):
    song = synth_song(120, duration=2.5, sample_rate=96_000)
    path = _write(tmp_path / "hi.wav", song.audio, 96_000)
    result = Pipeline(models).remix(_request(path), tmp_path / "out")
    info = sf.info(result.outputs[0])
    assert (info.samplerate, info.channels, info.frames) == (96_000, 2, song.audio.shape[1])


@pytest.mark.parametrize("version, channels", [("chord", 1), ("stereo-chord", 2)])
def test_a_mono_songs_remix_has_the_models_channels(models, tmp_path, version, channels):
    # (A stereo song's stays stereo with either: see the test above and the server's tests.)
    path = _write(tmp_path / "song.wav", synth_song(120, duration=2.5, sample_rate=8_000, channels=1).audio, 8_000)
    request = dataclasses.replace(_request(path, return_instrumental=True), model_version=version)
    remix, instrumental = Pipeline(models).remix(request, tmp_path / "out").outputs
    assert sf.info(remix).channels == sf.info(instrumental).channels == channels


def test_a_cancel_during_separation_stops_the_remix_within_a_chunk(models, tmp_path, monkeypatch):
    counting = CountingSources()
    monkeypatch.setattr(models, "separator", Separator(counting))
    path = _write(tmp_path / "song.wav", synth_song(120, duration=10.0, sample_rate=8_000).audio, 8_000)
    generate = _Spy(monkeypatch, models.generators.get("chord"), "generate")
    token = CancelAfter(steps=2)  # a report as each chunk ends: cancel at the 2nd
    with pytest.raises(Cancelled):
        Pipeline(models).remix(_request(path), tmp_path / "out", token)
    assert counting.chunks == 2  # of the 10 that 10 s take in 1 s chunks
    assert generate.calls == []


def test_silent_and_too_long_songs_are_refused_before_any_model_runs(models, tmp_path, monkeypatch):
    separate = _Spy(monkeypatch, models.separator, "separate")
    silent = _write(tmp_path / "silent.wav", np.zeros((2, 16_000), np.float32), 16_000)
    with pytest.raises(InputError, match="silent"):  # the client's file: the client's error
        Pipeline(models).remix(_request(silent), tmp_path / "out")
    long = _write(tmp_path / "long.wav", np.full((1, 16_000 * 12), 0.1, np.float32), 16_000)
    with pytest.raises(InputError, match="long.wav"):
        Pipeline(models, max_duration=10).remix(_request(long), tmp_path / "out")
    assert separate.calls == []


def test_instrumental_song_keeps_no_separation_residue(models, tmp_path, monkeypatch):
    # A separator whose vocal stem is exactly silent: the mix must not normalise it up (bug 27).
    oracle = Separator(ScaledSources(["drums", "bass", "other", "vocals"], [0.5, 0.3, 0.2, 0.0]))
    monkeypatch.setattr(models, "separator", oracle)
    song = synth_song(120, duration=2.5, sample_rate=32_000)
    path = _write(tmp_path / "inst.wav", song.audio, 32_000)
    result = Pipeline(models).remix(_request(path, return_analysis=True), tmp_path / "out")
    assert result.analysis["mix"] == {"vocals_used": False, "vocal_level_db": None}
    assert np.isfinite(sf.read(result.outputs[0])[0]).all()


def test_song_without_beats_is_remixed_unwarped_at_its_length(models, tmp_path):
    path = _write(tmp_path / "noise.wav", noise(2.0, sample_rate=32_000), 32_000)
    result = Pipeline(models).remix(_request(path, return_analysis=True), tmp_path / "out")
    assert result.analysis["song"]["downbeats"] == []
    assert result.analysis["beat_sync"]["warped"] is False
    assert sf.info(result.outputs[0]).frames == 64_000


# --- the description the model is given (published convention, character for character) ----------

@pytest.mark.parametrize("prompt, time_sig, bpm, expected", [
    ("k pop", "4/4", 140.0, "k pop, 4/4, bpm : 140.0"),
    ("k pop", "4/4", 140, "k pop, 4/4, bpm : 140.0"),
    ("jazz", "6/8", 92.5, "jazz, 6/8, bpm : 92.5"),
    ("jazz", "3/4", None, "jazz, 3/4"),
    ("", "4/4", 120.0, "4/4, bpm : 120.0"),
])
def test_chord_generation_description_is_the_published_one(prompt, time_sig, bpm, expected):
    assert _chord_description(prompt, time_sig, bpm) == expected


@pytest.mark.parametrize("bpm, expected", [(127.9, "bossa nova, bpm : 128"), (89.996, "bossa nova, bpm : 90"),
                                           (120.0, "bossa nova, bpm : 120"), (None, "bossa nova")])
def test_remix_description_rounds_the_bpm(bpm, expected):
    """The analysers report whole BPM already (All-In-One's); a requested tempo is rounded,
    not truncated (``int`` made 89.996 "89")."""
    assert _with_bpm("bossa nova", bpm) == expected


def test_remix_logs_and_reports_the_exact_description(models, tmp_path, monkeypatch, caplog):
    real = models.analyzer.analyze
    monkeypatch.setattr(models.analyzer, "analyze",
                        lambda *a, **k: dataclasses.replace(real(*a, **k), bpm=127.9))
    generate = _Spy(monkeypatch, models.generators.get("chord"), "generate")
    song = synth_song(120, duration=2.5, sample_rate=16_000)
    path = _write(tmp_path / "song.wav", song.audio, 16_000)
    with caplog.at_level(logging.INFO, logger="remixer.pipeline"):
        result = Pipeline(models).remix(_request(path, return_analysis=True), tmp_path / "out")
    assert generate.calls[0][0][0] == "bossa nova, bpm : 128"
    assert result.analysis["description"] == "bossa nova, bpm : 128"
    assert result.analysis["prompt"] == "bossa nova"
    assert "description given to the model: 'bossa nova, bpm : 128'" in caplog.messages
    assert '"description": "bossa nova, bpm : 128"' in (tmp_path / "out" / "analysis.json").read_text()


@pytest.mark.parametrize("kwargs, expected", [
    (dict(prompt="k pop", text_chords="C G A:min F", bpm=140), "k pop, 4/4, bpm : 140.0"),
    (dict(prompt="calm", time_sig="3/4"), "calm, 3/4"),
])
def test_generation_logs_and_reports_the_exact_description(models, tmp_path, monkeypatch, caplog,
                                                          kwargs, expected):
    generate = _Spy(monkeypatch, models.generators.get("chord"), "generate")
    request = GenerateRequest(model_version="chord", duration=0.5, sampling=Sampling(seed=1), **kwargs)
    with caplog.at_level(logging.INFO, logger="remixer.pipeline"):
        result = Pipeline(models).generate(request, tmp_path / "out")
    assert generate.calls[0][0][0] == expected
    assert result.analysis["description"] == expected
    assert f"description given to the model: {expected!r}" in caplog.messages


def test_a_clip_outside_the_input_audio_is_the_clients_error(tmp_path):
    clip = _write(tmp_path / "clip.wav", np.full((1, 16_000), 0.1, np.float32), 16_000)  # 1 s

    def request(**kwargs) -> GenerateRequest:
        return GenerateRequest(prompt="calm", model_version="chord", audio=clip, **kwargs)
    with pytest.raises(InputError, match=r"audio_start 2.0 s is past the end of the audio \(1.00 s\)"):
        load_clip(request(audio_start=2.0), max_duration=600)
    with pytest.raises(InputError, match="holds no sample of"):
        load_clip(request(audio_start=0.5, audio_end=0.50001), max_duration=600)
    with pytest.raises(InputError, match="clip.wav: audio is 1.0 s long"):
        load_clip(request(), max_duration=0.5)
    samples, rate = load_clip(request(audio_start=0.25, audio_end=0.75), max_duration=600)
    assert samples.shape == (1, 8000) and rate == 16_000


def test_auto_analysis_falls_back_to_madmom_when_all_in_ones_weights_cannot_be_fetched(tmp_path, caplog):
    root = tmp_path / "weights"
    manifest = json.loads(build_tiny_weights(root).read_text())  # no All-In-One folds in it
    for entry in manifest["files"]:  # online, from a host that never resolves (RFC 6761)
        entry["urls"] = [f"https://weights.invalid/{entry['path']}"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    store = WeightsStore(root, offline=False, manifest=Manifest.load(root / "manifest.json"))
    with caplog.at_level(logging.WARNING):
        models = Models.load(store, analysis_backend="auto", preload=())
    assert models.analyzer.name == "madmom"
    assert "beats and downbeats will be read by madmom, without sections: All-In-One's weights cannot be " \
           "had (8 weight file(s) needed here are missing" in caplog.text
    assert "python -m remixer.weights fetch allinone" in caplog.text


def test_the_smoke_switch_in_the_environment_reaches_the_predictor(monkeypatch):
    from predict import Predictor

    monkeypatch.setenv("REMIXER_SMOKE", "1")
    monkeypatch.setenv("REMIXER_WEIGHTS_DIR", "/nonexistent/weights")  # never read in smoke mode
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    predictor = Predictor()
    try:
        predictor.setup()
    finally:
        root.handlers[:], root.level = handlers, level
    models = predictor.pipeline.models
    assert models.smoke and models.analyzer.name == "madmom"
    assert "remixer-smoke-weights-" in str(models.store.root)
    assert [generator.model.name for generator in models.generators.loaded()] == ["musicgen-stereo-chord"]
