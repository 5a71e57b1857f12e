"""Per-group back-off (bridge/engine/executor.py ``Backoff``): full jitter under a capped doubling
bound, drawn from a seeded ``random`` (the module the back-off draws from), on the one fake time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime

import pytest

from bridge import pacing
from bridge.engine.executor import Backoff
from tests.conftest import FakeTime


@pytest.fixture
def seeded() -> Iterator[random.Random]:
    """``random`` seeded for the test (and restored after): a ``Random`` of the same seed replays
    the draws the back-off makes."""
    state = random.getstate()
    random.seed(20261123)
    try:
        yield random.Random(20261123)
    finally:
        random.setstate(state)


def delays(backoff: Backoff, now: datetime, n: int) -> list[float]:
    return [(backoff.fail(now) - now).total_seconds() for _ in range(n)]


def bound(base: float, cap: float, failures: int) -> float:
    return min(cap, base * 2.0 ** (failures - 1))


async def test_each_delay_is_a_uniform_draw_under_the_capped_doubling_bound(
    fake_time: FakeTime, seeded: random.Random
) -> None:
    b = Backoff(base=1.0, cap=120.0)
    got = delays(b, fake_time.now(), 12)
    expected = [seeded.uniform(0, bound(1.0, 120.0, n)) for n in range(1, 13)]
    assert got == pytest.approx(expected, abs=1e-6), "full jitter: uniform(0, bound), one draw each"
    assert b.failures == 12


def test_the_jitter_spans_its_whole_range_and_never_leaves_it(seeded: random.Random) -> None:
    """Over many groups failing at once the delays spread over [0, bound] (the groups do not retry
    in step), and none waits past the bound or the cap."""
    now = datetime(2026, 11, 23, 12, 0).astimezone()
    for failures in (1, 2, 3, 5, 8, 12):
        limit = bound(pacing.ACTION_BACKOFF_BASE, pacing.ACTION_BACKOFF_CAP, failures)
        drawn = []
        for _ in range(400):
            b = Backoff(failures=failures - 1)
            drawn.append((b.fail(now) - now).total_seconds())
        assert all(0 <= d <= limit for d in drawn), (failures, limit, min(drawn), max(drawn))
        assert min(drawn) < 0.05 * limit and max(drawn) > 0.95 * limit, (failures, limit)
    assert limit == pacing.ACTION_BACKOFF_CAP, "the bound stops doubling at the cap"


async def test_retry_after_is_a_floor(fake_time: FakeTime, seeded: random.Random) -> None:
    b = Backoff(base=1.0, cap=4.0)
    now = fake_time.now()
    assert (b.fail(now, retry_after=30) - now).total_seconds() == 30, "the provider said when"
    short = (b.fail(now, retry_after=0.001) - now).total_seconds()
    assert 0.001 <= short <= 2.0


async def test_a_group_is_blocked_until_its_delay_has_passed_on_fake_time(
    fake_time: FakeTime, seeded: random.Random
) -> None:
    b = Backoff(base=1.0, cap=120.0)
    for _ in range(6):
        until = b.fail(fake_time.now())
        assert b.until == until and until > fake_time.now()
        await asyncio.sleep((until - fake_time.now()).total_seconds())
        assert fake_time.now() >= until, "blocked no longer: the next attempt may go"
    replay = random.Random(20261123)
    assert fake_time.time() == pytest.approx(
        sum(replay.uniform(0, bound(1.0, 120.0, n)) for n in range(1, 7))
    )
