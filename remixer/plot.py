"""``analysis.png``: a remix's analysis as one picture, readable for a whole song.

The remix's timeline (the song's after any tempo change) is cut into rows of whole bars, about
:data:`ROW_SECONDS` each, read top to bottom like a score; each row's lanes, top to bottom:

1. the song's sections (and, with section prompts, the prompt each part was generated with);
2. the song's waveform (min/max envelope) with its beats and downbeats, bars 1, 5, 9, ... numbered;
3. the chords that conditioned the generation, each labelled where its label fits;
4. the generated instrumental's downbeats before beat-sync (top) and after (bottom), each
   joined to where it moved, over the song's downbeats.

A header states the prompt, the song's tempo and meter and the remix's tempo and key; a last
panel draws the warp map as the shift it applied at each anchor (generated minus remix time, in
ms), which stays readable at song length where a time-against-time line would not, with a note
of what aligned the instrumental and how confidently (or why it was not warped).

Drawn with matplotlib's Agg canvas on a :class:`~matplotlib.figure.Figure` of its own (no pyplot,
so no global figure registry and nothing to close), with fixed margins (no layout engine) and
every lane of marks one collection. Each kind of mark carries a ``gid`` (``"beats"``,
``"downbeats"``, ``"sections"``, ``"prompts"``, ``"chords"`` and their ``"... labels"``,
``"generated downbeats"``, ``"synced downbeats"``, ``"warp map"``, ``"beat-sync"``), once per row, so tests and
tools can find them. The same record feeds ``analysis.html`` (:mod:`remixer.page`).
"""
from __future__ import annotations

import math
import typing as tp
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from btc.labels import ChordSegment
from remixer.beats import Beats
from remixer.beatsync import SyncResult
from remixer.sections import Part, Window

__all__ = ["AnalysisPlot", "Rows", "row_layout", "prompt_parts", "analysis_figure", "write_analysis_png",
           "time_text", "sync_note"]

WIDTH_PX, DPI = 1600, 100
# Pixels of the header, of each row, of the warp panel and of the bottom margin.
HEADER_PX, ROW_PX, WARP_PX, FOOTER_PX = 78, 128, 160, 36
LEFT, RIGHT = 0.075, 0.99
ROW_SECONDS = 24.0
BAR_NUMBER_EVERY = 4
LABEL_PT = 7.5
# Width of an average label character at LABEL_PT, in pixels (DejaVu Sans: ~0.62 em).
_CHAR_PX = 0.62 * LABEL_PT * DPI / 72
# Lanes of a row, in its data units (0-10): (bottom, top).
_SECTION, _PROMPT, _CHORD, _BEFORE, _AFTER = (9.1, 10.0), (8.2, 9.05), (2.55, 3.75), (1.3, 2.35), (0.1, 1.15)
_COLORS = dict(beat="0.45", downbeat="#d62728", generated="#ff7f0e", synced="#2ca02c", chord="#1f77b4",
               wave="0.6", move="0.55", warp="#9467bd")
_SECTION_COLORS = ("#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#80b1d3", "#b3de69", "#fccde5", "#bc80bd")


