"""The token bucket's arithmetic, on a fake clock."""

from __future__ import annotations

import pytest

from bridge.incidentio.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


async def test_burst_then_refill_rate() -> None:
    c = Clock()
    b = TokenBucket(capacity=3, refill_per_second=2, clock=c, sleep=c.sleep)
    for _ in range(3):
        assert await b.acquire() == 0
    assert await b.acquire() == 0.5
    assert c.t == 0.5


async def test_pause_from_retry_after() -> None:
    c = Clock()
    b = TokenBucket(capacity=10, refill_per_second=10, clock=c, sleep=c.sleep)
    b.pause(4)
    await b.acquire()
    assert c.t >= 4


async def test_low_remaining_caps_tokens() -> None:
    c = Clock()
    b = TokenBucket(capacity=1200, refill_per_second=20, clock=c, sleep=c.sleep, low_water=20)
    b.observe({"X-RateLimit-Remaining": "500"})
    assert b.tokens == 1200
    b.observe({"X-RateLimit-Remaining": "3"})
    assert b.tokens == 2
    b.observe({"X-RateLimit-Remaining": "garbage"})
    assert b.tokens == 2


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(capacity=0)
