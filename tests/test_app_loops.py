"""The daemon's own waiting loops, driven from outside through ``create_app`` on the one fake time:
the rules watcher, the Alertmanager pull loop and the widget cache. The app runs in-process on the
virtual-time loop (``fake_time``), with ``fake_time.now`` as its clock; HTTP is real, on 127.0.0.1,
and Alertmanager is a fake at the network boundary (its API, served in the test)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from bridge import pacing
from bridge.app import create_app
from bridge.app.lag import sample_lag
from bridge.sandbox.app import SANDBOX_KEY
from bridge.settings import Settings
from bridge.web.widget import CACHE_KEY
from tests.conftest import BRIDGE_RULES, PAGE_ID, FakeTime, SandboxServer, metric

App = Callable[..., Awaitable[tuple[str, web.Application]]]


@pytest.fixture
async def start_app(fake_time: FakeTime, tmp_path: Path) -> AsyncIterator[App]:
    """Start the bridge app on the fake time; returns its URL and the app."""
    runners: list[web.AppRunner] = []

    async def start(**settings: Any) -> tuple[str, web.Application]:
        values: dict[str, Any] = {"store_url": f"sqlite:///{tmp_path / 'bridge.db'}", "webhook_auth": "none"}
        values.update(settings)
        app = create_app(Settings(**values), clock=fake_time.now)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}", app

    yield start
    for runner in runners:
        await runner.cleanup()


async def at(fake_time: FakeTime, t: float) -> None:
    await asyncio.sleep(t - fake_time.time())


async def test_the_rules_watcher_reloads_a_changed_file_at_its_next_look(
    fake_time: FakeTime, start_app: App, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BRIDGE_RULES)
    url, _ = await start_app(rules_path=str(rules), reconcile_interval="1h")
    started = fake_time.time()
    with capture_logs() as logs:
        await at(fake_time, started + pacing.RULES_WATCH * 1.5)
        rules.write_text(BRIDGE_RULES.replace("timeout: 5m", "timeout: 10m"))
        await at(fake_time, started + pacing.RULES_WATCH * 1.9)
        assert not [e for e in logs if e["event"] == "rules reloaded"], "not before the next look"
        await at(fake_time, started + pacing.RULES_WATCH * 2.1)
        assert [e["generation"] for e in logs if e["event"] == "rules reloaded"] == [2]
        # A broken file keeps the rules in force and is counted, at the next look again.
        rules.write_text("rules: [")
        await at(fake_time, started + pacing.RULES_WATCH * 3.1)
        assert [e["event"] for e in logs if e["event"].startswith("rules reload")] == [
            "rules reloaded",
            "rules reload failed; keeping the previous rules",
        ]
    assert await metric(url, "statusbridge_rules_reload_errors_total") == 1


async def test_the_pull_loop_asks_alertmanager_every_interval_and_resolves_what_it_lost(
    fake_time: FakeTime, start_app: App, tmp_path: Path
) -> None:
    active: list[dict[str, Any]] = [
        {
            "labels": {"alertname": "Down", "service": "api"},
            "annotations": {},
            "startsAt": "2026-11-23T11:00:00Z",
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        }
    ]
    asked: list[float] = []

    async def alerts(_: web.Request) -> web.Response:
        asked.append(fake_time.time())
        return web.json_response(active)

    am = web.Application()
    am.router.add_get("/api/v2/alerts", alerts)
    runner = web.AppRunner(am, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        am_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        rules = tmp_path / "rules.yaml"
        rules.write_text(BRIDGE_RULES)
        await start_app(rules_path=str(rules), alertmanager_url=am_url, reconcile_interval="60s")
        await fake_time.settle()
        assert asked == [0.0], "the first pull at start"
        db = tmp_path / "bridge.db"
        assert statuses(db) == ["firing"]
        active.clear()  # Alertmanager lost it (and its resolve)
        await at(fake_time, 60 * 2 + 1)
        assert asked == [0.0, 60.0, 120.0], "one pull every reconcile interval"
        assert statuses(db) == ["resolved"]
    finally:
        await runner.cleanup()


def statuses(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM alerts")]


async def test_the_widget_cache_serves_its_copy_for_the_ttl_on_the_fake_time(
    fake_time: FakeTime, start_app: App, sandbox: SandboxServer
) -> None:
    url, app = await start_app(
        widget_upstream_url=f"{sandbox.url}/status/{PAGE_ID}/api/v1/summary", widget_ttl="30s"
    )
    cache = app[CACHE_KEY]
    async with aiohttp.ClientSession() as s:
        for _ in range(3):
            async with s.get(url + "/widget") as r:
                assert r.status == 200
        assert cache.upstream_fetches == 1
        await asyncio.sleep(29)
        async with s.get(url + "/widget") as r:
            assert r.status == 200
        assert cache.upstream_fetches == 1, "still fresh at 29 s"
        await asyncio.sleep(2)
        answers = await asyncio.gather(*(s.get(url + "/widget") for _ in range(10)))
        assert {a.status for a in answers} == {200}
        for a in answers:
            a.release()
        assert cache.upstream_fetches == 2, "stale at 31 s: ten clients, one upstream fetch"


UNHEARTBEATED_RULES = BRIDGE_RULES.replace(
    """  - name: watchdog
    matchers: ['alertname = "Watchdog"']
    heartbeat: {timeout: 5m}