@dataclass(frozen=True, eq=False)
class AnalysisPlot:
    """What the picture (and ``analysis.html``) shows; every time in seconds on the remix's timeline.

    Attributes
    ----------
    waveform : np.ndarray [shape=(channels, samples)]
        The song; drawn stretched over ``duration`` whatever its own length.
    duration : float
        Length of the remix in seconds.
    beats : Beats
        The song's beats, downbeats and sections on the remix's timeline (its bpm the remix's).
    chords : sequence of ChordSegment
        The chords the generation was conditioned on.
    generated_downbeats, synced_downbeats : np.ndarray
        The instrumental's downbeats as generated, and where beat-sync moved them.
    warp : np.ndarray [shape=(2, K)]
        Row 0 generated time, row 1 remix time, of the warp map's anchors (empty: not warped).
    title : str
        What the model was asked for (the description).
    song_bpm : float or None
        The song's own tempo (``beats.bpm`` is the remix's).
    key_shift : int
        Semitones the remix moved the key by.
    prompts : tuple of Part
        With section prompts, the spans generated with each prompt (:func:`prompt_parts`).
    sync_note : str
        What aligned the instrumental, e.g. ``"aligned by audio, confidence 0.62"``.
    """

    waveform: np.ndarray
    duration: float
    beats: Beats
    chords: tp.Sequence[ChordSegment]
    generated_downbeats: np.ndarray
    synced_downbeats: np.ndarray
    warp: np.ndarray
    title: str = ""
    song_bpm: float | None = None
    key_shift: int = 0
    prompts: tuple[Part, ...] = ()
    sync_note: str = ""

    @classmethod
    def of_remix(cls, song: np.ndarray, song_rate: int, beats: Beats, chords: tp.Sequence[ChordSegment],
                 generated_downbeats: np.ndarray, synced: SyncResult, sample_rate: int, *,
                 title: str = "", song_bpm: float | None = None, key_shift: int = 0,
                 windows: tp.Sequence[Window] = ()) -> AnalysisPlot:
        """The picture of one remix: ``synced`` is beat-sync's result at ``sample_rate``,
        ``windows`` the generation's plan."""
        warp = synced.anchors.astype(np.float64) / sample_rate
        generated = np.asarray(generated_downbeats, dtype=np.float64)
        moved = np.interp(generated, warp[0], warp[1]) if synced.warped else generated
        return cls(waveform=song, duration=synced.audio.shape[1] / sample_rate, beats=beats,
                   chords=chords, generated_downbeats=generated, synced_downbeats=moved, warp=warp,
                   title=title, song_bpm=beats.bpm if song_bpm is None else song_bpm,
                   key_shift=key_shift, prompts=prompt_parts(windows), sync_note=sync_note(synced))

    @property
    def beats_per_bar(self) -> int | None:
        positions = np.asarray(self.beats.beat_positions)
        return int(positions.max()) if positions.size and self.beats.downbeats.size else None

    def tempo_text(self) -> str:
        """``"song 95.0 BPM, 4/4 -> remix 120.0 BPM (length x0.792), key +2"``."""
        meter = "" if self.beats_per_bar is None else f", {self.beats_per_bar}/4"
        song = "song: no tempo detected" if self.song_bpm is None else f"song {self.song_bpm:.1f} BPM{meter}"
        remix = self.beats.bpm
        if remix is not None and self.song_bpm is not None and not math.isclose(remix, self.song_bpm, rel_tol=1e-6):
            song += f" -> remix {remix:.1f} BPM (length x{self.song_bpm / remix:.3f})"
        if self.key_shift:
            song += f", key {self.key_shift:+d} semitones"
        return song


def sync_note(synced: SyncResult) -> str:
    """One line on how beat-sync aligned the instrumental, for the picture."""
    if not synced.warped:
        return synced.reason
    confidence = "" if synced.confidence is None else f", confidence {synced.confidence:.2f}"
    return f"aligned by {synced.method}{confidence}"


def prompt_parts(windows: tp.Sequence[Window]) -> tuple[Part, ...]:
    """The new content of each section prompt's windows as one part each (neighbours with the
    same section and description merge); none without section prompts (all sections None)."""
    if all(window.section is None for window in windows):
        return ()
    parts: list[Part] = []
    for window in windows:
        if parts and (parts[-1].section, parts[-1].description) == (window.section, window.description):
            parts[-1] = Part(parts[-1].start, window.new_end, window.section, window.description)
        else:
            parts.append(Part(window.new_start, window.new_end, window.section, window.description))
    return tuple(parts)


@dataclass(frozen=True)
class Rows:
    """The picture's rows: ``count`` rows of ``seconds`` each from ``start`` (at most 0, so a
    pickup before the first downbeat has its place), ``bars`` whole bars each (0: no bar grid)."""

    start: float
    seconds: float
    count: int
    bars: int

    def span(self, index: int) -> tuple[float, float]:
        begin = self.start + index * self.seconds
        return begin, begin + self.seconds


def row_layout(duration: float, downbeats: np.ndarray, target: float = ROW_SECONDS) -> Rows:
    """Rows of whole bars (the median bar) about ``target`` seconds long, the first bar line of
    each row on a downbeat while the tempo holds; a song shorter than 1.25 rows is one row."""
    downbeats = np.asarray(downbeats, dtype=np.float64)
    if duration <= 1.25 * target:
        return Rows(0.0, max(duration, 1e-3), 1, 0)
    if downbeats.size < 2:
        return Rows(0.0, target, math.ceil(duration / target), 0)
    bar = float(np.median(np.diff(downbeats)))
    bars = max(1, round(target / bar))
    seconds = bars * bar
    start = downbeats[0] - math.ceil(downbeats[0] / bar - 1e-9) * bar
    return Rows(start, seconds, math.ceil((duration - start) / seconds - 1e-9), bars)


