"""A provider-wide circuit breaker: one probe at a time while the status page API is down.

Per-group back-off alone handles one broken group, but in a provider outage every group fails at
once: each would back off on its own (growing to minutes, so the page lags long after recovery)
and each would keep probing (so an outage with many groups is a flood). The breaker turns that into
the behaviour an SRE expects of a client: after a failure that says "the provider is unavailable"
(5xx, 429, timeout, connection error, unknown outcome) calls fail fast without a request; every
``interval`` (doubling to ``cap``; after a 429, when its ``Retry-After`` says) exactly one action goes through
as the probe; the probe's success closes the breaker and the owner re-plans at once, so the page
converges within about ``cap`` of the provider's recovery.

Pure state with ``now`` injected; the executor owns one and asks it before every action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge import pacing


@dataclass
class Breaker:
    """The provider-wide circuit breaker: while open, one probe at a time, ``interval`` seconds apart and
    doubling per failure up to ``cap`` (after a 429: its Retry-After, at least ``interval``).
    """

    interval: float = pacing.BREAKER_INTERVAL
    cap: float = pacing.BREAKER_CAP
    probe_at: datetime | None = None
    """``None``: closed. Otherwise open, and the next probe may go at this instant."""
    probing: bool = False
    failures: int = 0

    @property
    def open(self) -> bool:
        """Whether the provider is considered unavailable (a probe is due or in flight)."""
        return self.probe_at is not None

    def blocked_until(self, now: datetime) -> datetime | None:
        """When an action may next be tried, if not now."""
        if self.probe_at is None:
            return None
        if self.probing:  # the probe in flight decides; look again shortly
            return now + timedelta(seconds=self.interval)
        return self.probe_at if self.probe_at > now else None

    def admit(self, now: datetime) -> bool:
        """May an action go now? When open, the first one admitted after ``probe_at`` is the probe."""
        if self.probe_at is None:
            return True
        if self.probing or now < self.probe_at:
            return False
        self.probing = True
        return True

    def release(self) -> None:
        """The probe ended without reaching the provider (e.g. a store error): let another go."""
        self.probing = False

    def failed(self, now: datetime, retry_after: float | None = None) -> datetime:
        """The provider is unavailable: open (again); returns when the next probe may go."""
        self.failures += 1
        self.probing = False
        if retry_after is not None:
            # A 429 says when: no sooner (a flood), and no later (the page would lag for nothing).
            delay = max(self.interval, retry_after)
        else:
            delay = min(self.cap, self.interval * 2 ** (self.failures - 1))
        self.probe_at = now + timedelta(seconds=delay)
        return self.probe_at

    def succeeded(self) -> bool:
        """The provider answered; returns whether this closed an open breaker (a recovery)."""
        recovered = self.probe_at is not None
        self.probe_at = None
        self.probing = False
        self.failures = 0
        return recovered
