"""A whole song's ``analysis.html`` and ``analysis.png`` without any model weights: the README's
screenshot, and a page to try the viewer on.

The song is synthesized (:mod:`devtools.synth`: known chords, a sung melody); the "generated"
instrumental is a stand-in take of the same score drifting from 99 to 101 BPM and starting late,
as MusicGen's takes do. Everything else is the remix's own code: madmom's shipped model reads
both, :func:`remixer.beatsync.beat_sync` warps the take onto the song's downbeats,
:func:`remixer.mixing.mix` puts the vocals back, and section prompts given as time ranges plan
the windows the prompt lane shows. ::

    python -m devtools.page_demo OUT_DIR [--minutes 3] [--screenshot docs/analysis-page.png]
"""
from __future__ import annotations

import argparse
import io
import typing as tp
from pathlib import Path

from PIL import Image

from devtools.browser import Chromium
from devtools.synth import demo_song, retimed
from remixer import audio as audio_io
from remixer.analysis.madmom import MadmomAnalyzer
from remixer.beats import TempoPrior
from remixer.beatsync import beat_sync, default_threshold
from remixer.mixing import mix
from remixer.page import Track, write_analysis_page
from remixer.plot import AnalysisPlot, write_analysis_png
from remixer.requests import parse_section_prompts
from remixer.sections import plan_windows, song_parts

RATE, TAKE_RATE, BPM = 44_100, 32_000, 100.0
PROMPT = "bossa nova, nylon guitar"


def build(out: Path, minutes: float = 3.0) -> tuple[Path, Path]:
    """Write ``analysis.html`` and ``analysis.png`` of the demo remix into ``out``."""
    song = demo_song(minutes * 60, BPM, sample_rate=RATE, seed=3)
    take = retimed(song, (BPM * 0.99, BPM * 1.01), vocals=False, sample_rate=TAKE_RATE,
                   first_downbeat=float(song.beats[0]) + 0.12)
    analyzer = MadmomAnalyzer()
    beats = analyzer.analyze(song.audio, RATE)
    instrumental = audio_io.resample(take.audio, TAKE_RATE, RATE)
    take_beats = analyzer.analyze(instrumental, RATE, prior=TempoPrior.of(beats))
    synced = beat_sync(instrumental, RATE, take_beats.downbeats, beats.downbeats, song.audio.shape[1],
                       threshold=default_threshold(beats.bpm), generated_beats=take_beats.beats,
                       reference_beats=beats.beats, reference_audio=(song.audio - song.stems["drums"], RATE))
    remix = mix(synced.audio, song.stems["vocals"], RATE).audio
    description = f"{PROMPT}, bpm : {round(beats.bpm)}"
    parts = song_parts(parse_section_prompts(section_prompts(song.duration)), PROMPT, duration=song.duration,
                       downbeats=beats.downbeats, describe=lambda text: f"{text}, bpm : {round(beats.bpm)}")
    windows = plan_windows(parts, window=30.0, stride=18.0, frame_rate=50.0)
    plot = AnalysisPlot.of_remix(song.audio, RATE, beats, song.chords, take_beats.downbeats, synced, RATE,
                                 title=description, windows=windows)
    out.mkdir(parents=True, exist_ok=True)
    png = write_analysis_png(out / "analysis.png", plot)
    page = write_analysis_page(out / "analysis.html", plot, [
        Track("song", song.audio, RATE), Track("remix", remix, RATE),
        Track("instrumental, after beat-sync", synced.audio, RATE),
        Track("instrumental, as generated", instrumental, RATE)])
    return page, png


def section_prompts(seconds: float) -> str:
    """A soft intro over the first ~22 % and a piano solo over 65-80 % of the song, as time ranges
    (``"0:00-0:39: soft intro, brushes; 1:57-2:24: solo piano"`` for 3 minutes)."""
    def clock(t: float) -> str:
        return f"{int(t) // 60}:{int(t) % 60:02d}"
    return (f"0:00-{clock(0.217 * seconds)}: soft intro, brushes; "
            f"{clock(0.65 * seconds)}-{clock(0.8 * seconds)}: solo piano")


def screenshot(page: Path, target: Path, *, view: tuple[float, float] = (30.0, 70.0),
               hover: float = 47.3, width: int = 1400) -> Path:
    """The top of ``page`` (timeline, overview, players) zoomed to ``view`` seconds with the
    pointer at ``hover`` seconds, as a palette PNG (small enough for a README)."""
    with Chromium.start() as browser:
        tab = browser.open(page.resolve().as_uri(), width=width, height=900)
        tab.evaluate(f"analysisPage.setView({view[0]}, {view[1]})")
        box = tab.evaluate("(() => { const r = document.getElementById('timeline').getBoundingClientRect();"
                           " return [r.left, r.top]; })()")
        lanes: dict[str, tp.Any] = tab.evaluate("analysisPage.lanes")
        tab.mouse("mouseMoved", box[0] + tab.evaluate(f"analysisPage.xAt({hover})"), box[1] + sum(lanes["chords"]) / 2)
        bottom = tab.evaluate("document.getElementById('legend').getBoundingClientRect().bottom")
        errors = tab.errors()
        if errors:
            raise RuntimeError(f"the page reported errors: {errors}")
        shot = Image.open(io.BytesIO(tab.screenshot())).convert("RGB")
    shot = shot.crop((0, 0, width, int(bottom) + 12))
    shot.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory for analysis.html and analysis.png")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--screenshot", type=Path, help="also write a screenshot of the page here")
    args = parser.parse_args(argv)
    page, png = build(args.out, args.minutes)
    print(page, png, sep="\n")
    if args.screenshot is not None:
        print(screenshot(page, args.screenshot))


if __name__ == "__main__":
    main()
