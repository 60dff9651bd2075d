"""A prompt per part of the song, and generation windows that follow the song's form.

Section prompts
    ``"verse: nylon guitar, brushes; chorus: full band, horns"`` gives All-In-One's labelled
    sections their own prompt; ``"0:00-0:45: ambient pads; 0:45-: full band"`` gives time ranges
    theirs, with any analysis backend. Labels and ranges may be mixed: where a range covers a
    labelled section, the range wins. What no part covers uses the request's prompt. The grammar
    and its errors are input checks (:func:`remixer.requests.parse_section_prompts`).

Parts
    :func:`song_parts` cuts the song at its section starts (when the backend reports sections)
    and at the ranges' ends. Each cut moves to the nearest downbeat within half a bar, so a part
    begins on its first bar: All-In-One's boundaries are frame peaks, and typed times are good to
    a second. Neighbouring parts with the same section and description merge.

Windows
    MusicGen writes at most ``window`` seconds (30) per pass and continues a longer piece by
    re-reading the end of what it wrote. A :class:`Window` re-reads ``[start, new_start)`` and
    writes ``[new_start, new_end)``, where ``new_start`` is the previous window's ``new_end``.
    :func:`plan_windows` ends a window at every part boundary, so a part's first bar is always new
    content written with that part's description and never the continuation of a window
    described for the previous part. Inside a part, new content is split into equal spans of at
    most ``stride`` seconds (18, audiocraft's), and each window starts ``window`` seconds before
    its end (or at 0): every window re-reads at least ``window - stride`` seconds (12), as
    audiocraft's fixed stride does, or everything written so far. The first window has nothing to
    re-read and may write a whole window. Any boundary can end a window, so every part's start is
    reachable; only parts shorter than one codec frame (20 ms) vanish. The cost is more, shorter
    windows (one extra prompt pass each); the number of sampled tokens is unchanged.

    Without section prompts the plan stays audiocraft's (:func:`stride_plan`): a window every
    ``stride`` seconds. Snapping those windows to downbeats or section starts was not adopted,
    because nothing measured it as better.

All times are in seconds; plans are quantized to the codec's frames so that what
``analysis.json`` lists is exactly what the generator runs (:func:`plan_steps`).
"""
from __future__ import annotations

import logging
import math
import typing as tp
from dataclasses import dataclass

import numpy as np

from remixer.beats import Section
from remixer.requests import RangePrompt, SectionPrompts

__all__ = ["Part", "Window", "song_parts", "plan_windows", "stride_plan", "plan_steps"]

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class Part:
    """A span of the song and the description its new content is generated with.

    ``section`` is the All-In-One label or the range (as written) the span belongs to; None
    where neither applies.
    """

    start: float
    end: float
    section: str | None
    description: str


@dataclass(frozen=True)
class Window:
    """One generation pass: re-reads ``[start, new_start)``, writes ``[new_start, new_end)``.

    ``section`` is the part its new content belongs to (None without section prompts) and
    ``description`` the text condition it is generated with.
    """

    start: float
    new_start: float
    new_end: float
    section: str | None
    description: str

    def to_dict(self) -> dict[str, tp.Any]:
        """JSON-ready view (times rounded to the millisecond)."""
        return {"start": round(self.start, 3), "new_start": round(self.new_start, 3),
                "new_end": round(self.new_end, 3), "section": self.section,
                "description": self.description}


def song_parts(prompts: SectionPrompts, prompt: str, *, duration: float,
               sections: tp.Sequence[Section] = (), downbeats: tp.Sequence[float] = (),
               describe: tp.Callable[[str], str] = str) -> tuple[Part, ...]:
    """Cut the song into parts with their descriptions (see the module doc).

    Parameters
    ----------
    prompts : SectionPrompts
    prompt : str
        The prompt of whatever no section prompt covers.
    duration : float
        The song's seconds.
    sections : sequence of Section
        The song's labelled sections (All-In-One), if any.
    downbeats : sequence of float
        The song's downbeats, where cuts move to.
    describe : callable
        Turns a prompt into a description (the pipeline appends the bpm).
    """
    prompts.check_duration(duration)
    snap = _snapper(np.asarray(downbeats, dtype=np.float64), duration)
    starts = [(snap(section.start), section.label) for section in sections]
    ranges = [(snap(item.start), snap(duration if item.end is None else item.end), item)
              for item in prompts.ranges]
    for label in prompts.labels:
        if label not in {section.label for section in sections}:
            logger.info("section_prompts: the song has no %r section", label)
    cuts = sorted({0.0, duration, *(start for start, _ in starts),
                   *(edge for start, end, _ in ranges for edge in (start, end))})
    parts: list[Part] = []
    for start, end in zip(cuts, cuts[1:]):
        section, text = _owner((start + end) / 2, starts, ranges, prompts, prompt)
        description = describe(text)
        if parts and (parts[-1].section, parts[-1].description) == (section, description):
            parts[-1] = Part(parts[-1].start, end, section, description)
        else:
            parts.append(Part(start, end, section, description))
    return tuple(parts)


