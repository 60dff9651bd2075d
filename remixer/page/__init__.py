"""``analysis.html``: a remix's analysis as one interactive page, with the audio to check it by ear.

One self-contained file that opens offline in any current browser: the script
(``analysis.js``), the style (``analysis.css``), the analysis (the record :mod:`remixer.plot`
draws, as JSON) and the players' audio (mp3 data URIs) are inline, and nothing is fetched when
it is viewed. A canvas draws the remix's timeline, lane by lane: sections, section prompts, the
song's waveform with its beats and numbered downbeats, the chords, the instrumental's downbeats
before and after beat-sync, and the shift the warp applied; an overview of the whole song sits
below it. The wheel (or the buttons) zooms around the pointer, dragging pans, and hovering
names the time, bar and beat, chord, section, prompt and the nearest instrumental downbeat's
move. Players for the song, the remix and the instrumental before and after beat-sync draw
their position on the timeline, and a click there seeks the last one played.

Previews are 128 kbps mp3 (LAME's fast setting: a 3-minute track encodes in about a second),
loudness-normalized to -14 LUFS so that switching players compares music, not levels, and
start without LAME's 1105-sample delay: mp3 without a gapless header plays that delay first in
every browser, and removing it puts sample k of the preview at sample k's time.
"""
from __future__ import annotations

import base64
import html
import json
import string
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import lameenc
import numpy as np

from remixer import audio as audio_io
from remixer.plot import AnalysisPlot

__all__ = ["Track", "page_data", "preview_mp3", "write_analysis_page", "MP3_DELAY"]

_ASSETS = Path(__file__).parent
# Samples LAME's encoder and the mp3 decoder add before the first input sample (576 + 529).
MP3_DELAY = 1105
PREVIEW_KBPS = 128
# Envelope bins per second of the page's waveform (10 ms: sharp at a few seconds across the screen).
ENVELOPE_RATE = 100
MAX_ENVELOPE_BINS = 60_000


@dataclass(frozen=True, eq=False)
class Track:
    """A player on the page.

    Attributes
    ----------
    label : str
    audio : np.ndarray [shape=(channels, samples)]
        At most two channels.
    sample_rate : int
    timescale : float
        Page time per second of this audio (the song before a tempo change: the stretch ratio).
    """

    label: str
    audio: np.ndarray
    sample_rate: int
    timescale: float = 1.0


def write_analysis_page(path: Path, plot: AnalysisPlot, tracks: tp.Sequence[Track]) -> Path:
    """Write the page of ``plot`` with a player per track to ``path``; returns ``path``."""
    data = json.dumps(page_data(plot, tracks), separators=(",", ":"))
    players = "\n".join(_player(index, track) for index, track in enumerate(tracks))
    page = string.Template((_ASSETS / "analysis.html").read_text()).substitute(
        title=html.escape(plot.title or "remix analysis"),
        style=(_ASSETS / "analysis.css").read_text(),
        # "</" would end the script element early; JSON reads "<\/" as "</".
        data=data.replace("</", "<\\/"),
        script=(_ASSETS / "analysis.js").read_text(),
        players=players)
    path.write_text(page, encoding="utf-8")
    return path


def page_data(plot: AnalysisPlot, tracks: tp.Sequence[Track] = ()) -> dict[str, tp.Any]:
    """What the page's script draws: the plot's record as JSON-ready lists (times in seconds,
    rounded to the millisecond) and the song's min/max envelope on the remix's timeline."""
    def times(values: tp.Iterable[float]) -> list[float]:
        return [round(float(t), 3) for t in values]
    beats = plot.beats
    step, low, high = _envelope(plot.waveform, plot.duration)
    return {
        "title": plot.title, "tempo": plot.tempo_text(), "duration": round(plot.duration, 3),
        "bpm": beats.bpm, "songBpm": plot.song_bpm, "keyShift": plot.key_shift,
        "beats": times(beats.beats), "beatPositions": [int(p) for p in beats.beat_positions],
        "downbeats": times(beats.downbeats),
        "sections": [[round(s.start, 3), round(s.end, 3), s.label] for s in beats.sections],
        "prompts": [[round(p.start, 3), round(p.end, 3), p.section, p.description] for p in plot.prompts],
        "chords": [[round(c.start, 3), round(c.end, 3), c.label] for c in plot.chords if c.label != "N"],
        "generated": times(plot.generated_downbeats), "synced": times(plot.synced_downbeats),
        "warp": [times(plot.warp[0]), times(plot.warp[1])],
        "envelope": {"step": step, "min": low, "max": high},
        "tracks": [{"label": track.label, "timescale": track.timescale} for track in tracks],
    }


def preview_mp3(wav: np.ndarray, sample_rate: int) -> bytes:
    """``wav`` as a loudness-normalized mp3 whose sample k decodes at sample k (see the module doc)."""
    wav = audio_io.normalize(audio_io.sanitize(wav), sample_rate, "loudness", loudness_compressor=True)
    settings = audio_io.mp3_settings(sample_rate, PREVIEW_KBPS)
    if settings.sample_rate != sample_rate:
        wav = audio_io.resample(wav, sample_rate, settings.sample_rate)
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(settings.bitrate)
    encoder.set_in_sample_rate(settings.sample_rate)
    encoder.set_channels(wav.shape[0])
    encoder.set_quality(7)  # LAME's fast setting: about 4x faster than its default
    pcm = np.round(np.clip(wav[:, MP3_DELAY:].T, -1.0, 1.0) * 32767).astype("<i2")
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def _player(index: int, track: Track) -> str:
    source = base64.b64encode(preview_mp3(track.audio, track.sample_rate)).decode("ascii")
    return (f'<div class="player" data-track="{index}"><label for="track-{index}">{html.escape(track.label)}</label>'
            f'<audio id="track-{index}" controls preload="auto" src="data:audio/mpeg;base64,{source}"></audio></div>')


def _envelope(waveform: np.ndarray, duration: float) -> tuple[float, list[int], list[int]]:
    """Min and max of all channels per bin, as integers in [-1000, 1000] of the peak, and the
    bin's length on the page's timeline."""
    wav = np.asarray(waveform, dtype=np.float32).reshape(-1, np.shape(waveform)[-1])
    bins = int(np.clip(duration * ENVELOPE_RATE, 1, min(MAX_ENVELOPE_BINS, wav.shape[1])))
    edges = np.linspace(0, wav.shape[1], bins + 1).astype(np.int64)
    low = np.minimum.reduceat(wav.min(axis=0), edges[:-1])
    high = np.maximum.reduceat(wav.max(axis=0), edges[:-1])
    peak = max(float(np.abs(wav).max()), 1e-9)
    return (round(duration / bins, 6), np.round(1000 * low / peak).astype(int).tolist(),
            np.round(1000 * high / peak).astype(int).tolist())
