"""Maintenance windows published by the reconciler, against the sandbox with an injected clock:
scheduled -> in progress -> complete, reschedule, early complete, cancel before and after start,
restart mid-window, suppression of incidents, and re-assertion of an incident after a completion."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.sandbox.app import SANDBOX_KEY
from bridge.web.resources import SETTINGS
from tests.conftest import (
    ADMIN,
    COMPONENTS,
    PAGE_ID,
    Bridge,
    SandboxServer,
    Server,
    fire,
    page_incidents,
    reconcile,
)

T = "2026-11-23T{}:00+00:00"


def maintenances(sb: SandboxServer) -> list[Any]:
    state = sb.app[SANDBOX_KEY].state
    state.advance_automation()
    return list(state.maintenances.values())


def advance(server: Server, sandbox: SandboxServer, seconds: float) -> None:
    server.clock.advance(seconds)
    sandbox.clock.advance(seconds)


async def call(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        async with s.request(method, server.url + path, json=body) as r:
            return r.status, await r.json()


def window(**over: Any) -> dict[str, Any]:
    return {
        "name": "Database upgrade",
        "status_page": "Acme Status",
        "components": ["Database"],
        "start_at": T.format("13:00"),
        "end_at": T.format("14:00"),
        "message": "We will upgrade the database.",
        "started_message": "The upgrade has started.",
        "completed_message": "The upgrade is done.",
        **over,
    }


async def test_lifecycle_scheduled_in_progress_complete(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    status, created = await call(server, "POST", "/api/v1/maintenances", window())
    assert status == 201, created
    await reconcile(server)
    (m,) = maintenances(sandbox)
    assert m.status == "maintenance_scheduled"
    assert m.components == [COMPONENTS["Database"]]
    assert m.updates[0].message == "We will upgrade the database."
    advance(server, sandbox, 3600)  # 13:00
    report = await reconcile(server)
    assert report.wake_at is not None
    assert m.status == "maintenance_in_progress"
    assert (
        sandbox.app[SANDBOX_KEY].state.component_status(PAGE_ID, COMPONENTS["Database"])
        == "under_maintenance"
    )
    await reconcile(server)
    assert len(m.updates) == 2, "no duplicate transition"
    advance(server, sandbox, 3600)  # 14:00
    await reconcile(server)
    assert m.status == "maintenance_complete"
    assert [u.message for u in m.updates] == [
        "We will upgrade the database.",
        "The upgrade has started.",
        "The upgrade is done.",
    ]
    _, listed = await call(server, "GET", "/api/v1/maintenances")
    (view,) = listed["maintenances"]
    assert view["phase"] == "complete"
    assert next(iter(view["published"].values()))["status"] == "maintenance_complete"


async def test_reschedule_and_notify(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    _, created = await call(server, "POST", "/api/v1/maintenances", window(notify_subscribers=True))
    await reconcile(server)
    status, _ = await call(
        server,
        "PATCH",
        f"/api/v1/maintenances/{created['id']}",
        {"start_at": T.format("15:00"), "end_at": T.format("16:00")},
    )
    assert status == 200
    await reconcile(server)
    (m,) = maintenances(sandbox)
    assert m.start_at.hour == 15
    assert "Rescheduled" in m.updates[-1].message
    puts = [r for r in sandbox.app[SANDBOX_KEY].requests if r["method"] == "PUT"]
    assert len(puts) == 1
    assert (await call(server, "PATCH", f"/api/v1/maintenances/{created['id']}", {"status": "x"}))[0] == 422
    assert (
        await call(server, "PATCH", f"/api/v1/maintenances/{created['id']}", {"end_at": T.format("10:00")})
    )[0] == 422


async def test_early_complete(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    _, created = await call(server, "POST", "/api/v1/maintenances", window())
    assert (await call(server, "POST", f"/api/v1/maintenances/{created['id']}/complete"))[0] == 409
    advance(server, sandbox, 3600 + 600)  # 13:10
    await reconcile(server)
    (m,) = maintenances(sandbox)
    assert m.status == "maintenance_in_progress", "a transition missed while down is published at once"
    assert (await call(server, "POST", f"/api/v1/maintenances/{created['id']}/complete"))[0] == 200
    await reconcile(server)
    assert m.status == "maintenance_complete"


async def test_cancel_before_and_after_start(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    _, before = await call(server, "POST", "/api/v1/maintenances", window(name="Before"))
    _, after = await call(
        server, "POST", "/api/v1/maintenances", window(name="After", start_at=T.format("12:30"))
    )
    await reconcile(server)
    assert len(maintenances(sandbox)) == 2
    advance(server, sandbox, 1800 + 60)  # 12:31: "After" has started
    await reconcile(server)
    assert (await call(server, "DELETE", f"/api/v1/maintenances/{before['id']}"))[1]["cancelled"] is True
    assert (await call(server, "DELETE", f"/api/v1/maintenances/{after['id']}"))[1]["completed"] is True
    await reconcile(server)
    (left,) = maintenances(sandbox)
    assert left.name == "After"
    assert left.status == "maintenance_complete"
    assert (await call(server, "GET", f"/api/v1/maintenances/{before['id']}"))[0] == 404


async def test_restart_mid_window_does_not_repeat(
    bridge: Bridge, sandbox: SandboxServer, tmp_path: Path
) -> None:
    server = await bridge()
    await call(server, "POST", "/api/v1/maintenances", window())
    await reconcile(server)
    advance(server, sandbox, 3600 + 60)
    await reconcile(server)
    (m,) = maintenances(sandbox)
    assert len(m.updates) == 2
    store_url = server.app[SETTINGS].store_url
    again = await bridge(store_url=store_url)
    again.clock.now = server.clock.now
    await reconcile(again)
    await reconcile(again)
    assert len(maintenances(sandbox)) == 1
    assert len(m.updates) == 2


async def test_suppression_and_reassertion(bridge: Bridge, sandbox: SandboxServer, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        """
status_page: "Acme Status"
rules:
  - name: db
    matchers: ['alertname = "DBDown"']
    components: ["Database"]
    status: partial_outage
  - name: api
    matchers: ['alertname = "APIDown"']
    components: ["API"]
    status: full_outage
