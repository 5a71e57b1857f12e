"""HA drill: two ``serve`` processes on one PostgreSQL schema both receive every webhook of a storm
(as from Alertmanager replicas). The leader is SIGKILLed mid-storm (after a random number of
accepted webhooks); the other must take over within 15 s, and the page must end correct with
at most one incident per group. Runs once by default, 5 times with ``--full``."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.conftest import PG_URL, SandboxFactory, SandboxServer
from tests.resilience.conftest import Scale
from tests.resilience.drill import Daemon, Sender, converge, count_incidents, make_storm

pytestmark = [pytest.mark.resilience, pytest.mark.e2e]


@pytest.fixture
async def schemas() -> AsyncIterator[list[str]]:
    made: list[str] = []
    yield made
    conn = await asyncpg.connect(PG_URL)
    try:
        for name in made:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def leader_among(daemons: list[Daemon]) -> Daemon | None:
    for d in daemons:
        if not d.alive:
            continue
        try:
            if (await d.state()).get("leader"):
                return d
        except (aiohttp.ClientError, AssertionError, OSError):
            continue
    return None


async def test_leader_killed_mid_storm(
    tmp_path: Path, sandbox_factory: SandboxFactory, schemas: list[str], scale: Scale
) -> None:
    rounds = 5 if scale.full else 1
    for n in range(rounds):
        await _round(tmp_path / f"round{n}", await sandbox_factory(), schemas, random.Random(n))


async def _round(tmp: Path, sandbox: SandboxServer, schemas: list[str], rng: random.Random) -> None:
    schema = f"ha_{uuid.uuid4().hex[:10]}"
    schemas.append(schema)
    url = f"{PG_URL}?schema={schema}"
    daemons = [
        Daemon(tmp / f"r{i}", sandbox, store_url=url, STATUSBRIDGE_RECONCILE_INTERVAL="1s") for i in range(2)
    ]
    storm = make_storm(240, rng)
    sender = Sender(lambda: [d.webhook for d in daemons if d.alive])
    try:
        for d in daemons:
            await d.start()
        leader = None
        while leader is None:
            leader = await leader_among(daemons)
            await asyncio.sleep(0.1)
        deliveries = storm.deliveries
        delivery = asyncio.create_task(sender.deliver(deliveries))
        kill_after = rng.randrange(len(deliveries) // 4, len(deliveries) // 2)
        while sender.acked < kill_after and not delivery.done():
            await asyncio.sleep(0.005)
        leader.kill()
        killed = time.monotonic()
        follower = next(d for d in daemons if d is not leader)
        new_leader = None
        while new_leader is None:
            assert time.monotonic() - killed < 15, "no takeover within 15 s"
            new_leader = await leader_among([follower])
            await asyncio.sleep(0.1)
        took = time.monotonic() - killed
        await delivery
        settled = await converge(sandbox, storm, timeout=60, logs=follower.log)
        counts = count_incidents(sandbox)
        assert all(c == 1 for c in counts.values()), f"duplicate incidents across replicas: {counts}"
        assert not sender.refused, sender.refused[:3]
        print(
            f"HA drill: leader killed after {kill_after} webhooks; takeover {took:.1f}s; page correct {settled:.2f}s after the last"
        )
    finally:
        for d in daemons:
            d.stop()
