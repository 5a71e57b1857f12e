"""Pure parts of the client: the token bucket on a fake clock, and lenient models."""

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