def _snapper(downbeats: np.ndarray, duration: float) -> tp.Callable[[float], float]:
    """Moves a time inside the song to the nearest downbeat within half a (median) bar."""
    half_bar = float(np.median(np.diff(downbeats))) / 2 if downbeats.size >= 2 else 0.0

    def snap(time: float) -> float:
        time = min(max(time, 0.0), duration)
        if half_bar == 0.0 or time in (0.0, duration):
            return time
        nearest = float(downbeats[np.abs(downbeats - time).argmin()])
        return min(max(nearest, 0.0), duration) if abs(nearest - time) <= half_bar else time
    return snap


def _owner(time: float, starts: list[tuple[float, str]], ranges: list[tuple[float, float, RangePrompt]],
           prompts: SectionPrompts, prompt: str) -> tuple[str | None, str]:
    """The section name and prompt that ``time`` falls under: a range first, then a label."""
    for start, end, item in ranges:
        if start <= time < end:
            return item.text, item.prompt
    labels = [label for start, label in starts if start <= time]
    if labels:
        return labels[-1], prompts.labels.get(labels[-1], prompt)
    return None, prompt


def plan_windows(parts: tp.Sequence[Part], *, window: float, stride: float,
                 frame_rate: float) -> tuple[Window, ...]:
    """Windows whose new content starts at every part's start (see the module doc).

    Parameters
    ----------
    parts : sequence of Part
        Contiguous from 0 to the song's end.
    window, stride : float
        The model's window and the most new content a later window writes, in seconds.
    frame_rate : float
        The codec's frames per second; every time of the plan is a whole frame.
    """
    window_steps, stride_steps = _steps(window, stride, frame_rate)
    if not parts or parts[0].start != 0 or any(a.end != b.start for a, b in zip(parts, parts[1:])):
        raise ValueError("parts must cover the song from 0 without gaps")
    total = int(parts[-1].end * frame_rate)
    windows: list[Window] = []
    done = 0
    for part in parts:
        end = total if part is parts[-1] else min(int(round(part.end * frame_rate)), total)
        if end <= done:
            continue
        first = window_steps if done == 0 else stride_steps
        for new_end in _split(done, end, first, stride_steps):
            start = max(0, new_end - window_steps)
            windows.append(Window(start / frame_rate, done / frame_rate, new_end / frame_rate,
                                  part.section, part.description))
            done = new_end
    return tuple(windows)


def _split(begin: int, end: int, first: int, cap: int) -> list[int]:
    """Ends of the fewest spans covering ``[begin, end)``: the first at most ``first`` frames,
    the others at most ``cap``; equal where the caps allow, so every window re-reads alike."""
    length = end - begin
    if length <= first:
        return [end]
    count = 1 + math.ceil((length - first) / cap)
    if length <= count * cap:
        return [begin + length * index // count for index in range(1, count + 1)]
    head = length - (count - 1) * cap
    return [begin + head + cap * index for index in range(count)]


def stride_plan(duration: float, description: str, *, window: float, stride: float,
                frame_rate: float) -> tuple[Window, ...]:
    """audiocraft's windows: one every ``stride`` seconds, each up to ``window`` long."""
    window_steps, stride_steps = _steps(window, stride, frame_rate)
    total = int(duration * frame_rate)
    if total < 1:
        raise ValueError(f"duration {duration} s is shorter than one codec frame ({1 / frame_rate:.3f} s)")
    windows: list[Window] = []
    start = done = 0
    while done < total:
        end = min(start + window_steps, total)
        windows.append(Window(start / frame_rate, done / frame_rate, end / frame_rate, None, description))
        start, done = start + stride_steps, end
    return tuple(windows)


def _steps(window: float, stride: float, frame_rate: float) -> tuple[int, int]:
    window_steps, stride_steps = int(window * frame_rate), int(stride * frame_rate)
    if not 0 < stride_steps < window_steps:
        raise ValueError(f"stride must be in (0, {window:g}) s and at least one frame, got {stride}")
    return window_steps, stride_steps


def plan_steps(plan: tp.Sequence[Window], *, frame_rate: float, total_steps: int,
               window_steps: int) -> list[tuple[int, int, str]]:
    """``(start, end, description)`` of each window in codec frames, checked to write every frame
    of ``[0, total_steps)`` exactly once with windows of at most ``window_steps`` frames that
    (after the first) re-read at least one frame."""
    spans: list[tuple[int, int, str]] = []
    done = 0
    for index, item in enumerate(plan):
        start, new_start, end = (int(round(t * frame_rate)) for t in (item.start, item.new_start, item.new_end))
        if new_start != done:
            raise ValueError(f"window {index} writes from {item.new_start:g} s, not where the previous "
                             f"one ends ({done / frame_rate:g} s): a plan writes every frame once")
        if not 0 <= start <= new_start < end or (index > 0 and start == new_start):
            raise ValueError(f"window {index} must start before its new content "
                             f"({item.start:g} <= {item.new_start:g} < {item.new_end:g} s), and after "
                             f"the first re-read something")
        if end - start > window_steps:
            raise ValueError(f"window {index} lasts {item.new_end - item.start:g} s, longer than the "
                             f"model's {window_steps / frame_rate:g} s window")
        spans.append((start, end, item.description))
        done = end
    if done != total_steps:
        raise ValueError(f"the plan ends at {done / frame_rate:g} s, the output at "
                         f"{total_steps / frame_rate:g} s")
    return spans
