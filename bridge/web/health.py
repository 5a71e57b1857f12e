"""``/healthz`` (the process answers) and ``/readyz`` (it should receive traffic), for kubelet probes.

Readiness is 503 while shutting down, while a start-up problem stands, or when the store does not
answer a ping within ``pacing.STORE_PING_TIMEOUT``; warnings (no API key, a failed rules reload, a
blind heartbeat, a nearly full disk under the store) are shown but leave the daemon ready, because it
still ingests.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from bridge import pacing
from bridge.web.resources import HEALTH, RULES, STOPPING, STORE

DISK_FREE_WARNING = 0.10
"""Below this free share of the disk under a SQLite store ``/readyz`` warns: SQLite needs room for
its WAL and checkpoints, and a full disk refuses every webhook (a 503 that Alertmanager retries);
10 % leaves an operator time to grow the volume."""


async def healthz(_request: web.Request) -> web.Response:
    """Always 200 while the process serves requests."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 with ``ready: true``, or 503 naming each problem; warnings in both."""
    app, health = request.app, request.app[HEALTH]
    problems = dict(health.problems)
    if app[STOPPING].is_set():
        problems["shutdown"] = "shutting down"
    # A store that hangs (a PostgreSQL behind a dead route) must not hang the probe too: the
    # ping and the disk check share one STORE_PING_TIMEOUT, under the kubelet's probe timeout.
    deadline = asyncio.get_running_loop().time() + pacing.STORE_PING_TIMEOUT
    try:
        async with asyncio.timeout_at(deadline):
            await app[STORE].ping()
    except Exception as exc:  # noqa: BLE001 (readiness reports, never raises)
        problems["store"] = f"unreachable: {type(exc).__name__}"
    warnings = dict(health.warnings)
    if "store" not in problems:
        with contextlib.suppress(Exception):  # a warning at most: the ping said the store answers
            async with asyncio.timeout_at(deadline):
                free = await app[STORE].disk_free()
                if free is not None and free < DISK_FREE_WARNING:
                    warnings["store_disk"] = (
                        f"the disk under the store is {1 - free:.0%} full ({await app[STORE].size()} "
                        "bytes of store): a full disk refuses every webhook"
                    )
    if app[RULES].last_error:
        warnings["rules"] = f"reload failed, previous rules in use: {app[RULES].last_error}"
    ready = not problems
    return web.json_response(
        {"ready": ready, "problems": problems, "warnings": warnings}, status=200 if ready else 503
    )


def routes() -> list[web.RouteDef]:
    """The probes, at the root."""
    return [web.get("/healthz", healthz), web.get("/readyz", readyz)]
