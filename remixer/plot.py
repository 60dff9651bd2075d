"""``analysis.png``: a remix's analysis as one picture, read at a glance.

Four lanes share one time axis, the remix's (the song's timeline after any tempo change):

1. the song's waveform (min/max envelope) with its beats, downbeats and sections;
2. the chords that conditioned the generation, as labelled blocks;
3. the generated instrumental's downbeats before beat-sync (top row) and after (bottom row),
   labelled with what aligned it and how confidently (or why it was not warped);
4. the warp map: generated time against song time, beside the identity line.

Drawn with matplotlib's Agg canvas on a :class:`~matplotlib.figure.Figure` of its own (no pyplot,
so no global figure registry and nothing to close); a 3-minute song draws in under a second
because the waveform is reduced to one min/max pair per horizontal pixel, every lane of marks is
one collection and the margins are fixed (no layout engine). Each kind of mark carries a
``gid`` (``"beats"``, ``"downbeats"``, ``"sections"``, ``"chords"``, ``"generated downbeats"``,
``"synced downbeats"``, ``"beat-sync"``, ``"warp map"``) so tests and tools can find it.
"""
from __future__ import annotations

import typing as tp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from btc.labels import ChordSegment
from remixer.beats import Beats
from remixer.beatsync import SyncResult

__all__ = ["AnalysisPlot", "analysis_figure", "sync_note", "write_analysis_png"]

WIDTH_PX, HEIGHT_PX, DPI = 1600, 900, 100
_LANE_HEIGHTS = (3, 1, 1, 2)


@dataclass(frozen=True, eq=False)
class AnalysisPlot:
    """What the picture shows; every time in seconds on the remix's timeline.

    Attributes
    ----------
    waveform : np.ndarray [shape=(channels, samples)]
        The song; drawn stretched over ``duration`` whatever its own length.
    duration : float
        Length of the remix in seconds.
    beats : Beats
        The song's beats, downbeats and sections on the remix's timeline.
    chords : sequence of ChordSegment
        The chords the generation was conditioned on.
    generated_downbeats, synced_downbeats : np.ndarray
        The instrumental's downbeats as generated, and where beat-sync moved them.
    warp : np.ndarray [shape=(2, K)]
        Row 0 generated time, row 1 remix time, of the warp map's anchors (empty: not warped).
    title : str
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
    sync_note: str = ""

    @classmethod
    def of_remix(cls, song: np.ndarray, song_rate: int, beats: Beats, chords: tp.Sequence[ChordSegment],
                 generated_downbeats: np.ndarray, synced: SyncResult, sample_rate: int, *,
                 title: str = "") -> AnalysisPlot:
        """The picture of one remix: ``synced`` is beat-sync's result at ``sample_rate``."""
        warp = synced.anchors.astype(np.float64) / sample_rate
        generated = np.asarray(generated_downbeats, dtype=np.float64)
        moved = np.interp(generated, warp[0], warp[1]) if synced.warped else generated
        return cls(waveform=song, duration=synced.audio.shape[1] / sample_rate, beats=beats,
                   chords=chords, generated_downbeats=generated, synced_downbeats=moved, warp=warp,
                   title=title, sync_note=sync_note(synced))


def sync_note(synced: SyncResult) -> str:
    """One line on how beat-sync aligned the instrumental, for the picture."""
    if not synced.warped:
        return synced.reason
    confidence = "" if synced.confidence is None else f", confidence {synced.confidence:.2f}"
    return f"aligned by {synced.method}{confidence}"


