"""Inputs of the real Cog server reach their stages: predict.py's mapping, observed end to end.

The server runs :class:`fixtures.recording_predictor.RecordingPredictor`: the production
Predictor whose generator is wrapped to record the request ``predict`` built and what the
generator received. Each test sends inputs changed from their defaults and checks both the
records and the outputs (lengths, rates, stems, analysis.json, same seed -> same remix).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from devtools.synth import demo_song
from devtools.tiny.cache import build_tiny_weights
from fixtures.cog_server import ROOT, CogServer, data_uri, decode_json, decode_output

SONG_RATE = 44_100
SONG_SECONDS = 2.5
PEAK = 10 ** (-1 / 20)  # the "peak" normalization's level
QUANTUM = 1 / 32768
COEFFICIENT = float(np.float32(1.7))  # the chroma is float32


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights")
    manifest = build_tiny_weights(weights, with_mbd=True)
    records = tmp_path_factory.mktemp("records")
    predictor = f"{ROOT / 'tests' / 'fixtures' / 'recording_predictor.py'}:RecordingPredictor"
    with CogServer(tmp_path_factory.mktemp("server"), weights, manifest, predictor=predictor,
                   REMIXER_TEST_RECORDS=str(records), REMIXER_DEFAULT_VERSION="chord",
                   COG_MAX_CONCURRENCY="1") as running:
        yield running, records


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    synth = demo_song(SONG_SECONDS, 120, 4, sample_rate=SONG_RATE, first_downbeat=0.25)
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(path, synth.audio.T, SONG_RATE, subtype="PCM_16")
    return path, sf.read(path, always_2d=True)[0].T


def _predict(server, payload: dict) -> tuple[list[str], dict]:
    """The reply's outputs and the record of the request (requests run one at a time)."""
    running, records = server
    before = set(records.iterdir())
    reply = running.predict(payload)
    assert reply["status"] == "succeeded", reply.get("error") or reply.get("logs")
    new = set(records.iterdir()) - before
    assert len(new) == 1, f"{len(new)} records for one request"
    return reply["output"], json.loads(new.pop().read_text())


def _analysis(outputs: list[str]) -> dict:
    """analysis.json among the outputs (the only JSON one)."""
    found = [uri for uri in outputs if uri.startswith("data:application/json")]
    assert len(found) == 1, [uri[:40] for uri in outputs]
    return decode_json(found[0])


REMIX = {"prompt": "http bossa nova", "model_version": "chord", "multi_band_diffusion": True,
         "normalization_strategy": "peak", "beat_sync_threshold": 0.3, "large_chord_voca": False,
         "chroma_coefficient": 1.7, "top_k": 40, "top_p": 0.5, "temperature": 0.8,
         "classifier_free_guidance": 2, "output_format": "flac", "return_instrumental": True,
         "return_stems": True, "return_analysis": True, "seed": 11, "song_bpm": 125}


@pytest.fixture(scope="module")
def remixes(server, song):
    """The same remix (every input off its default) asked twice."""
    payload = dict(REMIX, music_input=data_uri(song[0]))
    return [_predict(server, payload) for _ in range(2)]


def test_every_remix_input_reaches_the_request(remixes):
    _, record = remixes[0]
    request = record["request"]
    assert request["prompt"] == "http bossa nova"
    assert request["sampling"] == {"top_k": 40, "top_p": 0.5, "temperature": 0.8,
                                   "classifier_free_guidance": 2, "seed": 11}
    assert request["output"] == {"format": "flac", "normalization": "peak"}
    for name in ("model_version", "multi_band_diffusion", "beat_sync_threshold", "large_chord_voca",
                 "chroma_coefficient", "return_instrumental", "return_stems", "return_analysis", "song_bpm"):
        assert request[name] == REMIX[name], name


def test_remix_generator_receives_the_prompt_chords_coefficient_seed_and_decoder(remixes):
    outputs, record = remixes[0]
    call, = record["calls"]
    assert call["version"] == "chord"
    assert call["description"] == "http bossa nova, bpm : 125"  # the song's tempo as song_bpm states it
    assert call["params"] == {"duration": SONG_SECONDS, "top_k": 40, "top_p": 0.5, "temperature": 0.8,
                              "cfg_coef": 2, "seed": 11}
    assert call["mbd"] is True and call["chroma_coefficient"] == 1.7
    analysis = _analysis(outputs)
    # The chords read for each window are the ones analysis.json lists with it.
    readings = call["chords"]["readings"]
    assert call["chords"]["kind"] == "audio" and len(readings) == len(call["windows"]) >= 1
    assert [{"start": r["start"], "read_from": r["read_from"], "chords": r["chords"]} for r in readings] == [
        {"start": w["start"], "read_from": w["read_from"], "chords": w["chords"]} for w in analysis["windows"]]
    labels = [c["label"] for r in readings for c in r["chords"]] + [c["label"] for c in analysis["chords"]]
    assert all(":" not in label or label.endswith(":min") for label in labels)  # 25 classes
    for window in call["windows"]:
        assert set(window["text"].values()) == {call["description"]} and window["seed"] == 11
        chroma = np.array(window["chroma"])
        assert chroma.shape[1] == 12 and set(np.unique(chroma)) <= {0.0, COEFFICIENT}
    assert any(np.array(window["chroma"]).max() == COEFFICIENT for window in call["windows"])


