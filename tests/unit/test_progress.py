"""Progress reports: a stage's fraction and ETA from its steps, the CLI's bars, the server's log lines."""
from __future__ import annotations

import io
import logging

import pytest

from remixer.progress import Progress, ProgressBars, ProgressLog, StageClock, duration_text


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stage_clock_reports_fraction_and_eta_at_the_rate_so_far():
    reports: list[Progress] = []
    clock = FakeClock()
    stage = StageClock("generation", "step", reports.append, clock=clock)
    clock.now += 10.0
    stage.step(250, 1000)  # a quarter in 10 s: 30 s to go
    clock.now += 20.0
    stage.step(750, 1000)  # three quarters in 30 s: 10 s to go
    clock.now += 9.0
    assert stage.finish() == pytest.approx(39.0)
    assert [(r.fraction, r.eta_s, r.elapsed_s, r.done, r.total, r.ended) for r in reports] == [
        (0.0, None, 0.0, 0, 0, False),
        (0.25, pytest.approx(30.0), 10.0, 250, 1000, False),
        (0.75, pytest.approx(10.0), 30.0, 750, 1000, False),
        (1.0, 0.0, 39.0, 750, 1000, True)]
    assert {(r.stage, r.unit) for r in reports} == {("generation", "step")}
    assert stage.summary(39.0) == "generation done in 39.00 s (1000 steps)"


def test_a_stage_without_steps_reports_its_start_and_end_only():
    reports: list[Progress] = []
    stage = StageClock("chords", listener=reports.append)
    stage.finish()
    assert [(r.fraction, r.total, r.ended) for r in reports] == [(0.0, 0, False), (1.0, 0, True)]
    assert stage.summary(0.5) == "chords done in 0.50 s"


def _run_stage(listener, stage: str, total: int, unit: str = "step") -> None:
    clock = StageClock(stage, unit, listener)
    for done in range(1, total + 1):
        clock.step(done, total)
    clock.finish()


def test_progress_bars_draw_a_bar_per_counted_stage_and_remove_it_at_its_end():
    screen = io.StringIO()
    bars = ProgressBars(file=screen, disable=False, mininterval=0)
    _run_stage(bars, "chords", 0)
    assert screen.getvalue() == ""  # nothing to count, no bar
    _run_stage(bars, "separation", 8, "chunk")
    _run_stage(bars, "generation", 400)
    drawn = screen.getvalue()
    assert "separation: 100%" in drawn and "8/8 [" in drawn and "chunk/s" in drawn
    assert "generation: 100%" in drawn and "400/400 [" in drawn
    assert drawn.index("separation") < drawn.index("generation")
    assert bars._bar is None  # both closed (leave=False clears the line)


def test_progress_bars_stay_off_where_the_output_is_no_terminal():
    screen = io.StringIO()  # isatty() is False: disable=None draws nothing
    _run_stage(ProgressBars(file=screen), "generation", 50)
    assert screen.getvalue() == ""


def test_progress_log_writes_a_line_per_quarter_of_a_long_stage(caplog):
    log = ProgressLog()
    with caplog.at_level(logging.INFO, logger="remixer.progress"):
        _run_stage(log, "chords", 0)
        _run_stage(log, "generation", 1000)
        _run_stage(log, "separation", 3, "chunk")
    lines = [record.getMessage() for record in caplog.records]
    assert [line.split(" (")[0] for line in lines] == [
        "generation: 25%", "generation: 50%", "generation: 75%", "separation: 33%", "separation: 67%"]
    assert lines[0].startswith("generation: 25% (250 of 1000 steps), about ")
    assert lines[3].startswith("separation: 33% (1 of 3 chunks)")


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (59.4, "59 s"), (60, "1 min 00 s"), (3725, "62 min 05 s")])
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text
