"""Pure parts of the client: the token bucket on the one fake time (``fake_time``), and lenient models."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridge.incidentio.ratelimit import TokenBucket
from tests.conftest import FakeTime


def bucket(fake_time: FakeTime, **kw: Any) -> TokenBucket:
    """A bucket on the one fake time: its clock and its sleep are the virtual loop's."""
    return TokenBucket(clock=fake_time.time, sleep=fake_time.sleep, **kw)


async def test_burst_then_refill_rate(fake_time: FakeTime) -> None:
    b = bucket(fake_time, capacity=3, refill_per_second=2)
    for _ in range(3):
        assert await b.acquire() == 0
    assert await b.acquire() == 0.5
    assert fake_time.time() == 0.5, "the wait was the refill of one token, no more"
    assert await b.acquire() == 0.5
    assert fake_time.time() == 1.0


async def test_tokens_refill_while_nobody_asks(fake_time: FakeTime) -> None:
    b = bucket(fake_time, capacity=10, refill_per_second=10)
    for _ in range(10):
        await b.acquire()
    assert b.tokens == 0
    await asyncio.sleep(0.5)
    assert b.tokens == 5
    await asyncio.sleep(60)
    assert b.tokens == 10, "never more than the capacity"


async def test_pause_from_retry_after(fake_time: FakeTime) -> None:
    b = bucket(fake_time, capacity=10, refill_per_second=10)
    b.pause(4)
    assert b.delay() == 4
    assert await b.acquire() == 4
    assert fake_time.time() == 4


async def test_queued_callers_are_served_in_turn_at_the_refill_rate(fake_time: FakeTime) -> None:
    b = bucket(fake_time, capacity=2, refill_per_second=1)
    served: list[tuple[int, float]] = []

    async def caller(n: int) -> None:
        await b.acquire()
        served.append((n, fake_time.time()))

    await asyncio.gather(*(caller(n) for n in range(5)))
    assert served == [(0, 0.0), (1, 0.0), (2, 1.0), (3, 2.0), (4, 3.0)]


async def test_low_remaining_caps_tokens(fake_time: FakeTime) -> None:
    b = bucket(fake_time, capacity=1200, refill_per_second=20, low_water=20)
    b.observe({"X-RateLimit-Remaining": "500"})
    assert b.tokens == 1200
    b.observe({"X-RateLimit-Remaining": "3"})
    assert b.tokens == 2
    b.observe({"X-RateLimit-Remaining": "garbage"})
    assert b.tokens == 2
    assert await b.acquire() == 0 and await b.acquire() == 0
    assert await b.acquire() == 0.05, "then the refill paces it"


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(capacity=0)


def test_models_tolerate_unknown_fields_and_enum_values() -> None:
    from bridge.incidentio.models import Incident, IncidentStatus, Maintenance

    incident = Incident.model_validate(
        {
            "id": "i",
            "status_page_id": "p",
            "name": "n",
            "published_at": "2026-11-23T12:00:00Z",
            "incident_status": "escalated",
            "brand_new_field": {"x": 1},
            "updates": [
                {
                    "id": "u",
                    "status_page_incident_id": "i",
                    "published_at": "2026-11-23T12:00:00Z",
                    "message": "m",
                    "incident_status": "investigating",
                    "component_statuses": [{"component_id": "c", "component_status": "melting"}],
                }
            ],
            "component_impacts": [],
        }
    )
    assert incident.incident_status == "escalated"
    assert incident.updates[0].incident_status is IncidentStatus.INVESTIGATING
    assert incident.current_components() == {"c": "melting"}
    maintenance = Maintenance.model_validate(
        {
            "id": "m",
            "status_page_id": "p",
            "name": "n",
            "published_at": "2026-11-23T12:00:00Z",
            "maintenance_status": "maintenance_paused",
        }
    )
    assert maintenance.maintenance_status == "maintenance_paused"
