"""Start-up job 3: what the files under ``STATUSBRIDGE_RULES_PATH`` say, rules (``RULES``) and
maintenance windows (``WINDOWS``), with the watcher that reloads them.

Names in the files (pages, components) are resolved against the pages the API key sees. When the
pages cannot be read at start-up (the provider is down), the daemon starts anyway, ingests, and
publishes nothing until they are: the watcher tries again every ``pacing.RULES_WATCH``. A change
on disk or ``SIGHUP`` (installed by the CLI) reloads both; a broken file keeps the previous ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from bridge import pacing
from bridge.app.publishing import CLIENT
from bridge.domain import PageDirectory
from bridge.engine.pageapi import page_directory
from bridge.engine.windows import WindowSource
from bridge.incidentio.client import StatusPageClient
from bridge.incidentio.errors import IncidentIOError
from bridge.observability import get_logger
from bridge.rules import NO_RULES, RulesError, RulesHolder
from bridge.settings import SettingsError
from bridge.web.resources import CHANGED, HEALTH, METRICS, RULES, SETTINGS, STORE, WINDOWS, Health

log = get_logger(__name__)

UNRESOLVED = "rules_unresolved"
"""The ``/readyz`` warning while the rules' names wait for the pages (``RulesHolder.unresolved``:
publication holds meanwhile)."""


async def rules_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sets ``RULES`` (``NO_RULES`` without a rules path) and ``WINDOWS``; refuses to start on a
    broken file (``SettingsError`` naming it), and runs the watcher until shutdown."""
    s, health, client = app[SETTINGS], app[HEALTH], app[CLIENT]
    path = s.rules_path
    directory: PageDirectory | None = None
    unresolved = False
    if path is not None and client is not None:
        try:
            directory = await page_directory(client)
        except IncidentIOError as exc:
            log.warning(
                "could not read the status pages; rule names stay unresolved until a reload", error=str(exc)
            )
            unresolved = True
            health.warnings[UNRESOLVED] = (
                "the status pages could not be read: names in the rules are unresolved and nothing is "
                "published until they are (retried every 2 s)"
            )
    windows = app[WINDOWS] = WindowSource(app[STORE], path, directory)
    if windows.error:
        raise SettingsError(f"maintenance windows: {windows.error}")
    if path is None:
        health.warnings["rules"] = "no rules: set STATUSBRIDGE_RULES_PATH"
        app[RULES] = NO_RULES
        yield
        return
    metrics, changed = app[METRICS], app[CHANGED]

    def reloaded() -> None:
        windows.reload()
        metrics.rules_ok.set(1)
        changed.set()

    def failed(_error: str) -> None:
        metrics.rules_ok.set(0)
        metrics.rules_reload_errors.inc()

    try:
        rules = app[RULES] = RulesHolder(path, directory=directory, on_reload=reloaded, on_error=failed)
    except RulesError as exc:
        raise SettingsError(f"STATUSBRIDGE_RULES_PATH: {exc}") from exc
    rules.unresolved = unresolved
    metrics.rules_ok.set(1)
    watcher = asyncio.create_task(_watch(rules, windows, health, client))
    yield
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher


async def _watch(
    rules: RulesHolder, windows: WindowSource, health: Health, client: StatusPageClient | None
) -> None:
    while True:
        await asyncio.sleep(pacing.RULES_WATCH)
        if rules.unresolved and client is not None:
            await _resolve_names(rules, windows, health, client)
        if rules.changed_on_disk():
            rules.reload()


async def _resolve_names(
    rules: RulesHolder, windows: WindowSource, health: Health, client: StatusPageClient
) -> None:
    """Start-up could not read the pages (the provider was down): try again; once it answers,
    the rules and windows take the page's IDs and publication starts."""
    try:
        directory = await page_directory(client)
    except IncidentIOError:
        return
    rules.directory = directory
    windows.directory = directory
    rules.unresolved = False
    health.warnings.pop(UNRESOLVED, None)
    log.info("status pages read: rule names resolved")
    rules.reload()
