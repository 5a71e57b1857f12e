"""The client against the sandbox over real HTTP; every request it sends is checked against the spec."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from bridge.incidentio.client import RetryPolicy, StatusPageClient, parse_retry_after
from bridge.incidentio.errors import (
    AuthenticationFailed,
    Forbidden,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    RequestTimeout,
    RetryableError,
    ServerError,
    ValidationFailed,
)
from bridge.incidentio.models import IncidentStatus, MaintenanceStatus
from bridge.incidentio.ratelimit import TokenBucket
from tests.conftest import FakeTime, SandboxFactory, SandboxServer


class Sleeps:
    """Injected sleep: records what the client asked to wait, waits nothing; ``now`` is the time
    those sleeps add up to (one fake time for the sleep and the clock)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    def now(self) -> float:
        return sum(self.calls)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_client(
    sb: SandboxServer, session: aiohttp.ClientSession, sleeps: Sleeps | None = None, **kw: Any
) -> StatusPageClient:
    sleeps = sleeps or Sleeps()
    # The bucket's clock is the same fake time as its sleep: with a real clock, a paused bucket
    # would spin the no-op sleep until real time caught up.
    kw.setdefault("rate_limiter", TokenBucket(sleep=sleeps, clock=sleeps.now))
    return StatusPageClient(session, kw.pop("key", sb.writer_token), base_url=sb.url, sleep=sleeps, **kw)


async def fault(sb: SandboxServer, session: aiohttp.ClientSession, **spec: Any) -> None:
    async with session.post(sb.url + "/_sandbox/faults", json=spec) as resp:
        assert resp.status == 200