def analysis_figure(plot: AnalysisPlot) -> Figure:
    """The figure of ``plot`` (see the module docstring)."""
    rows = row_layout(plot.duration, plot.beats.downbeats)
    height = HEADER_PX + rows.count * ROW_PX + WARP_PX + FOOTER_PX
    figure = Figure(figsize=(WIDTH_PX / DPI, height / DPI), dpi=DPI)
    _header(figure, plot, rows, height)
    peak = float(max(np.abs(plot.waveform).max(initial=0.0), 1e-6))
    for index in range(rows.count):
        top = HEADER_PX + index * ROW_PX
        ax = figure.add_axes((LEFT, 1 - (top + ROW_PX - 18) / height, RIGHT - LEFT, (ROW_PX - 22) / height))
        _row(ax, plot, rows, index, peak)
    warp_top = HEADER_PX + rows.count * ROW_PX + 24
    warp_ax = figure.add_axes((LEFT, 1 - (warp_top + WARP_PX - 30) / height, RIGHT - LEFT, (WARP_PX - 30) / height))
    _warp_panel(warp_ax, plot)
    return figure


def write_analysis_png(path: Path, plot: AnalysisPlot) -> Path:
    """Draw ``plot`` and write it to ``path`` as a PNG; returns ``path``."""
    figure = analysis_figure(plot)
    # zlib level 1 encodes faster than the default (6); the file is ~20 % larger.
    FigureCanvasAgg(figure).print_png(str(path), pil_kwargs={"compress_level": 1})
    return path


def time_text(seconds: float) -> str:
    """``"1:05"``, ``"-0:01"``: a time as m:ss.

    >>> time_text(65.2), time_text(0), time_text(-0.6)
    ('1:05', '0:00', '-0:01')
    """
    sign = "-" if seconds < -0.5 else ""
    whole = round(abs(seconds))
    return f"{sign}{whole // 60}:{whole % 60:02d}"


def label_fits(label: str, width_px: float) -> bool:
    """Whether ``label`` at :data:`LABEL_PT` fits in ``width_px`` with a little room either side."""
    return len(label) * _CHAR_PX + 4 <= width_px


def _header(figure: Figure, plot: AnalysisPlot, rows: Rows, height: int) -> None:
    def y(px: float) -> float:
        return 1 - px / height
    figure.text(LEFT, y(22), plot.title or "remix analysis", fontsize=12, weight="bold", va="baseline")
    bars = f", {plot.beats.downbeats.size} bars" if plot.beats.downbeats.size else ""
    rows_text = f", {rows.bars} bars per row" if rows.bars else ""
    figure.text(LEFT, y(44), f"{plot.tempo_text()} | {time_text(plot.duration)}{bars}{rows_text}",
                fontsize=9.5, va="baseline")
    handles = [Line2D([], [], color=_COLORS["beat"], lw=0.8, label="beats"),
               Line2D([], [], color=_COLORS["downbeat"], lw=1.6, label="downbeats (bar numbers)"),
               Line2D([], [], color=_COLORS["chord"], lw=6, alpha=0.35, label="chords"),
               Line2D([], [], color=_COLORS["generated"], lw=1.6, label="instrumental downbeats as generated"),
               Line2D([], [], color=_COLORS["synced"], lw=1.6, label="after beat-sync")]
    figure.legend(handles=handles, loc="upper left", bbox_to_anchor=(LEFT - 0.005, y(48)), ncol=5,
                  fontsize=8, frameon=False, handlelength=1.6, columnspacing=1.4)


