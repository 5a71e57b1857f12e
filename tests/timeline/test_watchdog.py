"""A timeline that never finishes is stopped by the runner's real-time watchdog, which says what
the loop was waiting on, instead of hanging the suite (or CI) until its outer limit.

This is the one timeline test that spends real time: the watchdog guards real time, so proving it
takes a fraction of a second of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.timeline import run_timeline
from bridge.timeline.loader import load_timeline
from bridge.timeline.runner import TimelineRun, TimelineStuck

CORPUS = Path(__file__).parents[1] / "timelines"


def test_a_stuck_timeline_is_stopped_and_says_where() -> None:
    path = CORPUS / "lifecycle-open-update-monitor-resolve.yaml"

    async def never(run: TimelineRun) -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(TimelineStuck) as stuck:
        run_timeline(load_timeline(path), path, observer=never, wall_limit=0.3)
    message = str(stuck.value)
    assert "still running after 0.3 s of real time" in message
    assert "timer(s) scheduled" in message
    assert "thread MainThread" in message


def test_the_watchdog_leaves_a_finished_run_alone() -> None:
    path = CORPUS / "lifecycle-open-update-monitor-resolve.yaml"
    assert run_timeline(load_timeline(path), path, wall_limit=60).passed
