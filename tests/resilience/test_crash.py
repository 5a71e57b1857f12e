"""Crash drill: SIGKILL ``statusbridge serve`` at random points of a storm, restart it on the same
SQLite file, and keep delivering (un-answered webhooks are re-sent, as Alertmanager does).

Kill points alternate between "after a random number of accepted webhooks" (ingest mid-flight)
and "right after the sandbox saw a write" (a publication mid-flight). Afterwards: every accepted
alert is in the store with its last status, the page shows the storm's end state, and no group
has more than one incident. Kills: 3 by default, 20 with ``--full``.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from bridge.sandbox.app import SANDBOX_KEY
from tests.conftest import SandboxServer
from tests.resilience.conftest import Scale
from tests.resilience.drill import (
    Daemon,
    Sender,
    converge,
    count_incidents,
    make_storm,
    stored_statuses,
)

pytestmark = [pytest.mark.resilience, pytest.mark.e2e]


async def test_sigkill_during_a_storm_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, sandbox: SandboxServer, scale: Scale
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    storm = make_storm(60 * (scale.kills + 1), rng)
    deliveries = storm.deliveries
    daemon = Daemon(tmp_path, sandbox)
    sb = sandbox.app[SANDBOX_KEY]
    sender = Sender(lambda: [daemon.webhook])
    kills = 0
    try:
        await daemon.start()
        size = -(-len(deliveries) // (scale.kills + 1))
        chunks = [deliveries[i : i + size] for i in range(0, len(deliveries), size)]
        for n, chunk in enumerate(chunks):
            delivery = asyncio.create_task(sender.deliver(chunk))
            if n < scale.kills:
                if n % 2 == 0:
                    target = sender.acked + rng.randrange(1, max(2, len(chunk) // 2))
                    while sender.acked < target and not delivery.done():
                        await asyncio.sleep(0.005)
                else:
                    writes = sum(1 for r in sb.requests if r["method"] == "POST")
                    while (
                        sum(1 for r in sb.requests if r["method"] == "POST") == writes and not delivery.done()
                    ):
                        await asyncio.sleep(0.005)
                daemon.kill()
                kills += 1
                await daemon.start()
            await delivery
        took = await converge(sandbox, storm, timeout=60, logs=daemon.log)
        assert kills == scale.kills
        assert not sender.refused, sender.refused[:3]
        counts = count_incidents(sandbox)
        assert all(n == 1 for n in counts.values()), f"duplicate incidents (seed {seed}): {counts}"
        print(
            f"crash drill: {kills} kills, {len(deliveries)} deliveries, page correct {took:.2f}s after the last"
        )
    finally:
        daemon.stop()
    stored = await stored_statuses(daemon.env["STATUSBRIDGE_STORE_URL"])
    lost = {k: v for k, v in storm.instances.items() if stored.get(k) != v}
    assert not lost, f"alerts lost or wrong after {kills} kills (seed {seed}): {list(lost.items())[:5]}"