def analysis_figure(plot: AnalysisPlot) -> Figure:
    """The four-lane figure of ``plot`` (see the module docstring)."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    # Fixed margins: a layout engine measures every text first and doubles the drawing time.
    axes = figure.subplots(len(_LANE_HEIGHTS), 1, sharex=True, gridspec_kw={
        "height_ratios": _LANE_HEIGHTS, "left": 0.06, "right": 0.99, "top": 0.95, "bottom": 0.06,
        "hspace": 0.08})
    wave_ax, chord_ax, sync_ax, warp_ax = axes
    figure.suptitle(plot.title or "remix analysis", fontsize=11)
    _waveform_lane(wave_ax, plot)
    _chord_lane(chord_ax, plot.chords)
    _sync_lane(sync_ax, plot.generated_downbeats, plot.synced_downbeats, plot.sync_note)
    _warp_lane(warp_ax, plot.warp, plot.duration)
    warp_ax.set_xlim(0.0, plot.duration)
    warp_ax.set_xlabel("remix time (s)")
    return figure


def write_analysis_png(path: Path, plot: AnalysisPlot) -> Path:
    """Draw ``plot`` and write it to ``path`` as a PNG; returns ``path``."""
    figure = analysis_figure(plot)
    # zlib level 1 encodes faster than the default (6); the file is ~20 % larger.
    FigureCanvasAgg(figure).print_png(str(path), pil_kwargs={"compress_level": 1})
    return path


def _envelope(waveform: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max over all channels in ``bins`` equal slices (fewer when it is shorter)."""
    wav = np.asarray(waveform).reshape(-1, np.shape(waveform)[-1])
    bins = max(1, min(bins, wav.shape[1]))
    usable = wav[:, : wav.shape[1] // bins * bins].reshape(wav.shape[0], bins, -1)
    return usable.min(axis=(0, 2)), usable.max(axis=(0, 2))


def _marks(ax: tp.Any, times: np.ndarray, low: float, high: float, gid: str, **style: tp.Any) -> None:
    """One vertical segment per time from ``low`` to ``high`` (data units), as one collection."""
    times = np.asarray(times, dtype=np.float64)
    segments = np.stack([np.stack([times, np.full_like(times, low)], axis=1),
                         np.stack([times, np.full_like(times, high)], axis=1)], axis=1)
    collection = LineCollection(segments.reshape(-1, 2, 2), label=gid, **style)
    collection.set_gid(gid)
    ax.add_collection(collection)


def _waveform_lane(ax: tp.Any, plot: AnalysisPlot) -> None:
    low, high = _envelope(plot.waveform, WIDTH_PX)
    times = np.linspace(0.0, plot.duration, low.size)
    ax.fill_between(times, low, high, color="0.55", linewidth=0)
    peak = float(max(np.abs(low).max(), np.abs(high).max(), 1e-6))
    ax.set_ylim(-1.15 * peak, 1.15 * peak)
    for index, section in enumerate(plot.beats.sections):
        span = ax.axvspan(section.start, section.end, color=f"C{index % 10}", alpha=0.12, linewidth=0)
        span.set_gid("sections")
        ax.text(section.start, 1.05 * peak, section.label, fontsize=8, va="top", clip_on=True)
    _marks(ax, plot.beats.beats, -peak, peak, "beats", colors="0.3", linewidths=0.4, alpha=0.5)
    _marks(ax, plot.beats.downbeats, -1.1 * peak, 1.1 * peak, "downbeats", colors="C3", linewidths=1.2)
    bpm = "no tempo detected" if plot.beats.bpm is None else f"{plot.beats.bpm:.1f} BPM"
    ax.set_ylabel("song")
    ax.set_yticks([])
    ax.legend(loc="upper right", fontsize=8, title=bpm, title_fontsize=8)


def _chord_lane(ax: tp.Any, chords: tp.Sequence[ChordSegment]) -> None:
    boxes = [(c.start, c.end - c.start) for c in chords if c.label != "N"]
    bars = ax.broken_barh(boxes, (0.1, 0.8), facecolors="C0", edgecolors="white", alpha=0.35)
    bars.set_gid("chords")
    for chord in chords:
        if chord.label != "N":
            ax.text((chord.start + chord.end) / 2, 0.5, chord.label, ha="center", va="center",
                    fontsize=7, clip_on=True)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel("chords")


def _sync_lane(ax: tp.Any, generated: np.ndarray, synced: np.ndarray, note: str) -> None:
    _marks(ax, generated, 1.05, 1.95, "generated downbeats", colors="C1", linewidths=1.2)
    _marks(ax, synced, 0.05, 0.95, "synced downbeats", colors="C2", linewidths=1.2)
    # Each downbeat's move, so a big jump stands out.
    moves = np.stack([np.stack([generated, np.full_like(generated, 1.05)], axis=1),
                      np.stack([synced, np.full_like(synced, 0.95)], axis=1)], axis=1)
    ax.add_collection(LineCollection(moves.reshape(-1, 2, 2), colors="0.6", linewidths=0.6))
    ax.set_ylim(0, 2)
    ax.set_yticks([0.5, 1.5], ["after", "before"], fontsize=8)
    ax.set_ylabel("instr. downbeats")
    if note:
        text = ax.text(0.995, 0.93, note, transform=ax.transAxes, ha="right", va="top", fontsize=8,
                       bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})
        text.set_gid("beat-sync")


def _warp_lane(ax: tp.Any, warp: np.ndarray, duration: float) -> None:
    ax.plot([0.0, duration], [0.0, duration], color="0.7", linestyle="--", linewidth=0.8,
            label="unwarped")
    if warp.shape[1]:
        (line,) = ax.plot(warp[1], warp[0], color="C4", linewidth=1.2, label="warp map")
        line.set_gid("warp map")
    ax.set_ylabel("generated time (s)")
    ax.legend(loc="upper left", fontsize=8)
