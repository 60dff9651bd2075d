"""analysis.png: rows of whole bars carry the data they are given, labels never overprint, the
header states both tempos, and the file is a PNG as tall as its rows."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from btc.labels import ChordSegment
from remixer.beats import Beats, Section
from remixer.beatsync import SyncResult
from remixer.plot import (HEADER_PX, FOOTER_PX, ROW_PX, WARP_PX, WIDTH_PX, AnalysisPlot, analysis_figure,
                          prompt_parts, row_layout, write_analysis_png)
from remixer.sections import Part, Window

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


def _song_plot(minutes: float, bpm: float, chord_every_beats: int = 4, target_bpm: float | None = None,
               prompts: tuple[Part, ...] = ()) -> AnalysisPlot:
    """A whole song: beats at ``bpm`` in 4/4, a chord every ``chord_every_beats`` beats, sections
    every 30 s, an instrumental 40 ms late that beat-sync put back."""
    seconds = minutes * 60
    beats = np.arange(0.3, seconds, 60 / bpm)
    downbeats = beats[::4]
    labels = ["C:maj7", "G", "A:min7", "F:maj7", "D:min7", "E:7"]
    chords = [ChordSegment(t, t + chord_every_beats * 60 / bpm, labels[i % len(labels)])
              for i, t in enumerate(beats[::chord_every_beats])]
    sections = tuple(Section(t, min(t + 30, seconds), ("verse", "chorus")[i % 2])
                     for i, t in enumerate(np.arange(0, seconds, 30.0)))
    analysis = Beats(bpm=target_bpm or bpm, beats=beats, downbeats=downbeats,
                     beat_positions=np.tile([1, 2, 3, 4], beats.size)[:beats.size], sections=sections)
    generated = downbeats + 0.04
    anchors = np.round(np.stack([generated, downbeats]) * RATE).astype(np.int64)
    synced = SyncResult(audio=np.zeros((1, int(seconds * RATE)), np.float32), anchors=anchors,
                        n_matched=anchors.shape[1], warped=True, reason="")
    song = (0.1 * np.random.default_rng(0).standard_normal((1, int(seconds * 8_000)))).astype(np.float32)
    plot = AnalysisPlot.of_remix(song, 8_000, analysis, chords, generated, synced, RATE, title="bossa nova",
                                 song_bpm=bpm if target_bpm else None)
    return AnalysisPlot(**{**plot.__dict__, "prompts": prompts})


def _by_gid(figure, gid: str) -> list:
    return [artist for artist in figure.findobj() if artist.get_gid() == gid]


def _times(figure, gid: str) -> list[float]:
    """x of every mark of ``gid`` over all rows."""
    return sorted(seg[0, 0] for artist in _by_gid(figure, gid) for seg in artist.get_segments())


def _texts(figure) -> set[str]:
    return {text.get_text() for text in figure.findobj(lambda a: hasattr(a, "get_text"))}


def test_short_song_is_one_row_with_one_mark_per_item():
    figure = analysis_figure(_plot())
    assert _times(figure, "downbeats") == [0.5, 2.5, 4.5, 6.5]
    assert len(_times(figure, "beats")) == 16
    (sections,) = _by_gid(figure, "sections")
    assert len(sections.get_paths()) == 2
    (chords,) = _by_gid(figure, "chords")
    assert len(chords.get_paths()) == 3  # N is left blank
    assert {"D", "A", "B:min", "verse", "chorus", "lofi"} <= _texts(figure)
    assert any(text.startswith("song 120.0 BPM, 4/4") for text in _texts(figure))
    assert _times(figure, "generated downbeats") == [0.45, 2.6, 4.4, 6.7]
    # Moved through the warp map: 2.6 -> 2.5 and 4.4 -> 4.5 exactly, the others interpolated.
    moved = _times(figure, "synced downbeats")
    assert moved[1:3] == pytest.approx([2.5, 4.5]) and moved[0] == pytest.approx(0.45 * 2.5 / 2.6)
    # The warp panel draws each anchor's shift: generated minus remix time, in ms.
    (warp,) = _by_gid(figure, "warp map")
    assert np.allclose(warp.get_xdata(), [0, 2.5, 4.5, 8.5]) and np.allclose(warp.get_ydata(), [0, 100, -100, 0])
    assert figure.axes[0].get_xlim() == (0.0, 8.5) and figure.axes[-1].get_xlim() == (0.0, 8.5)
    (note,) = _by_gid(figure, "beat-sync")
    assert note.get_text() == "aligned by audio, confidence 0.62"


def test_unwarped_instrumental_keeps_its_downbeats_and_draws_no_warp_map():
    figure = analysis_figure(_plot(warped=False))
    assert _times(figure, "synced downbeats") == [0.45, 2.6, 4.4, 6.7]
    assert _by_gid(figure, "warp map") == []
    (note,) = _by_gid(figure, "beat-sync")
    assert note.get_text() == "not warped: no downbeats detected in the song"


def test_empty_analysis_still_draws():
    empty = Beats(bpm=None, beats=np.zeros(0), downbeats=np.zeros(0), beat_positions=np.zeros(0, int))
    plot = AnalysisPlot(waveform=np.zeros((1, 100), np.float32), duration=1.0, beats=empty, chords=[],
                        generated_downbeats=np.zeros(0), synced_downbeats=np.zeros(0), warp=np.zeros((2, 0)))
    figure = analysis_figure(plot)
    assert _times(figure, "downbeats") == []
    assert any(text.startswith("song: no tempo detected") for text in _texts(figure))


@pytest.mark.parametrize("duration, downbeats, expected", [
    (20.0, [0.5, 2.5], (0.0, 20.0, 1, 0)),                       # short: one row of its length
    (180.0, np.arange(0.5, 180, 2.0), (-1.5, 24.0, 8, 12)),      # 2 s bars: 12 a row, from the bar before
    (300.0, np.arange(0.1, 300, 60 / 190 * 4), (-1.1631578947368422, 24.0, 13, 19)),
    (100.0, [], (0.0, 24.0, 5, 0)),                              # no bars: 24 s rows
])
def test_rows_hold_whole_bars_about_24_seconds(duration, downbeats, expected):
    rows = row_layout(duration, np.asarray(downbeats, dtype=float))
    assert (rows.start, rows.seconds, rows.count, rows.bars) == pytest.approx(expected)
    assert rows.span(rows.count - 1)[1] >= duration > rows.span(rows.count - 1)[0]


def test_a_three_minute_song_reads_as_rows_of_bars_with_every_mark_once():
    plot = _song_plot(3.0, 128)
    figure = analysis_figure(plot)
    rows = row_layout(plot.duration, plot.beats.downbeats)
    assert (rows.count, rows.bars) == (8, 13)
    assert len(figure.axes) == rows.count + 1  # the rows, then the warp panel
    # Each row spans its bars; together the rows draw every beat and downbeat exactly once.
    for index, ax in enumerate(figure.axes[:-1]):
        assert ax.get_xlim() == pytest.approx(rows.span(index))
    assert _times(figure, "downbeats") == pytest.approx(plot.beats.downbeats)
    assert _times(figure, "beats") == pytest.approx(plot.beats.beats)
    assert _times(figure, "generated downbeats") == pytest.approx(plot.generated_downbeats)
    # Bars 1, 5, 9, ... are numbered, and each row says where it starts: the first holds the
    # pickup and bars 1-12, the second starts on bar 13.
    numbers = {text for text in _texts(figure) if text.isdigit()}
    assert numbers == {str(n) for n in range(1, plot.beats.downbeats.size + 1, 4)}
    assert rows.span(1)[0] == pytest.approx(plot.beats.downbeats[12])
    assert {"0:00\nbar 1", "0:23\nbar 13"} <= _texts(figure)


@pytest.mark.parametrize("chord_every_beats", [4, 1])
def test_chord_labels_are_drawn_only_where_they_fit_and_never_overprint(chord_every_beats):
    # A chord a bar: every label fits. A chord a beat at 190 BPM (0.32 s, ~20 px): none of the
    # longer labels fits, so they are left out instead of smeared over each other.
    plot = _song_plot(3.0, 190 if chord_every_beats == 1 else 128, chord_every_beats)
    figure = analysis_figure(plot)
    renderer = FigureCanvasAgg(figure).get_renderer()
    labels = _by_gid(figure, "chords labels")
    boxes = sum(len(artist.get_paths()) for artist in _by_gid(figure, "chords"))
    assert boxes >= len(plot.chords)  # cut where a chord crosses a row's end
    if chord_every_beats == 4:
        assert len(labels) >= len(plot.chords) - 1  # all but a cut one
    else:
        assert 0 < len(labels) < boxes / 2 and {label.get_text() for label in labels} == {"G"}
    by_row: dict[int, list] = {}
    for label in labels:
        by_row.setdefault(figure.axes.index(label.axes), []).append(label.get_window_extent(renderer))
    for extents in by_row.values():
        extents.sort(key=lambda box: box.x0)
        assert all(left.x1 <= right.x0 for left, right in zip(extents, extents[1:]))


def test_header_states_the_songs_tempo_and_the_targets():
    figure = analysis_figure(_song_plot(1.0, 95.0, target_bpm=120.0))
    (tempo,) = [text for text in _texts(figure) if text.startswith("song ")]
    assert tempo.startswith("song 95.0 BPM, 4/4 -> remix 120.0 BPM (length x0.792) | 1:00")


def test_section_prompt_ranges_are_drawn_with_their_prompts():
    windows = (Window(0.0, 0.0, 30.0, "verse", "nylon guitar, bpm : 128"),
               Window(12.0, 30.0, 45.0, "verse", "nylon guitar, bpm : 128"),
               Window(27.0, 45.0, 60.0, "0:45-", "full band, horns, bpm : 128"))
    parts = prompt_parts(windows)
    assert parts == (Part(0.0, 45.0, "verse", "nylon guitar, bpm : 128"),
                     Part(45.0, 60.0, "0:45-", "full band, horns, bpm : 128"))
    assert prompt_parts((Window(0.0, 0.0, 30.0, None, "x"),)) == ()
    figure = analysis_figure(_song_plot(1.0, 128, prompts=parts))
    # 1 min at 128 BPM is three rows of 13 bars: each range is cut where it crosses a row's end.
    assert sum(len(artist.get_paths()) for artist in _by_gid(figure, "prompts")) == 4
    assert {"verse: nylon guitar, bpm : 128", "0:45-: full band, horns, bpm : 128"} <= _texts(figure)


def test_png_height_grows_with_the_rows(tmp_path):
    path = write_analysis_png(tmp_path / "analysis.png", _song_plot(5.0, 100))
    rows = row_layout(300.0, _song_plot(5.0, 100).beats.downbeats).count
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (WIDTH_PX, HEADER_PX + rows * ROW_PX + WARP_PX + FOOTER_PX)
        pixels = np.asarray(image.convert("L"))
    assert rows == 13
    # Not a blank canvas: the waveform, marks and text darken a fair share of it.
    assert (pixels < 200).mean() > 0.05
