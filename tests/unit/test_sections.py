"""The parts of a song and window plans that start a part's new content at its first bar without
gaps or double cover (the section-prompt grammar is tested with the other inputs, test_requests)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from remixer.beats import Section
from remixer.requests import parse_section_prompts
from remixer.sections import Part, Window, plan_steps, plan_windows, song_parts, stride_plan

# MusicGen's real sizes: 30 s windows, 18 s stride, 50 codec frames per second.
REAL = dict(window=30.0, stride=18.0, frame_rate=50)


# --- parts -----------------------------------------------------------------------------------------

SONG = (Section(0.0, 12.3, "intro"), Section(12.3, 40.0, "verse"), Section(40.0, 69.8, "chorus"),
        Section(69.8, 90.0, "outro"))
DOWNBEATS = np.arange(0.1, 90.0, 2.0)  # 120 bpm in 4/4, first bar at 0.1 s


def test_parts_follow_the_sections_from_their_first_bar():
    prompts = parse_section_prompts("verse: nylon guitar; chorus: full band")
    parts = song_parts(prompts, "bossa nova", duration=90.0, sections=SONG, downbeats=DOWNBEATS,
                       describe=lambda text: f"{text}, bpm : 120")
    assert parts == (Part(0.0, 12.1, "intro", "bossa nova, bpm : 120"),
                     Part(12.1, 40.1, "verse", "nylon guitar, bpm : 120"),
                     Part(40.1, 70.1, "chorus", "full band, bpm : 120"),
                     Part(70.1, 90.0, "outro", "bossa nova, bpm : 120"))


def test_ranges_win_over_labels_and_uncovered_time_uses_the_prompt():
    prompts = parse_section_prompts("chorus: full band; 0:30-0:50: strings")
    parts = song_parts(prompts, "pop", duration=90.0, sections=SONG, downbeats=DOWNBEATS)
    assert parts == (Part(0.0, 12.1, "intro", "pop"), Part(12.1, 30.1, "verse", "pop"),
                     Part(30.1, 50.1, "0:30-0:50", "strings"), Part(50.1, 70.1, "chorus", "full band"),
                     Part(70.1, 90.0, "outro", "pop"))
    no_sections = song_parts(parse_section_prompts("0:30-: strings"), "pop", duration=45.0)
    assert no_sections == (Part(0.0, 30.0, None, "pop"), Part(30.0, 45.0, "0:30-", "strings"))


def test_neighbouring_parts_alike_merge_and_far_cuts_stay():
    sections = (Section(0.0, 20.0, "verse"), Section(20.0, 40.0, "verse"), Section(40.0, 60.0, "chorus"))
    # No downbeat near 40 s (the bar median is 2 s): the cut stays where All-In-One put it.
    downbeats = np.concatenate([np.arange(0.0, 30.0, 2.0), [50.0, 52.0]])
    parts = song_parts(parse_section_prompts("verse: a"), "b", duration=60.0, sections=sections,
                       downbeats=downbeats)
    assert parts == (Part(0.0, 40.0, "verse", "a"), Part(40.0, 60.0, "chorus", "b"))


# --- window plans ----------------------------------------------------------------------------------

def test_plan_starts_every_sections_new_content_at_its_first_bar():
    # intro 0-12 s, verse 12-40 s, chorus 40-70 s, outro 70-90 s.
    parts = (Part(0.0, 12.0, "intro", "i"), Part(12.0, 40.0, "verse", "v"),
             Part(40.0, 70.0, "chorus", "c"), Part(70.0, 90.0, "outro", "o"))
    plan = plan_windows(parts, **REAL)
    assert plan == (Window(0.0, 0.0, 12.0, "intro", "i"),
                    Window(0.0, 12.0, 26.0, "verse", "v"), Window(10.0, 26.0, 40.0, "verse", "v"),
                    Window(25.0, 40.0, 55.0, "chorus", "c"), Window(40.0, 55.0, 70.0, "chorus", "c"),
                    Window(50.0, 70.0, 80.0, "outro", "o"), Window(60.0, 80.0, 90.0, "outro", "o"))
    # Every section start is the start of some window's new content, even the intro's end at
    # 12 s, which audiocraft's fixed windows (the first one writes 0-30 s) cannot place.
    assert {part.start for part in parts} <= {window.new_start for window in plan}
    assert 12.0 not in {window.new_start for window in stride_plan(90.0, "x", **REAL)}
    _assert_tiles(plan, 90.0, window=30.0, context=12.0)


def _assert_tiles(plan, duration: float, *, window: float, context: float) -> None:
    """New content covers [0, duration) once; windows fit the model and re-read enough."""
    assert plan[0].start == plan[0].new_start == 0.0
    for before, after in zip(plan, plan[1:]):
        assert after.new_start == before.new_end
        assert after.new_start - after.start >= min(context, after.new_start) - 1e-9
    assert plan[-1].new_end == duration
    assert sum(w.new_end - w.new_start for w in plan) == pytest.approx(duration)
    assert all(w.new_end - w.start <= window + 1e-9 for w in plan)


def test_long_first_part_fills_the_first_window_then_strides():
    plan = plan_windows((Part(0.0, 40.0, None, "a"), Part(40.0, 41.0, None, "b")), **REAL)
    assert [(w.start, w.new_start, w.new_end, w.description) for w in plan] == [
        (0.0, 0.0, 22.0, "a"), (10.0, 22.0, 40.0, "a"), (11.0, 40.0, 41.0, "b")]
    _assert_tiles(plan, 41.0, window=30.0, context=12.0)


def test_plan_on_odd_times_is_frame_exact_and_tiles():
    parts = (Part(0.0, 7.013, "intro", "i"), Part(7.013, 61.37, "verse", "v"), Part(61.37, 200.011, "outro", "o"))
    plan = plan_windows(parts, **REAL)
    times = [t for w in plan for t in (w.start, w.new_start, w.new_end)]
    assert all(abs(t * 50 - round(t * 50)) < 1e-9 for t in times)
    changes = [after.new_start for before, after in zip(plan, plan[1:]) if after.section != before.section]
    assert changes == [7.02, 61.36]  # the nearest frames
    _assert_tiles(plan, 200.0, window=30.0, context=12.0)  # 200.011 s is 10000 whole frames
    assert plan_steps(plan, frame_rate=50, total_steps=10_000, window_steps=1500)[-1][1] == 10_000


def test_part_shorter_than_a_frame_vanishes():
    plan = plan_windows((Part(0.0, 5.0, None, "a"), Part(5.0, 5.005, None, "b"),
                         Part(5.005, 10.0, None, "c")), **REAL)
    assert [(w.new_start, w.new_end, w.description) for w in plan] == [(0.0, 5.0, "a"), (5.0, 10.0, "c")]


def test_stride_plan_is_audiocrafts_loop():
    # The tiny test model: a 2 s window, 1.2 s stride.
    plan = stride_plan(5.0, "pop", window=2.0, stride=1.2, frame_rate=50)
    assert [(w.start, w.new_start, w.new_end) for w in plan] == [
        (0.0, 0.0, 2.0), (1.2, 2.0, 3.2), (2.4, 3.2, 4.4), (3.6, 4.4, 5.0)]
    assert {w.description for w in plan} == {"pop"} and {w.section for w in plan} == {None}
    assert plan[0].to_dict() == {"start": 0.0, "new_start": 0.0, "new_end": 2.0, "section": None,
                                 "description": "pop"}


@pytest.mark.parametrize("plan, message", [
    ((Window(0.0, 0.0, 2.0, None, "a"), Window(1.0, 2.5, 4.0, None, "b")),
     "window 1 writes from 2.5 s, not where the previous one ends (2 s): a plan writes every frame once"),
    ((Window(0.0, 0.0, 2.0, None, "a"), Window(2.0, 2.0, 4.0, None, "b")),
     "window 1 must start before its new content (2 <= 2 < 4 s), and after the first re-read something"),
    ((Window(0.0, 0.0, 2.0, None, "a"), Window(0.0, 2.0, 4.0, None, "b")),
     "window 1 lasts 4 s, longer than the model's 3 s window"),
    ((Window(0.0, 0.0, 2.0, None, "a"),), "the plan ends at 2 s, the output at 4 s"),
])
def test_plan_steps_refuse_gaps_overlaps_and_long_windows(plan, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        plan_steps(plan, frame_rate=50, total_steps=200, window_steps=150)


def test_plan_steps_are_frames():
    plan = stride_plan(5.0, "pop", window=2.0, stride=1.2, frame_rate=50)
    assert plan_steps(plan, frame_rate=50, total_steps=250, window_steps=100) == [
        (0, 100, "pop"), (60, 160, "pop"), (120, 220, "pop"), (180, 250, "pop")]
