"""analysis.html: one self-contained file whose players decode and line up with the timeline, and
which a real browser (headless Chromium) loads without errors, draws, zooms, explains on hover and
seeks on click."""
from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from btc.labels import ChordSegment
from devtools.browser import Chromium, find_chromium
from fixtures.music import synth_drifting_song, synth_song
from remixer.audio import loudness_lufs
from remixer.beats import Beats, Section
from remixer.beatsync import SyncResult
from remixer.page import MP3_DELAY, Track, page_data, preview_mp3, write_analysis_page
from remixer.plot import AnalysisPlot
from remixer.sections import Part

SECONDS, RATIO, TAKE_RATE = 30.0, 1.25, 32_000
TITLE = "bossa nova </script><b id=injected>, bpm : 96"


def _analysis() -> tuple[AnalysisPlot, list[Track]]:
    """A 24 s song at 120 BPM remixed at 96 BPM (30 s), with sections, section prompts and a
    take drifting 112 -> 128 BPM that beat-sync moved onto the song's downbeats."""
    song = synth_song(120, duration=SECONDS / RATIO, sample_rate=44_100)
    take = synth_drifting_song(duration=SECONDS, sample_rate=TAKE_RATE)
    count = min(song.downbeats.size, take.downbeats.size)
    downbeats = song.downbeats * RATIO
    beats = Beats(bpm=96.0, beats=song.beats * RATIO, downbeats=downbeats,
                  beat_positions=np.tile([1, 2, 3, 4], song.beats.size)[:song.beats.size],
                  sections=(Section(0.0, 12.0, "verse"), Section(12.0, SECONDS, "chorus")))
    chords = [ChordSegment(c.start * RATIO, c.end * RATIO, c.label) for c in song.chords]
    anchors = np.round(np.stack([take.downbeats[:count], downbeats[:count]]) * TAKE_RATE).astype(np.int64)
    synced = SyncResult(audio=take.audio, anchors=anchors, n_matched=count, warped=True, reason="")
    prompts = (Part(0.0, 12.0, "0:00-0:12", "soft pads, bpm : 96"), Part(12.0, SECONDS, None, TITLE))
    plot = AnalysisPlot.of_remix(song.audio, song.sample_rate, beats, chords, take.downbeats[:count], synced,
                                 TAKE_RATE, title=TITLE, song_bpm=120.0)
    plot = AnalysisPlot(**{**plot.__dict__, "prompts": prompts})
    tracks = [Track("song", song.audio, song.sample_rate, timescale=RATIO),
              Track("remix", take.audio, TAKE_RATE), Track("instrumental, after beat-sync", take.audio, TAKE_RATE),
              Track("instrumental, as generated", take.audio, TAKE_RATE)]
    return plot, tracks


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, AnalysisPlot, list[Track]]:
    plot, tracks = _analysis()
    return write_analysis_page(tmp_path_factory.mktemp("page") / "analysis.html", plot, tracks), plot, tracks


# --- the file ----------------------------------------------------------------------------------

def test_the_page_is_one_file_that_fetches_nothing(written):
    path, plot, tracks = written
    text = path.read_text()
    # Everything inline: no script, style, image or audio comes from anywhere but the file.
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", text)
    assert "http://" not in text and "https://" not in text
    assert text.count('src="data:audio/mpeg;base64,') == len(tracks) == 4
    # The client's prompt cannot end the data's script element (nor inject markup into the title).
    assert "</script><b id=injected>" not in text and "&lt;/script&gt;&lt;b id=injected&gt;" in text
    embedded = re.search(r'<script id="analysis-data" type="application/json">(.*?)</script>', text, re.S)[1]
    assert json.loads(embedded) == json.loads(json.dumps(page_data(plot, tracks)))


def test_page_data_carries_the_analysis_on_the_remix_timeline(written):
    _, plot, tracks = written
    data = page_data(plot, tracks)
    assert data["duration"] == SECONDS and data["bpm"] == 96.0 and data["songBpm"] == 120.0
    assert data["downbeats"] == pytest.approx(plot.beats.downbeats, abs=1e-3)
    assert [label for *_, label in data["chords"]] == [c.label for c in plot.chords if c.label != "N"]
    assert data["tracks"][0] == {"label": "song", "timescale": RATIO}
    assert data["tempo"] == "song 120.0 BPM, 4/4 -> remix 96.0 BPM (length x1.250)"
    # A 10 ms envelope of the song, scaled to its peak.
    envelope = data["envelope"]
    assert len(envelope["min"]) == len(envelope["max"]) == 3000 and envelope["step"] == pytest.approx(0.01)
    assert max(envelope["max"]) == 1000 or min(envelope["min"]) == -1000


