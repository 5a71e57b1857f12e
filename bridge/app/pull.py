"""Start-up job 4: with ``STATUSBRIDGE_ALERTMANAGER_URL``, make the store agree with Alertmanager's
active alerts every ``STATUSBRIDGE_RECONCILE_INTERVAL`` (a lost webhook, a missed resolve).

Without the URL nothing runs: webhooks are then the only input.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bridge.ingest.pull import PullError, pull_once
from bridge.observability import get_logger
from bridge.web.resources import CHANGED, CLOCK, HEALTH, SETTINGS, STOPPING, STORE

log = get_logger(__name__)


async def pull_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs the pull loop, with its own HTTP session, until shutdown."""
    s = app[SETTINGS]
    if not s.alertmanager_url:
        yield
        return
    url = s.alertmanager_url
    store, clock, warnings = app[STORE], app[CLOCK], app[HEALTH].warnings
    changed, stopping = app[CHANGED], app[STOPPING]

    async def loop(session: aiohttp.ClientSession) -> None:
        while not stopping.is_set():
            try:
                if await pull_once(
                    session,
                    url,
                    store,
                    clock(),
                    ttl=s.alert_ttl,
                    silenced_counts_as_resolved=s.silenced_counts_as_resolved,
                ):
                    changed.set()
                warnings.pop("alertmanager_pull", None)
            except PullError as exc:
                warnings["alertmanager_pull"] = str(exc)
                log.warning("alertmanager pull failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=s.reconcile_interval.total_seconds())

    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(loop(session))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