def _row(ax: tp.Any, plot: AnalysisPlot, rows: Rows, index: int, peak: float) -> None:
    begin, end = rows.span(index)
    ax.set_xlim(begin, end)
    ax.set_ylim(0, 10)
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    # No time ticks: each row states where it starts and the bars are numbered (ticks cost
    # as much to draw as everything else).
    ax.set_xticks([])
    px_per_s = (RIGHT - LEFT) * WIDTH_PX / rows.seconds
    wave_top = 8.0 if plot.prompts else 8.95
    wave = (3.95, wave_top)
    first_bar = int(np.searchsorted(plot.beats.downbeats, begin - 1e-6)) + 1
    ax.text(-0.008, 0.62, f"{time_text(max(begin, 0.0))}\nbar {first_bar}" if rows.bars else time_text(begin),
            transform=ax.transAxes, ha="right", va="center", fontsize=8)
    if end > plot.duration:
        ax.axvspan(plot.duration, end, color="0.93", linewidth=0)
    visible = (begin, min(end, plot.duration))
    _spans(ax, [(s.start, s.end, s.label) for s in plot.beats.sections], _SECTION, "sections",
           visible, px_per_s, colors=True)
    if plot.prompts:
        _spans(ax, [(p.start, p.end, p.description if p.section is None else f"{p.section}: {p.description}")
                    for p in plot.prompts], _PROMPT, "prompts", visible, px_per_s, colors=True, shorten=True)
    _waveform(ax, plot, begin, end, wave, peak)
    inside = _within(plot.beats.beats, begin, end)
    _marks(ax, inside, wave[0], wave[1], "beats", colors=_COLORS["beat"], linewidths=0.5, alpha=0.7)
    downbeats = _within(plot.beats.downbeats, begin, end)
    _marks(ax, downbeats, _CHORD[0], wave[1], "downbeats", colors=_COLORS["downbeat"], linewidths=1.1)
    # Bars 1, 5, 9, ... numbered, as rehearsal marks (a text per bar doubles the drawing time).
    for number, time in zip(np.searchsorted(plot.beats.downbeats, downbeats) + 1, downbeats):
        if number % BAR_NUMBER_EVERY == 1 % BAR_NUMBER_EVERY:
            ax.text(time + 2 / px_per_s, wave[1] - 0.05, str(number), fontsize=6.5, va="top",
                    color=_COLORS["downbeat"], clip_on=True)
    _spans(ax, [(c.start, c.end, c.label) for c in plot.chords if c.label != "N"], _CHORD, "chords",
           visible, px_per_s, colors=False)
    _sync(ax, plot, begin, end, names=index == 0)


def _within(times: np.ndarray, begin: float, end: float) -> np.ndarray:
    times = np.asarray(times, dtype=np.float64)
    return times[(times >= begin) & (times < end)]


def _marks(ax: tp.Any, times: np.ndarray, low: float, high: float, gid: str, **style: tp.Any) -> None:
    """One vertical segment per time from ``low`` to ``high`` (data units), as one collection."""
    times = np.asarray(times, dtype=np.float64)
    segments = np.stack([np.stack([times, np.full_like(times, low)], axis=1),
                         np.stack([times, np.full_like(times, high)], axis=1)], axis=1)
    collection = LineCollection(segments.reshape(-1, 2, 2), **style)
    collection.set_gid(gid)
    ax.add_collection(collection, autolim=False)  # the limits are set: measuring data is wasted


def _spans(ax: tp.Any, spans: list[tuple[float, float, str]], lane: tuple[float, float], gid: str,
           visible: tuple[float, float], px_per_s: float, *, colors: bool, shorten: bool = False) -> None:
    """Labelled boxes (sections, prompts, chords) cut to the ``visible`` part of the row; each
    label drawn only where it fits its box (``shorten``: cut with an ellipsis to fit instead)."""
    begin, end = visible
    shown = [(max(start, begin), min(stop, end), label) for start, stop, label in spans
             if stop > begin and start < end]
    face = [_label_color(label) for _, _, label in shown] if colors else _COLORS["chord"]
    bars = PolyCollection([[(start, lane[0]), (start, lane[1]), (stop, lane[1]), (stop, lane[0])]
                           for start, stop, _ in shown], facecolors=face, edgecolors="white", linewidths=0.8,
                          alpha=0.55 if colors else 0.3)
    bars.set_gid(gid)
    ax.add_collection(bars, autolim=False)
    for start, stop, label in shown:
        width = (stop - start) * px_per_s
        if shorten and not label_fits(label, width):
            keep = int((width - 4) / _CHAR_PX) - 1
            label = label[:keep] + "…" if keep >= 3 else ""
        if label and label_fits(label, width):
            text = ax.text((start + stop) / 2, sum(lane) / 2, label, ha="center", va="center",
                           fontsize=LABEL_PT, clip_on=True)
            text.set_gid(f"{gid} labels")


def _label_color(label: str) -> str:
    """The same color for the same section label in every row (and every run)."""
    return _SECTION_COLORS[zlib.crc32(label.split(":")[0].encode()) % len(_SECTION_COLORS)]