def _decode(mp3: bytes) -> tuple[np.ndarray, int]:
    with av.open(io.BytesIO(mp3)) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
        rate = container.streams.audio[0].rate
    return np.concatenate(frames, axis=1), rate


@pytest.mark.parametrize("rate", [32_000, 44_100, 96_000])
def test_a_preview_plays_each_sample_at_its_time(rate):
    # A click at 1.000 s must decode at 1.000 s: LAME's delay is cut before encoding.
    wav = np.zeros((2, 3 * rate), np.float32)
    wav[:, rate:rate + 400] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(400) / rate) * np.hanning(400)
    wav += 0.05 * np.sin(2 * np.pi * 220 * np.arange(3 * rate) / rate)
    decoded, out_rate = _decode(preview_mp3(wav, rate))
    assert out_rate == min(rate, 48_000) and decoded.shape[0] == 2
    onset = np.argmax(np.abs(decoded[0, :2 * out_rate]) > 0.3 * np.abs(decoded[0]).max())
    assert abs(onset - out_rate) <= 0.002 * out_rate  # within 2 ms of 1.000 s
    assert MP3_DELAY == 1105


def test_previews_play_at_one_loudness_whatever_the_tracks_level():
    song = synth_song(120, duration=6.0, sample_rate=44_100).audio
    quiet, loud = (loudness_lufs(_decode(preview_mp3(gain * song, 44_100))[0].astype(np.float32), 44_100)
                   for gain in (0.05, 0.9))
    assert quiet == pytest.approx(loud, abs=0.5) and loud == pytest.approx(-14.0, abs=1.5)


# --- in a real browser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/setup.sh installs it): "
                    "the analysis.html browser tests need it")
    with Chromium.start() as running:
        yield running


@pytest.fixture(scope="module")
def page(browser, written):
    return browser.open(written[0].as_uri(), width=1400, height=900)


def _timeline_point(page, t: float, lane: str) -> tuple[float, float]:
    """Viewport coordinates of time ``t`` in ``lane`` of the timeline."""
    left, top = page.evaluate("(() => { const r = document.getElementById('timeline').getBoundingClientRect();"
                              " return [r.left, r.top]; })()")
    low, high = page.evaluate(f"analysisPage.lanes[{json.dumps(lane)}]")
    return left + page.evaluate(f"analysisPage.xAt({t})"), top + (low + high) / 2


def _centre(page, element_id: str) -> tuple[float, float]:
    return tuple(page.evaluate(f"(() => {{ const r = document.getElementById({json.dumps(element_id)})"
                               ".getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()"))


def test_the_page_loads_offline_without_errors_and_draws_every_mark(page, written):
    _, plot, tracks = written
    assert page.evaluate("document.body.dataset.ready") == "true"
    assert page.errors() == []
    assert {url.split(":")[0] for url in page.requested_urls()} <= {"file", "data"}
    assert page.evaluate("document.getElementById('title').textContent") == TITLE
    assert page.evaluate("document.getElementById('injected')") is None
    drawn = page.evaluate("analysisPage.drawn")
    assert drawn["downbeats"] == plot.beats.downbeats.size and drawn["beats"] == plot.beats.beats.size
    assert drawn["generated"] == plot.generated_downbeats.size and drawn["anchors"] == plot.warp.shape[1]
    assert drawn["chords"] == len([c for c in plot.chords if c.label != "N"])
    assert (drawn["sections"], drawn["prompts"]) == (2, 2)
    # Every player decodes its mp3 to the track's length (mp3 frames add at most ~50 ms).
    durations = page.evaluate("Promise.all(Array.from(document.querySelectorAll('audio'), (audio) =>"
                              " audio.readyState >= 1 ? audio.duration : new Promise((done, fail) => {"
                              " audio.onloadedmetadata = () => done(audio.duration);"
                              " audio.onerror = () => fail(new Error('cannot decode')); })))")
    for seconds, track in zip(durations, tracks):
        assert seconds == pytest.approx(track.audio.shape[1] / track.sample_rate, abs=0.06)
    assert page.errors() == []