maintenances:
  - id: weekly-db
    name: Database maintenance
    components: ["Database", "API"]
    start_at: "2026-11-23T12:30:00+00:00"
    end_at: "2026-11-23T13:30:00+00:00"
"""
    )
    server = await bridge(rules_path=str(rules))
    await fire(server, "x", name="APIDown")  # an incident already open when the window starts keeps going
    await reconcile(server)
    assert len(page_incidents(sandbox)) == 1
    advance(server, sandbox, 1800 + 60)  # 12:31, in progress
    await reconcile(server)
    await fire(server, "y", name="DBDown")  # alerts under maintenance open nothing
    report = await reconcile(server)
    assert len(page_incidents(sandbox)) == 1
    assert report.groups["db"].desired.suppressed == (COMPONENTS["Database"],)
    advance(server, sandbox, 3600)  # 13:31: the window completes; the API incident's impact was erased
    await reconcile(server)
    await reconcile(server)
    (api_incident, db_incident) = page_incidents(sandbox)
    state = sandbox.app[SANDBOX_KEY].state
    assert state.component_status(PAGE_ID, COMPONENTS["API"]) == "full_outage", "re-asserted after completion"
    assert db_incident.current == {COMPONENTS["Database"]: "partial_outage"}, (
        "the suppressed alert is published once the window ends"
    )
    assert api_incident.status == "investigating"


async def test_bad_windows_are_422_naming_the_field(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    cases = [
        (window(end_at=T.format("12:00")), "end_at"),
        (window(start_at="2026-11-23T13:00:00"), "start_at"),
        (window(components=["Nope"]), "components"),
        ({**window(), "surprise": 1}, "surprise"),
        ({k: v for k, v in window().items() if k != "name"}, "name"),
    ]
    for body, field in cases:
        status, answer = await call(server, "POST", "/api/v1/maintenances", body)
        assert status == 422, (field, answer)
        assert field in (answer["error"].get("field") or answer["error"]["message"])
    assert maintenances(sandbox) == []
    assert (await call(server, "GET", "/api/v1/maintenances/nope"))[0] == 404


@pytest.mark.parametrize("path", ["/api/v1/maintenances"])
async def test_admin_token_required(bridge: Bridge, path: str) -> None:
    server = await bridge()
    async with aiohttp.ClientSession() as s:
        async with s.post(server.url + path, json=window()) as r:
            assert r.status == 401
    _ = timedelta


async def test_cli_create_list_complete_cancel(
    bridge: Bridge, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from bridge.cli import main

    server = await bridge()
    common = ["maintenance", "--url", server.url, "--token", ADMIN]
    code = await asyncio.to_thread(
        main,
        [
            *common,
            "create",
            "--name",
            "CLI window",
            "--status-page",
            "Acme Status",
            "--component",
            "API",
            "--start",
            T.format("12:30"),
            "--end",
            T.format("13:30"),
        ],
    )
    assert code == 0
    out = capsys.readouterr().out
    created = json.loads(out[out.index("\n{") + 1 :] if not out.startswith("{") else out)
    assert await asyncio.to_thread(main, [*common, "list"]) == 0
    assert "CLI window" in capsys.readouterr().out
    await reconcile(server)
    advance(server, sandbox, 1800 + 60)
    assert await asyncio.to_thread(main, [*common, "complete", created["id"]]) == 0
    await reconcile(server)
    (m,) = maintenances(sandbox)
    assert m.status == "maintenance_complete"
    assert await asyncio.to_thread(main, [*common, "cancel", "nope"]) == 1
    assert "404" in capsys.readouterr().err
    bad = await asyncio.to_thread(
        main,
        [
            *common,
            "create",
            "--name",
            "x",
            "--status-page",
            "Acme Status",
            "--component",
            "API",
            "--start",
            "soon",
            "--end",
            "later",
        ],
    )
    assert bad == 1
    assert "422" in capsys.readouterr().err


async def test_automate_is_delegated_and_shown_on_page(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    await call(server, "POST", "/api/v1/maintenances", window(automate=True))
    await reconcile(server)
    (m,) = maintenances(sandbox)
    assert m.automate is True
    async with aiohttp.ClientSession() as s:
        widget = await (await s.get(f"{sandbox.url}/status/{PAGE_ID}/api/v1/summary")).json()
        page = await (await s.get(f"{sandbox.url}/status/{PAGE_ID}")).text()
    assert [w["name"] for w in widget["scheduled_maintenances"]] == ["Database upgrade"]
    assert "Database upgrade" in page
    advance(server, sandbox, 3600 + 60)
    await reconcile(server)
    (m,) = maintenances(sandbox)
    assert m.status == "maintenance_in_progress"
    assert len(m.updates) == 2, "the provider moved it; the bridge only watched"
    assert not [
        r for r in sandbox.app[SANDBOX_KEY].requests if r["path"] == "/v2/status_page_maintenance_updates"
    ]
