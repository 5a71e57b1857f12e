"""The real-time check (tests/realtime.py, tests/conftest.py): what it counts as waiting on real
time and what it does not. Each test reads the meter and resets it, so the check itself stays quiet."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from tests import realtime
from tests.conftest import FakeTime


@pytest.mark.real_time("measures the meter on a real timer wait of 20 ms")
async def test_a_timer_wait_counts_for_what_it_asked() -> None:
    realtime.WAITS.reset()
    await asyncio.sleep(0.02)
    assert 0.015 <= realtime.WAITS.seconds <= 0.02
    assert "an event loop waited for its timer" in realtime.WAITS.longest_what
    realtime.WAITS.reset()


@pytest.mark.real_time("measures the meter on a real time.sleep of 10 ms")
def test_time_sleep_counts_and_names_its_caller() -> None:
    realtime.WAITS.reset()
    time.sleep(0.01)
    assert 0.009 <= realtime.WAITS.seconds <= 0.01
    assert "tests/test_realtime.py" in realtime.WAITS.longest_what
    realtime.WAITS.reset()


async def test_waiting_for_another_process_is_io_not_real_time() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(0.1)")
    assert await proc.wait() == 0
    assert realtime.WAITS.seconds <= realtime.TOLERANCE_SECONDS


async def test_an_hour_on_the_fake_time_is_no_real_waiting(fake_time: FakeTime) -> None:
    started = time.perf_counter()
    await asyncio.sleep(3600)
    assert fake_time.time() == 3600
    assert realtime.WAITS.seconds == 0
    assert time.perf_counter() - started < 1