def test_hover_names_the_chord_bar_beat_section_prompt_and_the_downbeats_move(page, written):
    _, plot, _ = written
    page.evaluate(f"analysisPage.setView(0, {SECONDS})")
    chord = plot.chords[3]
    middle = (chord.start + chord.end) / 2 + 0.2  # between two beats
    page.mouse("mouseMoved", *_timeline_point(page, middle, "chords"))
    text = page.evaluate("document.getElementById('tooltip').innerText")
    bar = int(np.searchsorted(plot.beats.downbeats, middle, side="right"))
    beat = int(plot.beats.beat_positions[np.searchsorted(plot.beats.beats, middle, side="right") - 1])
    assert f"bar {bar}, beat {beat}" in text and f"chord {chord.label} (" in text
    assert ("section verse" if middle < 12 else "section chorus") in text
    assert "instrumental downbeat" in text and " ms)" in text
    page.mouse("mouseMoved", *_timeline_point(page, 20.0, "prompts"))
    assert f"prompt {TITLE}" in page.evaluate("document.getElementById('tooltip').innerText")


def test_the_wheel_zooms_around_the_pointer_and_shows_more_detail(page, written):
    _, plot, _ = written
    page.evaluate(f"analysisPage.setView(0, {SECONDS})")
    x, y = _timeline_point(page, 17.0, "song")
    page.mouse("mouseWheel", x, y, deltaX=0, deltaY=-600)
    start, end = page.evaluate("[analysisPage.view.start, analysisPage.view.end]")
    assert end - start == pytest.approx(SECONDS * np.exp(-0.9), rel=1e-3)
    left = page.evaluate("document.getElementById('timeline').getBoundingClientRect().left")
    assert page.evaluate(f"analysisPage.timeAt({x - left})") == pytest.approx(17.0, abs=0.02)  # kept in place
    inside = plot.beats.downbeats[(plot.beats.downbeats >= start) & (plot.beats.downbeats <= end)]
    assert page.evaluate("analysisPage.drawn.downbeats") == inside.size
    drawn = page.evaluate("analysisPage.drawn")
    assert drawn["chordLabels"] == drawn["chords"] > 0  # every chord in view is named
    # The buttons: twice as wide, half as wide, the whole song.
    for button, factor in (("zoom-out", 2.0), ("zoom-in", 0.5)):
        width = end - start
        page.click(*_centre(page, button))
        start, end = page.evaluate("[analysisPage.view.start, analysisPage.view.end]")
        assert end - start == pytest.approx(width * factor, rel=1e-6)
    page.click(*_centre(page, "zoom-fit"))
    assert page.evaluate("[analysisPage.view.start, analysisPage.view.end]") == [0, SECONDS]
    assert page.errors() == []


def test_a_click_seeks_the_last_chosen_player_on_its_own_clock(page):
    page.evaluate(f"analysisPage.setView(0, {SECONDS})")
    assert page.evaluate("analysisPage.active()") == 1  # the remix by default
    page.click(*_timeline_point(page, 15.0, "song"))
    assert page.evaluate("document.getElementById('track-1').currentTime") == pytest.approx(15.0, abs=0.05)
    page.evaluate("analysisPage.select(0)")  # the song, before its tempo change: 15 s is 12 s of it
    page.click(*_timeline_point(page, 15.0, "song"))
    assert page.evaluate("document.getElementById('track-0').currentTime") == pytest.approx(15.0 / RATIO, abs=0.05)
    assert page.errors() == []


def test_the_screenshot_shows_the_lanes_drawn(page, tmp_path):
    page.evaluate(f"analysisPage.setView(0, {SECONDS})")
    page.mouse("mouseMoved", 5, 5)  # no tooltip over the picture
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    (tmp_path / "analysis-page.png").write_bytes(page.screenshot())  # kept, to look at
    left, top, width, height = page.evaluate(
        "(() => { const r = document.getElementById('timeline').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height]; })()")
    canvas = np.asarray(shot.crop((int(left), int(top), int(left + width), int(top + height)))).astype(int)

    def share(rgb: tuple[int, int, int]) -> float:
        return float((np.abs(canvas - rgb).sum(axis=2) < 40).mean())
    assert share((214, 39, 40)) > 0.002   # downbeats
    assert share((255, 127, 14)) > 0.0005  # generated downbeats
    assert share((44, 160, 44)) > 0.0005   # synced downbeats
    assert share((143, 143, 143)) > 0.05   # the song's waveform
    assert share((148, 103, 189)) > 0.0005  # the warp shift
    assert base64.b64encode(page.screenshot())[:8] == b"iVBORw0K"  # a PNG