def _waveform(ax: tp.Any, plot: AnalysisPlot, begin: float, end: float, lane: tuple[float, float],
              peak: float) -> None:
    samples = np.shape(plot.waveform)[-1]
    first = int(np.clip(begin / plot.duration * samples, 0, samples))
    last = int(np.clip(min(end, plot.duration) / plot.duration * samples, 0, samples))
    if last - first < 2:
        return
    bins = int((RIGHT - LEFT) * WIDTH_PX * (min(end, plot.duration) - max(begin, 0.0)) / (end - begin))
    low, high = _envelope(np.asarray(plot.waveform)[..., first:last], max(bins, 1))
    middle, half = sum(lane) / 2, (lane[1] - lane[0]) / 2 * 0.92
    times = np.linspace(max(begin, 0.0), min(end, plot.duration), low.size)
    outline = np.concatenate([np.stack([times, middle + half * high / peak], axis=1),
                              np.stack([times, middle + half * low / peak], axis=1)[::-1]])
    ax.add_collection(PolyCollection([outline], facecolors=_COLORS["wave"], linewidths=0), autolim=False)


def _envelope(waveform: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max over all channels in ``bins`` equal slices (fewer when it is shorter)."""
    wav = np.asarray(waveform).reshape(-1, np.shape(waveform)[-1])
    bins = max(1, min(bins, wav.shape[1]))
    usable = wav[:, : wav.shape[1] // bins * bins].reshape(wav.shape[0], bins, -1)
    return usable.min(axis=(0, 2)), usable.max(axis=(0, 2))


def _sync(ax: tp.Any, plot: AnalysisPlot, begin: float, end: float, *, names: bool) -> None:
    """Generated downbeats (top half) joined to where beat-sync moved them (bottom half), over
    the song's downbeats (dotted): synced marks on the dots are downbeats in place."""
    _marks(ax, _within(plot.beats.downbeats, begin, end), _AFTER[0], _BEFORE[1], "song downbeats (sync lane)",
           colors=_COLORS["downbeat"], linewidths=0.6, linestyles=(0, (1, 2)), alpha=0.8)
    keep = ((plot.generated_downbeats >= begin) & (plot.generated_downbeats < end)) | \
           ((plot.synced_downbeats >= begin) & (plot.synced_downbeats < end))
    generated, synced = plot.generated_downbeats[keep], plot.synced_downbeats[keep]
    _marks(ax, generated, _BEFORE[0], _BEFORE[1], "generated downbeats", colors=_COLORS["generated"], linewidths=1.3)
    _marks(ax, synced, _AFTER[0], _AFTER[1], "synced downbeats", colors=_COLORS["synced"], linewidths=1.3)
    moves = np.stack([np.stack([generated, np.full_like(generated, _BEFORE[0])], axis=1),
                      np.stack([synced, np.full_like(synced, _AFTER[1])], axis=1)], axis=1)
    ax.add_collection(LineCollection(moves.reshape(-1, 2, 2), colors=_COLORS["move"], linewidths=0.6),
                      autolim=False)
    for lane, name, color in ((_BEFORE, "generated", "generated"), (_AFTER, "synced", "synced")) if names else ():
        ax.text(-0.004, sum(lane) / 2, name, transform=ax.get_yaxis_transform(), fontsize=6.5, ha="right",
                va="center", color=_COLORS[color])


def _warp_panel(ax: tp.Any, plot: AnalysisPlot) -> None:
    ax.set_xlim(0.0, plot.duration)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=16, steps=[1, 2, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: time_text(t)))
    ax.tick_params(labelsize=7)
    ax.axhline(0.0, color="0.7", linewidth=0.8)
    ax.set_ylabel("shift (ms)", fontsize=8)
    ax.set_title("beat-sync warp map: generated minus remix time at each anchor (+: the take was late "
                 "and moved earlier)", fontsize=8.5, loc="left")
    if plot.warp.shape[1]:
        (line,) = ax.plot(plot.warp[1], 1000 * (plot.warp[0] - plot.warp[1]), color=_COLORS["warp"],
                          linewidth=1.2, marker="o", markersize=2)
        line.set_gid("warp map")
    text = plot.sync_note or ("" if plot.warp.shape[1] else "not warped: the instrumental keeps its own timing")
    if text:
        where = (0.995, 0.93, "right", "top") if plot.warp.shape[1] else (0.5, 0.5, "center", "center")
        note = ax.text(where[0], where[1], text, transform=ax.transAxes, ha=where[2], va=where[3],
                       fontsize=8, color="0.25", bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})
        note.set_gid("beat-sync")