""",
    "",
)
"""BRIDGE_RULES without the heartbeat rule, so that nothing else holds publication."""


async def test_pages_unreadable_at_start_up_hold_publication_until_the_watcher_reads_them(
    fake_time: FakeTime, start_app: App, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The provider down at start-up: the daemon starts and ingests, names stay unresolved and
    nothing is published; the watcher's next look after the pages answer resolves them and the
    held incident is opened."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(UNHEARTBEATED_RULES)
    async with aiohttp.ClientSession() as s:
        fault = {"method": "GET", "path_prefix": "/v2/status_pages", "status": 503, "count": 10_000}
        async with s.post(sandbox.url + "/_sandbox/faults", json=fault) as r:
            assert r.status == 200
    url, _ = await start_app(
        rules_path=str(rules),
        incidentio_api_key=sandbox.writer_token,
        incidentio_base_url=sandbox.url,
        coalesce_window="0s",
        reconcile_interval="1h",
    )
    started = fake_time.time()

    async def readyz() -> dict[str, Any]:
        async with aiohttp.ClientSession() as s, s.get(url + "/readyz") as r:
            assert r.status == 200, "unresolved names do not stop ingest"
            body: dict[str, Any] = await r.json()
            return body

    assert "rules_unresolved" in (await readyz())["warnings"]
    alert = {
        "status": "firing",
        "labels": {"alertname": "Down", "service": "api"},
        "startsAt": "2026-11-23T11:00:00Z",
    }
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/webhooks/alertmanager", json={"version": "4", "alerts": [alert]}) as r:
            assert r.status == 200
    await at(fake_time, started + pacing.RULES_WATCH * 0.5)
    incidents = sandbox.app[SANDBOX_KEY].state.incidents
    writes = [r for r in sandbox.app[SANDBOX_KEY].requests if r["method"] != "GET"]
    assert not incidents, "nothing is published while the rules' names are unresolved"
    assert not [w for w in writes if w["path"] != "/v2/status_page_incident_updates"], (
        "no write is even tried with unresolved names (only pre-flight's probe)"
    )
    async with aiohttp.ClientSession() as s:
        await s.delete(sandbox.url + "/_sandbox/faults")
    await at(fake_time, started + pacing.RULES_WATCH * 1.5)
    assert [i.name for i in incidents.values()] == ["api is down"], "published once the pages answer"
    assert "rules_unresolved" not in (await readyz())["warnings"]


async def test_the_event_loop_lag_is_sampled_every_probe_interval(
    fake_time: FakeTime, start_app: App
) -> None:
    """On the fake time the loop is never late: every sample is 0, one every ``LAG_PROBE``."""
    url, _ = await start_app(reconcile_interval="1h")
    started = fake_time.time()
    await at(fake_time, started + pacing.LAG_PROBE * 5.5)
    assert await metric(url, "statusbridge_event_loop_lag_seconds_count") == 5
    assert await metric(url, "statusbridge_event_loop_lag_seconds_sum") == 0


async def test_a_timer_that_runs_late_is_measured_by_how_late() -> None:
    """The sampler's own arithmetic, with a clock whose second sleep overruns by 0.3 s."""
    clock = [100.0]
    overrun = iter([0.0, 0.3, 0.0])
    stopping = asyncio.Event()
    seen: list[float] = []

    async def sleep(seconds: float) -> None:
        clock[0] += seconds + next(overrun)

    def observe(lag: float) -> None:
        seen.append(round(lag, 6))
        if len(seen) == 3:
            stopping.set()

    await sample_lag(observe, stopping, interval=2.0, clock=lambda: clock[0], sleep=sleep)
    assert seen == [0.0, 0.3, 0.0]
