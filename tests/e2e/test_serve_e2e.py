"""End to end: a real Alertmanager sends to ``statusbridge serve``, which drives the sandbox.

Also the two failure drills of the reconciler: SIGKILL in the middle of publishing (then restart)
and a provider outage (500s, then 429s). The sandbox runs in the test process so every exchange is
validated against the spec; Alertmanager and the bridge are real processes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.sandbox.app import SANDBOX_KEY
from tests.conftest import SandboxServer
from tests.e2e.harness import BEARER, Alertmanager, Bridge, component, fault, free_port, incidents, until

pytestmark = pytest.mark.e2e


@pytest.fixture
async def bridge(tmp_path: Path, sandbox: SandboxServer) -> AsyncIterator[Bridge]:
    b = Bridge(tmp_path, sandbox)
    await b.start()
    yield b
    b.stop()


def am_alert(
    name: str, *, severity: str, instance: str, starts: datetime, ends: datetime | None = None
) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {"alertname": name, "severity": severity, "instance": instance},
        "annotations": {"summary": f"{name} on {instance}"},
        "startsAt": starts.isoformat(),
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    return alert


async def test_real_alertmanager_drives_the_page(
    tmp_path: Path, sandbox: SandboxServer, bridge: Bridge
) -> None:
    am = Alertmanager(tmp_path, bridge.url + "/webhooks/alertmanager", bearer=BEARER, group_by=["alertname"])
    await am.start()
    logs = lambda: bridge.process.log()[-4000:] if bridge.process else ""  # noqa: E731
    try:
        now = datetime.now(UTC)
        far = now + timedelta(hours=1)
        # 1. fire: one warning alert opens an incident with API degraded
        await am.post([am_alert("APIDown", severity="warning", instance="a", starts=now, ends=far)])
        await until("incident opened", lambda: len(incidents(sandbox)) == 1, logs=logs)
        await until("API degraded", lambda: component(sandbox, "API") == "degraded_performance", logs=logs)
        assert incidents(sandbox)[0].status == "investigating"
        assert incidents(sandbox)[0].name == "API problems"
        # 2. a second, critical alert in the same group: the same incident goes to full outage
        await am.post([am_alert("APIDown", severity="critical", instance="b", starts=now, ends=far)])
        await until("API full outage", lambda: component(sandbox, "API") == "full_outage", logs=logs)
        # 3. partial resolve: the critical one resolves, API back to degraded
        await am.post(
            [am_alert("APIDown", severity="critical", instance="b", starts=now, ends=datetime.now(UTC))]
        )
        await until(
            "API degraded again", lambda: component(sandbox, "API") == "degraded_performance", logs=logs
        )
        # 4. full resolve: monitoring, then resolved after resolve_after
        await am.post(
            [am_alert("APIDown", severity="warning", instance="a", starts=now, ends=datetime.now(UTC))]
        )
        await until("resolved", lambda: incidents(sandbox)[0].status == "resolved", logs=logs)
        inc = incidents(sandbox)[0]
        assert len(incidents(sandbox)) == 1, "exactly one incident for the group"
        assert [u.status for u in inc.updates] == [
            "investigating",
            "investigating",
            "investigating",
            "monitoring",
            "resolved",
        ]
        assert component(sandbox, "API") == "operational"
        # The bridge records a write once the page has answered it: the page may show it first.
        deadline = time.monotonic() + 10
        while True:
            state = await bridge.state()
            (group,) = state["groups"]
            if group["published"]["incident_status"] == "resolved" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert group["published"]["incident_status"] == "resolved"
    finally:
        am.stop()


async def test_sigkill_mid_publish_never_duplicates(
    tmp_path: Path, sandbox: SandboxServer, bridge: Bridge
) -> None:
    sb = sandbox.app[SANDBOX_KEY]
    await fault(sandbox, method="POST", path_prefix="/v2/status_page_incidents", count=1, latency=1.0)
    now = datetime.now(UTC)
    await bridge.post(
        [
            {
                "status": "firing",
                "labels": {"alertname": "APIDown", "severity": "critical"},
                "startsAt": now.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
            }
        ]
    )
    await until("create in flight", lambda: not sb.faults)
    bridge.kill()
    await until("slow create applied", lambda: len(incidents(sandbox)) == 1)
    await bridge.start()
    await bridge.post(
        [
            {
                "status": "firing",
                "labels": {"alertname": "FrontendErrors"},
                "startsAt": now.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
            }
        ]
    )
    await until(
        "second group opened",
        lambda: len(incidents(sandbox)) == 2,
        logs=lambda: bridge.process.log() if bridge.process else "",
    )
    state = await bridge.state()
    api = next(g for g in state["groups"] if g["key"] == "api")
    assert api["published"]["incident_id"] == incidents(sandbox)[0].id
    assert component(sandbox, "API") == "full_outage"
    creates = [r for r in sb.requests if r["method"] == "POST" and r["path"] == "/v2/status_page_incidents"]
    keys = [r["body"]["idempotency_key"] for r in creates]
    assert len(set(keys)) == 2, "the replay after the crash reused the episode's key"


async def test_outage_then_429s_converges(tmp_path: Path, sandbox: SandboxServer, bridge: Bridge) -> None:
    await fault(sandbox, path_prefix="/v2/", count=6, status=500)
    await fault(sandbox, path_prefix="/v2/", count=3, status=429, retry_after=1)
    now = datetime.now(UTC)
    await bridge.post(
        [
            {
                "status": "firing",
                "labels": {"alertname": "APIDown", "severity": "warning"},
                "startsAt": now.isoformat(),
            }
        ]
    )
    await bridge.post(
        [{"status": "firing", "labels": {"alertname": "FrontendErrors"}, "startsAt": now.isoformat()}]
    )
    await until(
        "both incidents open",
        lambda: len(incidents(sandbox)) == 2,
        timeout=60,
        logs=lambda: bridge.process.log()[-3000:] if bridge.process else "",
    )
    await until(
        "components shown",
        lambda: (
            component(sandbox, "API") == "degraded_performance"
            and component(sandbox, "Web/Dashboard") == "partial_outage"
        ),
    )
    statuses = [r["status"] for r in sandbox.app[SANDBOX_KEY].requests]
    assert 500 in statuses
    assert 429 in statuses


async def test_alertmanager_pull_heals_lost_webhooks_and_silences(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    # Alertmanager's webhooks go nowhere (every notification is lost); the bridge pulls instead.
    am = Alertmanager(tmp_path, f"http://127.0.0.1:{free_port()}/lost", group_by=["alertname"])
    await am.start()
    bridge = Bridge(
        tmp_path, sandbox, STATUSBRIDGE_ALERTMANAGER_URL=am.url, STATUSBRIDGE_RECONCILE_INTERVAL="300ms"
    )
    await bridge.start()
    logs = lambda: bridge.process.log()[-3000:] if bridge.process else ""  # noqa: E731
    try:
        now = datetime.now(UTC)
        await am.post(
            [
                am_alert(
                    "APIDown", severity="critical", instance="a", starts=now, ends=now + timedelta(hours=1)
                )
            ]
        )
        await until("incident opened from the pull", lambda: len(incidents(sandbox)) == 1, logs=logs)
        await until("API full outage", lambda: component(sandbox, "API") == "full_outage", logs=logs)
        # a silence makes the alert count as resolved
        silence = {
            "matchers": [{"name": "alertname", "value": "APIDown", "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "test",
            "comment": "maintenance",
        }
        async with aiohttp.ClientSession() as s:
            async with s.post(am.url + "/api/v2/silences", json=silence) as r:
                assert r.status == 200, await r.text()
        await until(
            "resolved after the silence", lambda: incidents(sandbox)[0].status == "resolved", logs=logs
        )
        assert len(incidents(sandbox)) == 1
    finally:
        bridge.stop()
        am.stop()
