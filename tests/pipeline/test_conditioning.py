"""A remix conditions the model as the published Remixer did (issue 24), end to end.

A tiny chord LM with the published 30 s window (so the windows are the real ones: every 18 s),
the synthesized song's own stems in place of the tiny htdemucs, and a stand-in take in place of
sampling (only what the generator is given matters here): chords are read once per window, from
that window's slice of the stems, visible in the log and in ``analysis.json``; the description
carries the song's bpm in whole BPM, with madmom's beats and with All-In-One's post-processing.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf

from bench.quality import known_stems
from devtools.synth import SynthSong, demo_song
from devtools.tiny import musicgen as fx
from devtools.tiny.btc import published_state_dict
from devtools.tiny.cache import build_tiny_weights
from remixer.analysis.allinone import AllInOneLogits
from remixer.chords import WindowChords
from remixer.generation import GenerationResult
from remixer.pipeline import Models, Pipeline
from remixer.requests import RemixRequest, Sampling
from remixer.weights import Manifest, WeightsStore

RATE = 32_000
BPM = 90


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _models(root, backend: str) -> Models:
    manifest = build_tiny_weights(root, with_allinone=backend == "allinone")
    # The "chord" version with the published 30 s window: windows start every 18 s.
    fx.chord_checkpoint(root / Manifest.load(manifest).get("musicgen-chord").path, window=30.0, layers=1,
                        dim=16, btc_state=published_state_dict(170))
    store = WeightsStore(root, offline=True, manifest=Manifest.load(manifest))
    return Models.load(store, analysis_backend=backend, preload=("chord",))


def _remix(models: Models, song: SynthSong, tmp_path, monkeypatch) -> tuple[dict, list]:
    """Remix ``song`` (its own stems, its own accompaniment as the take); return analysis.json and
    what the generator was given."""
    monkeypatch.setattr(models.separator, "separate", lambda wav, rate, **_: known_stems(song))
    given = []
    take = (song.audio - song.stems["vocals"]).mean(axis=0, keepdims=True)

    def generate(description, params, *, chords, plan, **_):
        given.append((description, chords, plan))
        return GenerationResult(take[:, :int(params.duration * RATE)], RATE, 0, np.zeros((4, 0), np.int64))
    monkeypatch.setattr(models.generators.get("chord"), "generate", generate)
    path = tmp_path / "song.wav"
    sf.write(path, song.audio.T, RATE, subtype="FLOAT")
    result = Pipeline(models).remix(RemixRequest(song=path, prompt="bossa nova", model_version="chord",
                                                 sampling=Sampling(seed=1), return_analysis=True),
                                    tmp_path / "out")
    analysis = json.loads(next(p for p in result.outputs if p.name == "analysis.json").read_text())
    return analysis, given


def test_a_100_s_remix_reads_chords_once_per_window_and_says_bpm_90(tmp_path, monkeypatch, caplog):
    models = _models(tmp_path / "weights", "madmom")
    song = demo_song(100.0, BPM, sample_rate=RATE, seed=3)
    recognizer = models.chord_recognizer("chord", large_voca=True)
    reads = []
    read = recognizer.read
    monkeypatch.setattr(recognizer, "read", lambda wav, rate: reads.append(wav.shape) or read(wav, rate))
    with caplog.at_level(logging.INFO, logger="remixer"):
        analysis, given = _remix(models, song, tmp_path, monkeypatch)
    starts = [0.0, 18.0, 36.0, 54.0, 72.0]  # 18 s apart, the last one reaching the end at 100 s
    windows = analysis["windows"]
    assert [w["start"] for w in windows] == starts and windows[-1]["new_end"] == 100.0
    # Once per window, 30 s each (the last loops back to the song's start), plus once for the
    # song's own chord list.
    assert reads == [(2, 100 * RATE)] + [(2, 30 * RATE)] * len(starts)
    assert [w["read_from"] for w in windows] == [[s, s + 30.0] for s in starts]
    for window in windows:
        chords = window["chords"]
        assert chords[0]["start"] == window["start"] and chords[-1]["end"] == pytest.approx(window["start"] + 30)
        assert all(a["end"] == b["start"] for a, b in zip(chords, chords[1:]))
    (description, chords, plan), = given
    assert isinstance(chords, WindowChords) and [r.start for r in chords.readings] == starts
    assert [w.start for w in plan] == starts
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("chords of window")]
    assert len(logged) == len(starts) and logged[0].startswith("chords of window 1/5 (from 0.00 s): read 0.00-30.00 s")
    assert "looped past its end" in logged[-1] and "looped" not in logged[-2]
    # The song's tempo as the published Remixer printed it: All-In-One's whole BPM.
    assert analysis["song"]["bpm"] == 90.0
    assert description == analysis["description"] == "bossa nova, bpm : 90"


def _planted_logits(song: SynthSong, frames: int) -> AllInOneLogits:
    """All-In-One's network output for a song whose beats it hears perfectly (100 frames/s)."""
    beat, downbeat = np.full(frames, -6.0), np.full(frames, -6.0)
    beat[np.round(song.beats * 100).astype(int)] = 6.0
    downbeat[np.round(song.downbeats * 100).astype(int)] = 6.0
    function = np.full((10, frames), -4.0)
    function[0] = 4.0
    return AllInOneLogits(beat=beat, downbeat=downbeat, section=np.full(frames, -6.0), function=function)


def test_all_in_one_reports_the_same_whole_bpm(tmp_path, monkeypatch):
    models = _models(tmp_path / "weights", "allinone")
    assert models.analyzer.name == "allinone"
    song = demo_song(30.0, BPM, sample_rate=RATE, seed=4)
    monkeypatch.setattr(models.analyzer, "predict",
                        lambda features: _planted_logits(song, features.shape[1]))
    analysis, given = _remix(models, song, tmp_path, monkeypatch)
    assert analysis["song"]["backend"] == "allinone" and analysis["song"]["bpm"] == 90.0
    (description, _, _), = given
    assert description == analysis["description"] == "bossa nova, bpm : 90"
