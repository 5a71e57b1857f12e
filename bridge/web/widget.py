"""``GET /widget``: the status page's Widget API JSON, proxied and cached (incident.io asks users to
proxy and cache it rather than hit it from every browser).

With ``STATUSBRIDGE_WIDGET_UPSTREAM_URL`` the JSON comes from there: one upstream fetch at a time
however many clients ask (request coalescing), kept for ``STATUSBRIDGE_WIDGET_TTL``, served with an
ETag (``304`` on ``If-None-Match``) and ``Cache-Control``, and served stale while the upstream fails
(``Warning``-style ``X-StatusBridge-Stale`` header). Without an upstream the same shape is built
from what the bridge itself published. Time comes from the runtime's clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from bridge.domain import ComponentStatus, worst
from bridge.engine.windows import load_published
from bridge.observability import get_logger
from bridge.web.resources import CLOCK, RULES, SETTINGS, STORE

log = get_logger(__name__)


@dataclass
class Cached:
    """One copy of the upstream's JSON, its ETag, and when it was fetched."""

    body: bytes
    etag: str
    fetched_at: datetime


class WidgetCache:
    """The upstream's last good JSON: one fetch at a time however many clients ask."""

    def __init__(self) -> None:
        self.entry: Cached | None = None
        self._inflight: asyncio.Task[Cached] | None = None
        self.upstream_fetches = 0

    async def get(self, app: web.Application, session: aiohttp.ClientSession) -> tuple[Cached, bool]:
        """The cached body (refreshed when older than the TTL) and whether it is stale."""
        now = app[CLOCK]()
        ttl = app[SETTINGS].widget_ttl
        if self.entry is not None and now - self.entry.fetched_at < ttl:
            return self.entry, False
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._fetch(app, session))
        try:
            self.entry = await asyncio.shield(self._inflight)
            return self.entry, False
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            if self.entry is None:
                raise
            log.warning("widget upstream failed; serving the last good copy", error=str(exc))
            return self.entry, True

    async def _fetch(self, app: web.Application, session: aiohttp.ClientSession) -> Cached:
        url = app[SETTINGS].widget_upstream_url
        assert url is not None
        self.upstream_fetches += 1
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(
                    resp.request_info, (), status=resp.status, message="upstream"
                )
            body = await resp.read()
        json.loads(body)  # only valid JSON is cached
        return Cached(body, _etag(body), app[CLOCK]())


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


CACHE_KEY = web.AppKey("widget_cache", WidgetCache)
SESSION_KEY = web.AppKey("widget_session", aiohttp.ClientSession)


async def built_from_state(app: web.Application) -> dict[str, Any]:
    """The Widget API's shape, from the bridge's own published state."""
    store, clock = app[STORE], app[CLOCK]
    directory = app[RULES].directory
    names = {}
    page_name = ""
    if directory is not None:
        for page in directory.pages:
            page_name = page_name or page.name
            for c in page.components:
                names[c.id] = (c.name, c.group)

    def component(cid: str, status: str) -> dict[str, Any]:
        name, group = names.get(cid, (cid, None))
        item: dict[str, Any] = {"id": cid, "name": name, "current_status": status}
        if group:
            item["group_name"] = group
        return item

    ongoing = []
    for group in (await store.load_groups()).values():
        if not group.open or group.taken_over or group.incident_id is None:
            continue
        impacted = {c: s for c, s in group.components.items() if s is not ComponentStatus.OPERATIONAL}
        item: dict[str, Any] = {
            "id": group.incident_id,
            "name": group.name,
            "status": group.incident_status.value if group.incident_status else "investigating",
            "last_update_at": (group.last_published_at or clock()).isoformat(),
            "last_update_message": None,
            "affected_components": [component(c, s.value) for c, s in sorted(impacted.items())],
        }
        if impacted:
            item["current_worst_impact"] = worst(impacted.values()).value
        ongoing.append(item)
    in_progress, scheduled = [], []
    for m in (await load_published(store)).values():
        if m.maintenance_id is None or m.finished:
            continue
        base = {"id": m.maintenance_id, "name": m.name, "status": m.status, "last_update_message": None}
        if m.status == "maintenance_in_progress":
            comps = [component(c, "under_maintenance") for c in m.components]
            in_progress.append(
                {**base, "affected_components": comps, "started_at": m.start_at, "scheduled_end_at": m.end_at}
            )
        else:
            comps = [component(c, "operational") for c in m.components]
            scheduled.append(
                {**base, "affected_components": comps, "starts_at": m.start_at, "ends_at": m.end_at}
            )
    return {
        "page_title": page_name,
        "page_url": app[SETTINGS].widget_page_url or "",
        "ongoing_incidents": ongoing,
        "in_progress_maintenances": in_progress,
        "scheduled_maintenances": scheduled,
    }


async def widget(request: web.Request) -> web.StreamResponse:
    """``GET /widget``: the Widget API JSON with ETag and Cache-Control; 502 only when the upstream
    fails and nothing is cached yet."""
    app = request.app
    settings = app[SETTINGS]
    ttl = int(settings.widget_ttl.total_seconds())
    headers = {"Cache-Control": f"public, max-age={ttl}", "Content-Type": "application/json"}
    if settings.widget_upstream_url:
        try:
            cached, stale = await app[CACHE_KEY].get(app, app[SESSION_KEY])
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return web.json_response(
                {
                    "error": {
                        "status": 502,
                        "message": "the widget upstream is unavailable and nothing is cached yet",
                    }
                },
                status=502,
            )
        body, etag = cached.body, cached.etag
        if stale:
            headers["X-StatusBridge-Stale"] = "upstream failing; last good copy"
    else:
        body = json.dumps(await built_from_state(app), sort_keys=True).encode()
        etag = _etag(body)
    headers["ETag"] = etag
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
    return web.Response(body=body, headers=headers)


async def widget_ctx(app: web.Application) -> Any:
    """The widget's cache and its upstream HTTP session, closed at shutdown."""
    app[CACHE_KEY] = WidgetCache()
    async with aiohttp.ClientSession() as session:
        app[SESSION_KEY] = session
        yield


def routes() -> list[web.RouteDef]:
    """``/widget``, at the root."""
    return [web.get("/widget", widget)]
