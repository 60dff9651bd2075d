"""analysis.png: the lanes carry the data they are given, and the file is a PNG of the set size."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from btc.labels import ChordSegment
from remixer.beats import Beats, Section
from remixer.beatsync import SyncResult
from remixer.plot import HEIGHT_PX, WIDTH_PX, AnalysisPlot, analysis_figure, write_analysis_png

RATE = 32_000


def _beats() -> Beats:
    beats = 0.5 + 0.5 * np.arange(16)
    return Beats(bpm=120.0, beats=beats, downbeats=beats[::4], beat_positions=np.tile([1, 2, 3, 4], 4),
                 sections=(Section(0.0, 4.0, "verse"), Section(4.0, 8.5, "chorus")), backend="test")


def _plot(warped: bool = True) -> AnalysisPlot:
    generated = np.array([0.45, 2.6, 4.4, 6.7])
    anchors = (np.array([[0, 2.6 * RATE, 4.4 * RATE, 8.5 * RATE], [0, 2.5 * RATE, 4.5 * RATE, 8.5 * RATE]])
               if warped else np.zeros((2, 0)))
    synced = SyncResult(audio=np.zeros((2, int(8.5 * RATE)), np.float32), anchors=anchors.astype(np.int64),
                        n_matched=2 if warped else 0, warped=warped,
                        reason="warped by audio" if warped else "not warped: no downbeats detected in the song",
                        method="audio" if warped else "none", confidence=0.62 if warped else None)
    chords = [ChordSegment(0.0, 0.5, "N"), ChordSegment(0.5, 2.5, "D"), ChordSegment(2.5, 4.5, "A"),
              ChordSegment(4.5, 8.5, "B:min")]
    song = np.sin(np.linspace(0, 2000, 8 * 22_050))[None].astype(np.float32)
    return AnalysisPlot.of_remix(song, 22_050, _beats(), chords, generated, synced, RATE, title="lofi")


def _by_gid(figure, gid: str) -> list:
    return [artist for artist in figure.findobj() if artist.get_gid() == gid]


def test_lanes_hold_one_mark_per_item():
    plot = _plot()
    figure = analysis_figure(plot)
    (downbeats,) = _by_gid(figure, "downbeats")
    (beats,) = _by_gid(figure, "beats")
    assert [seg[0, 0] for seg in downbeats.get_segments()] == [0.5, 2.5, 4.5, 6.5]
    assert len(beats.get_segments()) == 16
    assert len(_by_gid(figure, "sections")) == 2
    (chords,) = _by_gid(figure, "chords")
    assert len(chords.get_paths()) == 3  # N is left blank
    labels = {text.get_text() for text in figure.findobj(lambda a: hasattr(a, "get_text"))}
    assert {"D", "A", "B:min", "verse", "chorus", "lofi", "120.0 BPM"} <= labels
    (before,) = _by_gid(figure, "generated downbeats")
    (after,) = _by_gid(figure, "synced downbeats")
    assert [seg[0, 0] for seg in before.get_segments()] == [0.45, 2.6, 4.4, 6.7]
    # Moved through the warp map: 2.6 -> 2.5 and 4.4 -> 4.5 exactly, the others interpolated.
    moved = [seg[0, 0] for seg in after.get_segments()]
    assert moved[1:3] == pytest.approx([2.5, 4.5]) and moved[0] == pytest.approx(0.45 * 2.5 / 2.6)
    (warp,) = _by_gid(figure, "warp map")
    assert np.allclose(warp.get_xdata(), [0, 2.5, 4.5, 8.5]) and np.allclose(warp.get_ydata(), [0, 2.6, 4.4, 8.5])
    assert figure.axes[-1].get_xlim() == (0.0, 8.5)
    (note,) = _by_gid(figure, "beat-sync")
    assert note.get_text() == "aligned by audio, confidence 0.62"


def test_unwarped_instrumental_keeps_its_downbeats_and_draws_no_warp_map():
    figure = analysis_figure(_plot(warped=False))
    (after,) = _by_gid(figure, "synced downbeats")
    assert [seg[0, 0] for seg in after.get_segments()] == [0.45, 2.6, 4.4, 6.7]
    assert _by_gid(figure, "warp map") == []
    (note,) = _by_gid(figure, "beat-sync")
    assert note.get_text() == "not warped: no downbeats detected in the song"


def test_empty_analysis_still_draws():
    empty = Beats(bpm=None, beats=np.zeros(0), downbeats=np.zeros(0), beat_positions=np.zeros(0, int))
    plot = AnalysisPlot(waveform=np.zeros((1, 100), np.float32), duration=1.0, beats=empty, chords=[],
                        generated_downbeats=np.zeros(0), synced_downbeats=np.zeros(0), warp=np.zeros((2, 0)))
    figure = analysis_figure(plot)
    assert len(_by_gid(figure, "downbeats")[0].get_segments()) == 0


def test_png_file_decodes_at_the_set_size(tmp_path):
    path = write_analysis_png(tmp_path / "analysis.png", _plot())
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
        pixels = np.asarray(image.convert("L"))
    # Not a blank canvas: the waveform, marks and text darken a fair share of it.
    assert (pixels < 200).mean() > 0.05