async def requests_log(sb: SandboxServer, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with session.get(sb.url + "/_sandbox/requests") as resp:
        return list(await resp.json())


async def create(client: StatusPageClient, sb: SandboxServer, key: str = "k", **kw: Any) -> Any:
    return await client.create_incident(
        status_page_id=sb.page_id,
        name=kw.pop("name", "API errors"),
        message="Investigating",
        idempotency_key=key,
        component_statuses=kw.pop("component_statuses", {sb.components["API"]: "partial_outage"}),
        **kw,
    )


async def test_pages_and_structure_lookup(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    client = make_client(sandbox, session)
    pages = await client.list_status_pages()
    assert [p.name for p in pages] == ["Acme Status", "Big Status"]
    assert (await client.show_status_page(sandbox.page_id)).name == "Acme Status"
    structure = await client.show_structure(sandbox.page_id)
    assert {c.path for c in structure.components} == {
        "API",
        "Web/Dashboard",
        "Web/Website",
        "Database",
        "EU/Payments/Payments API",
    }
    assert structure.lookup("Dashboard") is not None
    assert structure.lookup("Web/Dashboard").id == sandbox.components["Web/Dashboard"]  # type: ignore[union-attr]
    assert structure.lookup("Payments/Payments API").id == sandbox.components["EU/Payments/Payments API"]  # type: ignore[union-attr]
    assert structure.lookup(sandbox.components["API"]).name == "API"  # type: ignore[union-attr]
    assert structure.lookup("Nope") is None


async def test_ambiguous_names_are_not_guessed(
    sandbox_factory: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    seed = {
        "api_keys": [{"token": "w", "scopes": ["status_pages.publish_updates"]}],
        "status_pages": [
            {
                "id": "P",
                "name": "P",
                "structure": [
                    {"group": {"name": "EU", "components": [{"id": "a", "name": "API"}]}},
                    {"group": {"name": "US", "components": [{"id": "b", "name": "API"}]}},
                ],
            }
        ],
    }
    sb = await sandbox_factory(seed_data=seed)
    structure = await make_client(sb, session, key="w").show_structure("P")
    assert structure.ambiguous_names == {"API"}
    assert structure.lookup("API") is None
    assert structure.lookup("US/API").id == "b"  # type: ignore[union-attr]


async def test_incident_lifecycle(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    client = make_client(sandbox, session)
    inc = await create(client, sandbox)
    assert inc.incident_status is IncidentStatus.INVESTIGATING
    assert inc.current_components() == {sandbox.components["API"]: "partial_outage"}
    upd = await client.create_incident_update(
        incident_id=inc.id,
        message="Worse",
        incident_status=IncidentStatus.IDENTIFIED,
        component_statuses={sandbox.components["API"]: "full_outage"},
    )
    assert upd.incident_status is IncidentStatus.IDENTIFIED
    renamed = await client.rename_incident(inc.id, "API outage")
    assert renamed.name == "API outage"
    await client.create_incident_update(
        incident_id=inc.id, message="Fixed", incident_status=IncidentStatus.RESOLVED
    )
    shown = await client.show_incident(inc.id)
    assert shown.incident_status is IncidentStatus.RESOLVED
    assert len(shown.updates) == 3
    assert shown.latest_update().message == "Fixed"  # type: ignore[union-attr]
    assert all(i.end_at is not None for i in shown.component_impacts)


async def test_list_incidents_newest_first_and_filtered(
    sandbox: SandboxServer, session: aiohttp.ClientSession
) -> None:
    client = make_client(sandbox, session)
    for i in range(30):
        await create(client, sandbox, key=f"k{i}", name=f"Incident {i}")
    incidents = await client.list_incidents(sandbox.page_id)
    assert len(incidents) == 30
    assert incidents[0].name == "Incident 29"
    filtered = await client.list_incidents(sandbox.page_id, component_id=sandbox.components["Database"])
    assert filtered == []


async def test_pagination_over_several_pages(
    sandbox: SandboxServer, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(sandbox, session)
    for i in range(23):
        await create(client, sandbox, key=f"p{i}", name=f"I{i}")
    original = client._request

    async def small_pages(operation: str, method: str, path: str, **kw: Any) -> Any:
        if kw.get("params") and "page_size" in kw["params"]:
            kw["params"] = {**kw["params"], "page_size": 10}
        return await original(operation, method, path, **kw)

    monkeypatch.setattr(client, "_request", small_pages)
    got = await client.list_incidents(sandbox.page_id)
    assert [i.name for i in got] == [f"I{i}" for i in reversed(range(23))]
    listing = [
        r
        for r in await requests_log(sandbox, session)
        if r["path"] == "/v2/status_page_incidents" and r["method"] == "GET"
    ]
    assert len(listing) == 3
    assert "after" not in listing[0]["query"]
    assert "after" in listing[1]["query"]


async def test_maintenance_methods(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    client = make_client(sandbox, session)
    start = sandbox.clock.now + timedelta(hours=1)
    m = await client.create_maintenance(
        status_page_id=sandbox.page_id,
        name="DB upgrade",
        message="Upgrading",
        idempotency_key="m",
        affected_component_ids=[sandbox.components["Database"]],
        start_at=start,
        end_at=start + timedelta(hours=1),
    )
    assert m.maintenance_status is MaintenanceStatus.SCHEDULED
    assert m.automate_maintenance_status is False
    m2 = await client.update_maintenance(
        m.id, name="DB upgrade v2", start_at=start, end_at=start + timedelta(hours=2)
    )
    assert m2.name == "DB upgrade v2"
    u = await client.create_maintenance_update(
        maintenance_id=m.id, message="Started", maintenance_status=MaintenanceStatus.IN_PROGRESS
    )
    assert u.maintenance_status is MaintenanceStatus.IN_PROGRESS
    assert [x.id for x in await client.list_maintenances(sandbox.page_id)] == [m.id]
    assert (await client.show_maintenance(m.id)).maintenance_status is MaintenanceStatus.IN_PROGRESS
    await client.delete_maintenance(m.id)
    with pytest.raises(NotFound):
        await client.show_maintenance(m.id)


async def test_error_mapping(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    client = make_client(sandbox, session)
    with pytest.raises(NotFound) as nf:
        await client.show_incident("does-not-exist")
    assert nf.value.error is not None
    assert nf.value.error.type == "not_found"
    assert nf.value.request_id
    with pytest.raises(ValidationFailed) as vf:
        await create(client, sandbox, component_statuses={"nope": "full_outage"})
    assert "component_statuses.0.component_id" in str(vf.value)
    with pytest.raises(ValidationFailed, match="notify_subscribers"):
        await client.create_incident(
            status_page_id=sandbox.big_page_id,
            name="x",
            message="x",
            idempotency_key="n",
            notify_subscribers=True,
        )
    with pytest.raises(AuthenticationFailed):
        await make_client(sandbox, session, key="wrong").list_status_pages()
    with pytest.raises(Forbidden):
        await create(make_client(sandbox, session, key=sandbox.reader_token), sandbox)


async def test_retries_5xx_on_reads_and_creates(
    sandbox: SandboxServer, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    client = make_client(
        sandbox, session, sleeps, retry=RetryPolicy(attempts=4, base_seconds=0.5, cap_seconds=4)
    )
    await fault(sandbox, session, method="GET", path_prefix="/v2/status_pages", count=2, status=500)
    assert len(await client.list_status_pages()) == 2
    assert len(sleeps.calls) == 2
    assert all(0 <= s <= 4 for s in sleeps.calls)
    # a create whose first attempt was applied but answered 500: the retry returns the same incident
    await fault(
        sandbox,
        session,
        method="POST",
        path_prefix="/v2/status_page_incidents",
        count=1,
        status=500,
        after_processing=True,
    )
    inc = await create(client, sandbox, key="once")
    assert [i.id for i in await client.list_incidents(sandbox.page_id)] == [inc.id]


async def test_single_attempt_turns_in_call_retries_off(
    sandbox: SandboxServer, session: aiohttp.ClientSession
) -> None:
    """A breaker's probe is one request: inside single_attempt() a 5xx is not retried."""
    sleeps = Sleeps()
    client = make_client(sandbox, session, sleeps, retry=RetryPolicy(attempts=4, base_seconds=0.5))
    await fault(sandbox, session, method="GET", path_prefix="/v2/status_pages", count=2, status=503)
    with client.single_attempt(), pytest.raises(RetryableError):
        await client.list_status_pages()
    assert sleeps.calls == []
    assert len(await client.list_status_pages()) == 2, "outside, the policy retries again"
    assert len(sleeps.calls) == 1


async def test_429_honours_retry_after(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    """A request answered 429 was not processed. One that is safe to repeat (a create carries its
    idempotency key) is re-sent after ``Retry-After``; an update is not: re-sent later, it would
    land on whatever a person posted meanwhile, so the caller gets the error, re-plans and reads the
    incident back first. Either way the next request waits for ``Retry-After``."""
    sleeps = Sleeps()
    client = make_client(sandbox, session, sleeps)
    await fault(
        sandbox,
        session,
        method="POST",
        path_prefix="/v2/status_page_incidents",
        count=1,
        status=429,
        retry_after=7,
    )
    inc = await create(client, sandbox)  # retried
    assert max(sleeps.calls) >= 7
    sleeps.calls.clear()
    await fault(
        sandbox,
        session,
        method="POST",
        path_prefix="/v2/status_page_incident_updates",
        count=1,
        status=429,
        retry_after=7,
    )
    with pytest.raises(RateLimited) as caught:
        await client.create_incident_update(incident_id=inc.id, message="m")
    assert caught.value.retry_after == 7
    log = await requests_log(sandbox, session)
    assert [r["status"] for r in log if r["path"] == "/v2/status_page_incidents"] == [429, 201]
    assert [r["status"] for r in log if r["path"] == "/v2/status_page_incident_updates"] == [429]
    await client.create_incident_update(incident_id=inc.id, message="m")  # the caller's own retry
    assert max(sleeps.calls) >= 7, "the bucket held the next request for Retry-After"


async def test_gives_up_after_bounded_attempts(
    sandbox: SandboxServer, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    client = make_client(sandbox, session, sleeps, retry=RetryPolicy(attempts=3))
    await fault(sandbox, session, method="GET", path_prefix="/v2/status_pages", count=10, status=503)
    with pytest.raises(ServerError):
        await client.list_status_pages()
    assert len(sleeps.calls) == 2
    await fault(
        sandbox, session, method="GET", path_prefix="/v2/status_pages", count=10, status=429, retry_after=1
    )
    await session.delete(sandbox.url + "/_sandbox/faults")


async def test_no_retry_on_422(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    sleeps = Sleeps()
    client = make_client(sandbox, session, sleeps)
    inc = await create(client, sandbox)
    await client.create_incident_update(
        incident_id=inc.id, message="done", incident_status=IncidentStatus.RESOLVED
    )
    with pytest.raises(ValidationFailed):
        await client.create_incident_update(incident_id=inc.id, message="again")
    assert sleeps.calls == []


@pytest.mark.parametrize("applied", [True, False])
async def test_update_outcome_unknown_is_not_retried(
    sandbox: SandboxServer, session: aiohttp.ClientSession, applied: bool
) -> None:
    sleeps = Sleeps()
    client = make_client(sandbox, session, sleeps)
    inc = await create(client, sandbox)
    await fault(
        sandbox,
        session,
        method="POST",
        path_prefix="/v2/status_page_incident_updates",
        count=1,
        status=502,
        after_processing=applied,
    )
    with pytest.raises(OutcomeUnknown) as unknown:
        await client.create_incident_update(incident_id=inc.id, message="maybe")
    assert isinstance(unknown.value.__cause__, ServerError)
    assert sleeps.calls == []
    shown = await client.show_incident(inc.id)
    assert len(shown.updates) == (2 if applied else 1)


async def test_timeouts(fake_time: FakeTime, sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    """The sandbox's latency and the client's timeout are both on the fake time: no real waiting."""
    sleeps = Sleeps()
    client = make_client(sandbox, session, sleeps, timeout=0.2, retry=RetryPolicy(attempts=2))
    inc = await create(client, sandbox)
    await fault(
        sandbox, session, method="GET", path_prefix="/v2/status_page_incidents/", count=2, latency=0.5
    )
    with pytest.raises(RequestTimeout):
        await client.show_incident(inc.id)
    await fault(
        sandbox, session, method="POST", path_prefix="/v2/status_page_incident_updates", count=1, latency=0.5
    )
    with pytest.raises(OutcomeUnknown):
        await client.create_incident_update(incident_id=inc.id, message="slow")


async def test_connection_refused_before_sending_is_retried(session: aiohttp.ClientSession) -> None:
    sleeps = Sleeps()
    client = StatusPageClient(
        session,
        "k",
        base_url="http://127.0.0.1:9",
        sleep=sleeps,
        rate_limiter=TokenBucket(sleep=sleeps, clock=sleeps.now),
        retry=RetryPolicy(attempts=2),
    )
    with pytest.raises(Exception) as exc:
        await client.create_incident_update(incident_id="i", message="m")
    assert type(exc.value).__name__ == "ConnectionFailed"
    assert len(sleeps.calls) == 1


async def test_client_bucket_avoids_429s(
    sandbox_factory: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    sb = await sandbox_factory(rate_limit=True, rate_capacity=5, rate_refill=1.0)
    sleeps = Sleeps()
    # The provider's bucket is what counts; the low X-RateLimit-Remaining caps ours.
    bucket = TokenBucket(capacity=1200, refill_per_second=20, sleep=sleeps, clock=sleeps.now)
    client = make_client(sb, session, sleeps, rate_limiter=bucket)
    for _ in range(4):
        await client.list_status_pages()
    assert bucket.tokens <= 1


async def test_canary_key_never_leaks(
    sandbox: SandboxServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    canary = "canary-5f1d2c3b-never-print-me"
    sandbox.allow_invalid_requests = True
    caplog.set_level(logging.DEBUG)
    client = make_client(sandbox, session, key=canary, retry=RetryPolicy(attempts=2), timeout=0.2)
    texts = [repr(client), str(client.__dict__.get("_key"))]
    await fault(sandbox, session, path_prefix="/v2/status_pages", count=1, status=500)
    await fault(
        sandbox, session, path_prefix="/v2/status_page_structures", count=1, status=429, retry_after=0
    )
    await fault(sandbox, session, path_prefix="/v2/status_page_incidents/x", count=2, latency=0.5)
    for call in (client.list_status_pages(), client.show_structure("p"), client.show_incident("x")):
        try:
            await call
        except Exception as exc:  # noqa: BLE001
            texts += [str(exc), repr(exc), str(getattr(exc, "error", ""))]
    texts.append(caplog.text)
    assert all(canary not in t for t in texts)


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
