"""``/healthz`` (the process answers) and ``/readyz`` (it should receive traffic), for kubelet probes.

Readiness is 503 while shutting down, while a start-up problem stands, or when the store does not
answer a ping within ``pacing.STORE_PING_TIMEOUT``; warnings (no API key, a failed rules reload, a
blind heartbeat) are shown but leave the daemon ready, because it still ingests.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bridge import pacing
from bridge.web.resources import HEALTH, RULES, STOPPING, STORE


async def healthz(_request: web.Request) -> web.Response:
    """Always 200 while the process serves requests."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 with ``ready: true``, or 503 naming each problem; warnings in both."""
    app, health = request.app, request.app[HEALTH]
    problems = dict(health.problems)
    if app[STOPPING].is_set():
        problems["shutdown"] = "shutting down"
    try:
        # A store that hangs (a PostgreSQL behind a dead route) must not hang the probe too.
        await asyncio.wait_for(app[STORE].ping(), pacing.STORE_PING_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 (readiness reports, never raises)
        problems["store"] = f"unreachable: {type(exc).__name__}"
    warnings = dict(health.warnings)
    if app[RULES].last_error:
        warnings["rules"] = f"reload failed, previous rules in use: {app[RULES].last_error}"
    ready = not problems
    return web.json_response(
        {"ready": ready, "problems": problems, "warnings": warnings}, status=200 if ready else 503
    )


def routes() -> list[web.RouteDef]:
    """The probes, at the root."""
    return [web.get("/healthz", healthz), web.get("/readyz", readyz)]
