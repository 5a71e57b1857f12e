"""The provider-wide breaker: pure state with ``now`` injected, and driven on the one fake time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bridge.engine.breaker import Breaker
from tests.conftest import FakeTime

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_closed_admits_everything() -> None:
    b = Breaker()
    assert all(b.admit(at(0)) for _ in range(5))
    assert b.blocked_until(at(0)) is None
    assert b.succeeded() is False, "a success while closed is no recovery"


def test_open_admits_one_probe_per_interval_doubling_to_the_cap() -> None:
    b = Breaker(interval=0.5, cap=2.0)
    probes: list[datetime] = []
    for _ in range(5):
        due = b.failed(at(0) if not probes else probes[-1])
        probes.append(due)
    gaps = [(probes[0] - at(0)).total_seconds()] + [
        (later - earlier).total_seconds() for earlier, later in zip(probes, probes[1:], strict=False)
    ]
    assert gaps == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_exactly_one_probe_goes_and_the_rest_wait_for_it() -> None:
    b = Breaker(interval=1.0)
    b.failed(at(0))
    assert not b.admit(at(0.5)), "nothing before the probe is due"
    assert b.blocked_until(at(0.5)) == at(1.0)
    assert b.admit(at(1.0)), "the first one after it is due is the probe"
    assert not b.admit(at(1.0)), "the others wait for the probe"
    assert b.blocked_until(at(1.0)) is not None
    assert b.succeeded() is True, "the probe's success is a recovery"
    assert b.admit(at(1.1)) and b.admit(at(1.1))


def test_a_failed_probe_reopens_and_a_released_one_lets_another_go() -> None:
    b = Breaker(interval=1.0, cap=4.0)
    b.failed(at(0))
    assert b.admit(at(1))
    assert b.failed(at(1.5)) == at(3.5), "second failure: twice the interval"
    assert b.admit(at(3.5))
    b.release()  # that probe never reached the provider
    assert b.admit(at(3.5))


def test_retry_after_sets_the_next_probe_neither_sooner_nor_later() -> None:
    b = Breaker(interval=0.5, cap=2.0)
    for _ in range(4):
        b.failed(at(0))
    assert b.failed(at(0), retry_after=7) == at(7)
    assert b.failed(at(0), retry_after=1) == at(1), "not the grown back-off: the provider said when"


async def test_probes_on_the_one_fake_time_follow_the_doubling_schedule(fake_time: FakeTime) -> None:
    """A caller that waits for the breaker as the executor does (sleep until ``blocked_until``, then
    ask): every probe fails, so probes go 0.5, 1, 2, 2 s apart; then one succeeds and all pass."""
    b = Breaker(interval=0.5, cap=2.0)
    b.failed(fake_time.now())
    probes: list[float] = []
    while len(probes) < 4:
        until = b.blocked_until(fake_time.now())
        if until is not None:
            await asyncio.sleep((until - fake_time.now()).total_seconds())
        assert b.admit(fake_time.now())
        assert not b.admit(fake_time.now()), "one probe at a time"
        probes.append(fake_time.time())
        b.failed(fake_time.now())
    assert probes == [0.5, 1.5, 3.5, 5.5]
    await asyncio.sleep(2.0)
    assert b.admit(fake_time.now()) and b.succeeded() is True
    assert all(b.admit(fake_time.now()) for _ in range(3)), "closed: everything goes"