def test_remix_returns_all_outputs_consistent_with_each_other(remixes, song):
    outputs, _ = remixes[0]
    audio = [uri for uri in outputs if uri.startswith("data:audio/")]
    assert len(audio) == 6  # remix, instrumental, drums, bass, other, vocals
    assert all(uri.startswith("data:audio/flac") for uri in audio)
    (remix, rate), (instrumental, inst_rate) = decode_output(audio[0]), decode_output(audio[1])
    length = int(SONG_SECONDS * SONG_RATE)
    # The song is stereo, the model mono: the remix keeps the song's two channels.
    assert rate == inst_rate == SONG_RATE and remix.shape == instrumental.shape == (2, length)
    stems = [decode_output(uri) for uri in audio[2:]]
    assert all(stem_rate == SONG_RATE and stem.shape == (2, length) for stem, stem_rate in stems)
    # The stems are the song's separation: they sum back to the (linear, tiny) model's mix.
    assert np.abs(sum(stem for stem, _ in stems)).max() > 1e-3
    analysis = _analysis(outputs)
    assert analysis["seed"] == 11 and analysis["beat_sync"]["threshold_s"] == 0.3
    assert analysis["prompt"].startswith("http bossa nova")
    # The remix is the returned instrumental plus the returned vocal stem (the tiny separator's
    # vocals are the sung mix scaled, -39 dBFS: used), each at its gain, up to the files' rounding.
    assert analysis["mix"]["vocals_used"] is True, analysis["mix"]
    vocals = stems[3][0]
    basis = np.stack([instrumental.ravel(), vocals.ravel()], axis=1)
    gains, *_ = np.linalg.lstsq(basis, remix.ravel(), rcond=None)
    assert gains[0] > 0 and gains[1] > 0
    assert np.abs(basis @ gains - remix.ravel()).max() <= 4 * QUANTUM
    assert np.abs(remix).max() == pytest.approx(PEAK, abs=2 * QUANTUM)


def test_same_seed_gives_the_same_remix_through_the_server(remixes):
    (first, first_record), (second, second_record) = remixes
    assert first_record["calls"][0]["tokens"] == second_record["calls"][0]["tokens"]
    audio = [[uri for uri in outputs if uri.startswith("data:audio/")] for outputs in (first, second)]
    assert len(audio[0]) == len(audio[1]) == 6
    for a, b in zip(*audio):
        assert np.array_equal(decode_output(a)[0], decode_output(b)[0])


def test_text_chord_generation_lasts_its_duration_with_its_chords(server):
    outputs, record = _predict(server, {"prompt": "http jazz", "model_version": "chord",
                                        "text_chords": "C G", "bpm": 90, "time_sig": "3/4",
                                        "duration": 1.3, "chroma_coefficient": 2.0, "seed": 2})
    request = record["request"]
    assert (request["text_chords"], request["bpm"], request["time_sig"]) == ("C G", 90, "3/4")
    assert request["duration"] == 1.3 and request["chroma_coefficient"] == 2.0
    call, = record["calls"]
    assert call["chords"] == {"kind": "text", "text": "C G", "bpm": 90, "time_sig": "3/4"}
    assert call["description"].startswith("http jazz") and call["params"]["seed"] == 2
    assert np.array(call["windows"][0]["chroma"]).max() == 2.0
    audio, rate = decode_output(outputs[0])
    assert rate == 32_000 and audio.shape == (1, 65 * 640)  # 1.3 s = 65 codec frames of 640 samples


def test_chords_from_a_clip_of_input_audio(server, song):
    outputs, record = _predict(server, {"prompt": "http lofi", "model_version": "chord",
                                        "input_audio": data_uri(song[0]), "audio_start": 0.5,
                                        "audio_end": 1.5, "large_chord_voca": False, "duration": 1.0})
    request = record["request"]
    assert (request["audio_start"], request["audio_end"], request["continuation"]) == (0.5, 1.5, False)
    assert request["large_chord_voca"] is False
    call, = record["calls"]
    (reading,) = call["chords"]["readings"]  # one window: the clip read once, whole
    assert call["chords"]["kind"] == "audio" and call["prompt"] is None
    assert reading["read_from"] == [0.0, 1.0]
    assert reading["chords"][-1]["end"] == pytest.approx(1.0, abs=0.05)  # chords of the 1 s clip
    assert decode_output(outputs[0])[0].shape == (1, 32_000)


def test_continuation_of_a_clip_of_input_audio(server, song):
    outputs, record = _predict(server, {"prompt": "http piano", "model_version": "chord",
                                        "input_audio": data_uri(song[0]), "audio_start": 1.0,
                                        "audio_end": 1.5, "continuation": True, "duration": 1.5,
                                        "multi_band_diffusion": True})
    request = record["request"]
    assert request["continuation"] is True and request["multi_band_diffusion"] is True
    call, = record["calls"]
    assert call["prompt"] == [2, int(0.5 * SONG_RATE)] and call["chords"] is None and call["mbd"] is True
    assert call["windows"][0]["prompt_frames"] == 25
    assert decode_output(outputs[0])[0].shape == (1, int(1.5 * 32_000))
