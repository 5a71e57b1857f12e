"""HA on PostgreSQL: two ``serve`` processes share one store and receive the same webhooks (as from
Alertmanager replicas). Exactly one reconciles; the other takes over within 15 s of the leader's
death; a leader whose database session is terminated stops writing, and no stale write lands after
the new leader's first."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bridge.sandbox.app import SANDBOX_KEY
from tests.conftest import PG_URL, SandboxServer
from tests.e2e.harness import Bridge, component, incidents, until

pytestmark = pytest.mark.e2e


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = f"ha_{uuid.uuid4().hex[:10]}"
    yield name
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def leader_of(bridges: list[Bridge]) -> Bridge | None:
    for b in bridges:
        try:
            state = await b.state()
        except (aiohttp.ClientError, AssertionError, OSError):
            continue
        if state.get("leader"):
            return b
    return None


async def post_all(bridges: list[Bridge], alerts: list[dict[str, Any]]) -> None:
    for b in bridges:
        try:
            await b.post(alerts)
        except (aiohttp.ClientError, OSError):
            pass  # a dead replica: Alertmanager's other replica still delivers


def firing(name: str, severity: str = "critical", **labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": name, "severity": severity, **labels},
        "startsAt": datetime.now(UTC).isoformat(),
    }


async def start_pair(tmp_path: Path, sandbox: SandboxServer, schema: str) -> list[Bridge]:
    bridges = []
    for i in range(2):
        d = tmp_path / f"r{i}"
        d.mkdir()
        b = Bridge(
            d,
            sandbox,
            STATUSBRIDGE_STORE_URL=f"{PG_URL}?schema={schema}",
            STATUSBRIDGE_RECONCILE_INTERVAL="500ms",
        )
        await b.start()
        bridges.append(b)
    return bridges


async def wait_leader(bridges: list[Bridge], timeout: float = 20) -> tuple[Bridge, float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        leader = await leader_of(bridges)
        if leader is not None:
            return leader, time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError("no leader")


async def test_two_replicas_one_incident_and_failover(
    tmp_path: Path, sandbox: SandboxServer, schema: str
) -> None:
    bridges = await start_pair(tmp_path, sandbox, schema)
    try:
        leader, _ = await wait_leader(bridges)
        assert sum([bool((await b.state())["leader"]) for b in bridges]) == 1
        await post_all(bridges, [firing("APIDown")])
        await post_all(bridges, [firing("FrontendErrors")])
        await until("two incidents", lambda: len(incidents(sandbox)) == 2)
        # SIGKILL the leader mid-storm; the other takes over within 15 s and keeps publishing.
        leader.kill()
        follower = next(b for b in bridges if b is not leader)
        for i in range(20):
            await post_all([follower], [firing("APIDown", instance=f"h{i}")])
        new_leader, took = await wait_leader([follower])
        assert took < 15, f"takeover took {took:.1f}s"
        await post_all(
            [follower],
            [{**firing("FrontendErrors"), "status": "resolved", "endsAt": datetime.now(UTC).isoformat()}],
        )
        await until(
            "web back to operational",
            lambda: component(sandbox, "Web/Dashboard") == "operational",
            timeout=30,
        )
        assert len(incidents(sandbox)) == 2, "exactly one incident per group across both replicas"
        assert new_leader is follower
    finally:
        for b in bridges:
            b.stop()


async def test_terminated_session_fences_the_old_leader(
    tmp_path: Path, sandbox: SandboxServer, schema: str
) -> None:
    bridges = await start_pair(tmp_path, sandbox, schema)
    try:
        leader, _ = await wait_leader(bridges)
        await post_all(bridges, [firing("APIDown", severity="warning")])
        await until("incident open", lambda: len(incidents(sandbox)) == 1)
        # Slow the API so the leader is mid-publish when its session is cut.
        async with aiohttp.ClientSession() as s:
            await s.post(
                sandbox.url + "/_sandbox/faults",
                json={"path_prefix": "/v2/status_page_incident_updates", "count": 1, "latency": 1.5},
            )
        await post_all(bridges, [firing("APIDown", severity="critical", instance="b")])
        conn = await asyncpg.connect(PG_URL)
        try:
            await until("update in flight", lambda: not sandbox.app[SANDBOX_KEY].faults)
            terminated = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            assert terminated == 1
        finally:
            await conn.close()
        follower_or_same, _ = await wait_leader(bridges)
        await until("critical published", lambda: component(sandbox, "API") == "full_outage", timeout=30)
        log = await _action_log(schema)
        epochs = [row["epoch"] for row in log]
        new_epoch = max(epochs)
        first_new = epochs.index(new_epoch)
        assert all(e == new_epoch for e in epochs[first_new:]), (
            f"a stale write landed after the new leader's first: {epochs}"
        )
        assert len(incidents(sandbox)) == 1
        assert follower_or_same is not None
    finally:
        for b in bridges:
            b.stop()


async def _action_log(schema: str) -> list[Any]:
    conn = await asyncpg.connect(PG_URL)
    try:
        return list(await conn.fetch(f'SELECT epoch, action, outcome FROM "{schema}".action_log ORDER BY id'))
    finally:
        await conn.close()
