"""A client-side token bucket that keeps the bridge under incident.io's limit instead of finding it.

The provider's bucket (1200 per key, refilling 20/s) may be shared with other keys of the
organisation, so the local bucket also listens to the answers: a low ``X-RateLimit-Remaining``
caps the local tokens, and a 429's ``Retry-After`` pauses every caller until it has passed.
Clock and sleep are injected, so the arithmetic is tested without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping


class TokenBucket:
    """A token bucket of ``capacity`` tokens refilling at ``refill_per_second``, times from ``clock`` in
    seconds; raises ValueError for a capacity under 1 or a refill rate that is not positive.
    """

    def __init__(
        self,
        capacity: float = 1200,
        refill_per_second: float = 20.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        low_water: int = 20,
    ) -> None:
        if capacity < 1 or refill_per_second <= 0:
            raise ValueError("capacity must be >= 1 and refill_per_second > 0")
        self.capacity = float(capacity)
        self.refill = float(refill_per_second)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(capacity)
        self._at = clock()
        self._paused_until = 0.0
        self._low_water = low_water
        self._lock = asyncio.Lock()

    def _fill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._at) * self.refill)
        self._at = now

    @property
    def tokens(self) -> float:
        """Tokens available now, refilled up to this instant (fractional; at most ``capacity``)."""
        self._fill()
        return self._tokens

    def delay(self) -> float:
        """Seconds until a token may be taken (0 when one is available now)."""
        self._fill()
        wait = max(0.0, self._paused_until - self._clock())
        if self._tokens < 1:
            wait = max(wait, (1 - self._tokens) / self.refill)
        return wait

    async def acquire(self) -> float:
        """Take one token, waiting for it; returns the seconds waited. Callers queue fairly."""
        waited = 0.0
        async with self._lock:
            while (wait := self.delay()) > 0:
                await self._sleep(wait)
                waited += wait
            self._tokens -= 1
        return waited

    def pause(self, seconds: float) -> None:
        """Take no tokens for ``seconds`` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))
        self._tokens = min(self._tokens, 0.0)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Follow the provider's view: when few requests remain, hold at most that many tokens."""
        raw = headers.get("X-RateLimit-Remaining")
        if raw is None:
            return
        try:
            remaining = float(raw.split(",")[0].strip())
        except ValueError:
            return
        if remaining < self._low_water:
            self._fill()
            self._tokens = min(self._tokens, max(0.0, remaining - 1))
