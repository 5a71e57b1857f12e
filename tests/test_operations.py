"""Operating safely (issue 5) against the sandbox: shadow mode, pause, takeover, force-resolve,
release, the blast-radius guard, heartbeats, adoption after a lost store, and pre-flight.

The bridge app runs in-process on 127.0.0.1 with an injected clock; its background loop is stopped
so each test drives reconcile passes itself and time moves only when the test says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.engine.reconciler import Reconciler
from bridge.sandbox.app import SANDBOX_KEY
from bridge.settings import SettingsError
from bridge.web.resources import CHANGED, RECONCILER, SETTINGS
from tests.conftest import (
    ADMIN,
    COMPONENTS,
    PAGE_ID,
    Bridge,
    FakeTime,
    SandboxServer,
    Server,
    ServerFactory,
    fire,
    page_incidents,
    reconcile,
)


def _reconciler(server: Server) -> Reconciler:
    return server.app[RECONCILER]


async def admin(server: Server, method: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        async with s.request(method, server.url + path) as r:
            return r.status, await r.json()


async def human(sb: SandboxServer, path: str, body: dict[str, Any], method: str = "POST") -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {sb.writer_token}"}) as s:
        async with s.request(method, sb.url + path, json=body) as r:
            assert r.status < 300, await r.text()


async def test_shadow_mode_writes_nothing_and_explains(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge(mode="shadow")
    await fire(server, "api")
    await reconcile(server)
    assert page_incidents(sandbox) == []
    writes = [r for r in sandbox.app[SANDBOX_KEY].requests if r["method"] != "GET"]
    # only the pre-flight probe, which names no incident and so changes nothing
    assert [(r["path"], r["status"]) for r in writes] == [("/v2/status_page_incident_updates", 404)]
    status, state = await admin(server, "GET", "/api/v1/state")
    assert status == 200
    (group,) = state["groups"]
    assert [a["type"] for a in group["actions"]] == ["CreateIncident"]
    assert group["desired"]["reasons"][COMPONENTS["API"]]["rule"] == "svc"


async def test_pause_and_resume(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    assert (await admin(server, "POST", "/api/v1/pause"))[0] == 200
    await fire(server, "api")
    report = await reconcile(server)
    assert page_incidents(sandbox) == []
    assert report.groups['svc{service="api"}'].plan.held.startswith("paused")
    assert (await admin(server, "GET", "/api/v1/state"))[1]["paused"] is True
    assert (await admin(server, "POST", "/api/v1/resume"))[0] == 200
    await reconcile(server)
    assert len(page_incidents(sandbox)) == 1


async def test_human_resolve_is_respected_then_new_episode(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    await fire(server, "api")
    await reconcile(server)
    (inc,) = page_incidents(sandbox)
    await human(
        sandbox,
        "/v2/status_page_incident_updates",
        {
            "status_page_incident_id": inc.id,
            "message": "Fixed by hand",
            "notify_subscribers": False,
            "incident_status": "resolved",
        },
    )
    _reconciler(server)._next_drift = None  # noqa: SLF001 (read back on this pass)
    await reconcile(server)
    state = (await admin(server, "GET", "/api/v1/state"))[1]
    assert state["taken_over"] == ['svc{service="api"}']
    await reconcile(server)
    assert len(page_incidents(sandbox)) == 1, "the bridge does not fight the human while alerts fire"
    await fire(server, "api", status="resolved")
    await reconcile(server)  # alerts cleared: the episode ends
    async with aiohttp.ClientSession() as s:  # fire anew: a new instance of the series
        body = {
            "version": "4",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "Down", "service": "api"},
                    "startsAt": "2026-11-23T11:45:00Z",
                }
            ],
        }
        await s.post(server.url + "/webhooks/alertmanager", json=body)
    await reconcile(server)
    assert len(page_incidents(sandbox)) == 2
    assert page_incidents(sandbox)[1].status == "investigating"


async def test_human_update_and_left_open_report(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    await fire(server, "api")
    await reconcile(server)
    (inc,) = page_incidents(sandbox)
    await human(
        sandbox,
        "/v2/status_page_incident_updates",
        {
            "status_page_incident_id": inc.id,
            "message": "We found it",
            "notify_subscribers": False,
            "incident_status": "identified",
        },
    )
    _reconciler(server)._next_drift = None  # noqa: SLF001
    await reconcile(server)
    await fire(server, "api", status="resolved")
    await reconcile(server)
    state = (await admin(server, "GET", "/api/v1/state"))[1]
    assert state["left_open"] == {'svc{service="api"}': inc.id}
    async with aiohttp.ClientSession() as s:
        text = await (await s.get(server.url + "/metrics")).text()
    assert "statusbridge_taken_over_left_open 1.0" in text
    assert inc.status == "identified", "still the human's"
    status, _ = await admin(server, "POST", "/api/v1/groups/" + 'svc{service="api"}' + "/release")
    assert status == 200
    assert (await admin(server, "GET", "/api/v1/state"))[1]["left_open"] == {}


async def test_force_resolve_then_release(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    await fire(server, "api")
    await reconcile(server)
    key = 'svc{service="api"}'
    assert (await admin(server, "POST", f"/api/v1/groups/{key}/resolve"))[0] == 200
    await reconcile(server)
    (inc,) = page_incidents(sandbox)
    assert inc.status == "resolved"
    await reconcile(server)
    assert len(page_incidents(sandbox)) == 1, "not reopened while the alert still fires"
    assert (await admin(server, "POST", f"/api/v1/groups/{key}/resolve"))[0] == 409
    assert (await admin(server, "POST", "/api/v1/groups/nope/resolve"))[0] == 404
    assert (await admin(server, "POST", f"/api/v1/groups/{key}/release"))[0] == 200
    await reconcile(server)
    assert len(page_incidents(sandbox)) == 2, "released: the still-firing alert opens a new episode"


async def test_blast_radius_guard_holds_and_releases(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge(max_new_incidents=2, guard_release_after="10m")
    for svc in ("a", "b", "c", "d"):
        await fire(server, svc)
    report = await reconcile(server)
    assert page_incidents(sandbox) == []
    assert len(report.guard) == 4
    state = (await admin(server, "GET", "/api/v1/state"))[1]
    assert len(state["guard"]) == 4
    assert (await admin(server, "POST", "/api/v1/guard/release"))[0] == 200
    await reconcile(server)
    assert len(page_incidents(sandbox)) == 4


async def test_blast_radius_guard_lets_a_persistent_condition_through(
    bridge: Bridge, sandbox: SandboxServer
) -> None:
    server = await bridge(max_new_incidents=2, guard_release_after="10m")
    for svc in ("a", "b", "c"):
        await fire(server, svc)
    await reconcile(server)
    assert page_incidents(sandbox) == []
    server.clock.advance(600)
    await reconcile(server)
    assert len(page_incidents(sandbox)) == 3


async def test_mass_resolve_while_a_heartbeat_is_missing_is_held(
    bridge: Bridge, sandbox: SandboxServer
) -> None:
    """The rules have a Watchdog heartbeat that never arrived: explicit resolves prove nothing
    (a Prometheus that lost its targets resolves everything explicitly)."""
    server = await bridge(max_new_incidents=10)
    for svc in ("a", "b", "c"):
        await fire(server, svc)
    await reconcile(server)
    assert len(page_incidents(sandbox)) == 3
    server.clock.advance(60)
    for svc in ("a", "b", "c"):
        await fire(server, svc, status="resolved")
    report = await reconcile(server)
    assert report.blind == ["watchdog"]
    assert len(report.guard) == 3
    assert all("heartbeat is missing" in why for why in report.guard.values())
    assert all(i.status == "investigating" for i in page_incidents(sandbox))


async def test_explicit_resolves_with_the_heartbeat_present_are_published(
    bridge: Bridge, sandbox: SandboxServer
) -> None:
    server = await bridge(max_new_incidents=10)
    await fire(server, "none", name="Watchdog")
    for svc in ("a", "b", "c"):
        await fire(server, svc)
    await reconcile(server)
    server.clock.advance(60)
    await fire(server, "none", name="Watchdog")
    for svc in ("a", "b", "c"):
        await fire(server, svc, status="resolved")
    report = await reconcile(server)
    assert report.blind == []
    assert report.guard == {}
    assert all(i.status == "monitoring" for i in page_incidents(sandbox))


async def test_alerts_that_vanish_at_once_are_held(bridge: Bridge, sandbox: SandboxServer) -> None:
    """No resolve came: the alerts stopped being received and expired (TTL)."""
    server = await bridge(max_new_incidents=10, alert_ttl="10m")
    await fire(server, "none", name="Watchdog")
    for svc in ("a", "b", "c"):
        await fire(server, svc)
    await reconcile(server)
    server.clock.advance(11 * 60)
    await fire(server, "none", name="Watchdog")
    report = await reconcile(server)
    assert report.blind == []
    assert len(report.guard) == 3
    assert all("no resolve from their source" in why for why in report.guard.values())
    assert all(i.status == "investigating" for i in page_incidents(sandbox))


async def test_heartbeat_goes_missing(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    await fire(server, "none", name="Watchdog")
    report = await reconcile(server)
    assert report.blind == []
    assert page_incidents(sandbox) == [], "a heartbeat publishes nothing"
    server.clock.advance(600)
    report = await reconcile(server)
    assert report.blind == ["watchdog"]
    on_pass = _reconciler(server)._on_pass  # noqa: SLF001 (the loop's hook)
    assert on_pass is not None
    on_pass(report)
    async with aiohttp.ClientSession() as s:
        ready = await (await s.get(server.url + "/readyz")).json()
        text = await (await s.get(server.url + "/metrics")).text()
    assert "blind" in ready["warnings"]["heartbeat"]
    assert "statusbridge_blind 1.0" in text


async def test_adoption_after_losing_the_store(bridge: Bridge, sandbox: SandboxServer) -> None:
    first = await bridge()
    await fire(first, "api")
    await reconcile(first)
    (inc,) = page_incidents(sandbox)
    second = await bridge(
        store_url=f"sqlite:///{Path(str(first.app[SETTINGS].store_url)[10:]).parent / 'fresh.db'}"
    )
    await fire(second, "api")
    await reconcile(second)
    assert len(page_incidents(sandbox)) == 1, "adopted, not duplicated"
    groups = await second.store.load_groups()
    assert groups['svc{service="api"}'].incident_id == inc.id


async def test_preflight_refuses_a_read_only_key(bridge: Bridge, sandbox: SandboxServer) -> None:
    with pytest.raises(SettingsError, match="publish"):
        await bridge(incidentio_api_key=sandbox.reader_token)
    with pytest.raises(SettingsError, match="does not work"):
        await bridge(incidentio_api_key="wrong-key")
    sandbox.allow_invalid_requests = True


async def test_preflight_only_warns_in_shadow_mode(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge(incidentio_api_key=sandbox.reader_token, mode="shadow")
    async with aiohttp.ClientSession() as s:
        ready = await (await s.get(server.url + "/readyz")).json()
    assert "publish" in ready["warnings"]["preflight"]
    sandbox.allow_invalid_requests = True


async def test_rules_naming_unknown_components_fail_preflight(
    server_factory: ServerFactory, sandbox: SandboxServer, tmp_path: Path
) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text('status_page: "Acme Status"\nrules:\n  - {name: r, components: [Nonexistent]}\n')
    with pytest.raises(SettingsError, match="Nonexistent"):
        await server_factory(
            rules_path=str(rules), incidentio_api_key=sandbox.writer_token, incidentio_base_url=sandbox.url
        )
    assert PAGE_ID


async def test_metrics_cover_operations(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    await fire(server, "api")
    await reconcile(server)
    (inc,) = page_incidents(sandbox)
    await human(
        sandbox,
        "/v2/status_page_incident_updates",
        {"status_page_incident_id": inc.id, "message": "mine", "notify_subscribers": False},
    )
    _reconciler(server)._next_drift = None  # noqa: SLF001
    await reconcile(server)
    async with aiohttp.ClientSession() as s:
        text = await (await s.get(server.url + "/metrics")).text()
    assert f'statusbridge_component_impact{{component="{COMPONENTS["API"]}"}} 3.0' in text
    assert "statusbridge_drift_corrections_total 1.0" in text
    assert "statusbridge_reconcile_lag_seconds" in text
    assert 'statusbridge_api_requests_total{operation="CreateStatusPageIncident",outcome="201"} 1.0' in text


async def test_provider_outage_one_probe_at_a_time_then_everything_at_once(
    fake_time: FakeTime, bridge: Bridge, sandbox: SandboxServer
) -> None:
    # The client's in-call retries of the 503s sleep on the loop: on the fake time, they pass at once.
    server = await bridge(max_new_incidents=20)
    sb = sandbox.app[SANDBOX_KEY]
    await fire(server, "api")
    await reconcile(server)
    async with aiohttp.ClientSession() as s:
        await s.post(
            sandbox.url + "/_sandbox/faults", json={"path_prefix": "/v2/", "count": 10**6, "status": 503}
        )
    services = ["web", "db", "pay", "search"]
    for service in services:  # four new groups during the outage
        await fire(server, service)

    def calls() -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in sb.requests]

    before = len(calls())
    report = await reconcile(server)  # the outage is discovered: the breaker opens
    assert len(calls()) > before, report
    before = len(calls())
    await reconcile(server)
    await reconcile(server)
    assert len(calls()) == before, "no request while the breaker is open and no probe is due"
    server.clock.advance(10)
    await reconcile(server)
    probe = calls()[before:]
    assert probe and len(set(probe)) == 1, f"exactly one call probes the provider: {probe}"
    async with aiohttp.ClientSession() as s:
        await s.delete(sandbox.url + "/_sandbox/faults")
    server.clock.advance(10)
    changed = server.app[CHANGED]
    changed.clear()
    await reconcile(server)  # the probe succeeds
    assert changed.is_set(), "the recovery asks for a pass at once"
    for _ in range(2):
        await reconcile(server)
    names = sorted(i.name for i in page_incidents(sandbox))
    assert names == sorted(f"{s} is down" for s in ["api", *services]), "each group exactly once"


async def test_a_read_back_is_followed_by_a_pass_at_once_but_not_while_paused(
    bridge: Bridge, sandbox: SandboxServer
) -> None:
    server = await bridge()
    await fire(server, "api")
    await reconcile(server)
    async with aiohttp.ClientSession() as s:
        spec = {"path_prefix": "/v2/status_page_incident_updates", "count": 1, "status": 503}
        await s.post(sandbox.url + "/_sandbox/faults", json=spec)
    await fire(server, "api", status="resolved")
    await reconcile(server)  # the update's outcome is unknown: the next plan is a read-back
    server.clock.advance(60)
    status, _ = await admin(server, "POST", "/api/v1/pause")
    assert status == 200
    held = await reconcile(server)
    assert held.wake_at is None or held.wake_at > server.clock.now, "no busy loop while paused"
    status, _ = await admin(server, "POST", "/api/v1/resume")
    report = await reconcile(server)
    (group,) = report.groups.values()
    assert [type(a).__name__ for a in group.plan.actions] == ["ReadBack"]
    assert report.wake_at == server.clock.now, "the group is planned again right after its read-back"
    await reconcile(server)
    assert page_incidents(sandbox)[0].status == "monitoring"
