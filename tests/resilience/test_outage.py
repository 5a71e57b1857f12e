"""Provider outage drill: the status page API answers 503 to everything for a while (3 s by
default, 60 s with ``--full``) while the storm goes on, then rate-limits in bursts (429 with
``Retry-After``). Nothing may be lost — the page ends in the storm's end state — and it must get
there within 5 s of the provider's recovery (the moment the last injected fault was served).

The outage lasts real seconds: the bridge is a separate process whose retry back-off runs on its
own clock, which is exactly what is under test.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiohttp
import pytest

from bridge.sandbox.app import SANDBOX_KEY
from tests.conftest import SandboxServer
from tests.e2e.harness import fault
from tests.resilience.conftest import Scale
from tests.resilience.drill import Daemon, Sender, converge, count_incidents, make_storm

pytestmark = [pytest.mark.resilience, pytest.mark.e2e]


async def until_down(daemon: Daemon, *, down: bool) -> None:
    """Until /metrics and /readyz say the status page API is (or is no longer) unavailable."""
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as s:
        while True:
            async with s.get(daemon.url + "/metrics") as r:
                metric = f"statusbridge_status_page_api_down {1.0 if down else 0.0}" in await r.text()
            async with s.get(daemon.url + "/readyz") as r:
                warned = "status_page_api" in (await r.json())["warnings"]
            if metric and warned == down:
                return
            assert time.monotonic() < deadline, (
                f"the daemon does not report the API {'down' if down else 'up'}"
            )
            await asyncio.sleep(0.1)


async def test_outage_then_429_bursts_loses_nothing_and_converges_fast(
    tmp_path: Path, sandbox: SandboxServer, scale: Scale
) -> None:
    storm = make_storm(240, random.Random(7))
    opening, *rest = storm.phases
    sb = sandbox.app[SANDBOX_KEY]
    daemon = Daemon(tmp_path, sandbox)
    sender = Sender(lambda: [daemon.webhook])
    try:
        await daemon.start()
        await sender.deliver(opening)
        # every group open before the outage: its updates are what must not be lost
        while len(sb.state.incidents) < 5:
            await asyncio.sleep(0.05)
        await fault(sandbox, path_prefix="/v2/", count=10**9, status=503)
        outage_began = time.monotonic()
        for phase in rest:  # escalations, calming and resolves all arrive during the outage
            await sender.deliver(phase)
        await until_down(daemon, down=True)  # operators see it: a metric and a readiness warning
        await asyncio.sleep(max(0.0, scale.outage_seconds - (time.monotonic() - outage_began)))
        refused = sum(1 for r in sb.requests if r["status"] == 503)
        async with aiohttp.ClientSession() as s:
            await s.delete(sandbox.url + "/_sandbox/faults")
        # then the provider is back but rate-limits in bursts
        for _ in range(3):
            await fault(sandbox, path_prefix="/v2/", count=2, status=429, retry_after=1)
        while sb.faults:
            await asyncio.sleep(0.01)
        took = await converge(  # measured from the provider's recovery: the last fault served
            sandbox, storm, timeout=30, logs=daemon.log
        )
        await until_down(daemon, down=False)
        assert refused > 0, "the bridge did not even try during the outage"
        assert sum(1 for r in sb.requests if r["status"] == 429) == 6
        assert all(n == 1 for n in count_incidents(sandbox).values()), count_incidents(sandbox)
        print(
            f"outage drill: {scale.outage_seconds:.0f}s of 503s ({refused} refused calls), 6 429s; "
            f"page correct {took:.2f}s after recovery"
        )
        assert took <= 5.0, f"converged {took:.1f}s after recovery (target 5 s)"
        assert daemon.alive
    finally:
        daemon.stop()
