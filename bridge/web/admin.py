"""The admin API under ``/api/v1/``: an aiohttp sub-application behind the admin token.

``GET /api/v1/state`` explains the bridge: the active alerts, every incident group's desired and
published state, what the planner holds back and why, and for each component the alerts and rule
behind its status. The other operations pause and resume publishing, release the blast-radius
guard, hand a taken-over group back and force-resolve one; the maintenance windows' routes
(``bridge.web.maintenance``) live in the same sub-application. Every route needs the admin token
(``require_admin``) except the OpenAPI document, ``openapi.json`` beside this file, served at
``/api/v1/openapi.json``; a test keeps it in sync with the routes.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bridge.domain import PublishedGroup, format_duration
from bridge.engine.reconciler import GUARD_RELEASED, PAUSED
from bridge.observability import get_logger
from bridge.web import maintenance
from bridge.web.errors import error_response
from bridge.web.middleware import Handler
from bridge.web.resources import CHANGED, CLOCK, LEADING, RECONCILER, SETTINGS, STORE

log = get_logger(__name__)

PREFIX = "/api/v1"
"""Where the root app mounts the admin sub-application."""

OPENAPI: dict[str, Any] = json.loads((Path(__file__).parent / "openapi.json").read_text(encoding="utf-8"))
"""The admin API's OpenAPI 3.0 document, as served."""

PUBLIC = frozenset({"openapi"})
"""Names of the sub-application's routes that need no token."""


@web.middleware
async def require_admin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """403 while no admin token is configured, 401 without the right bearer token; a path or method
    the sub-application does not serve goes on to its 404/405, as at the root."""
    route = request.match_info.route
    if request.match_info.http_exception is not None or route.name in PUBLIC:
        return await handler(request)
    token = request.config_dict[SETTINGS].admin_token
    if token is None:
        return error_response(403, "the admin API is disabled: set STATUSBRIDGE_ADMIN_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.encode(), token.get_secret_value().encode()
    ):
        return error_response(
            401,
            "admin token required (Authorization: Bearer …)",
            headers={"WWW-Authenticate": 'Bearer realm="statusbridge-admin"'},
        )
    return await handler(request)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, int | float | str | bool):
        return value.value
    return value


def _group(published: PublishedGroup | None) -> Any:
    return None if published is None else _jsonable(asdict(published))


async def state(request: web.Request) -> web.Response:
    """``GET /api/v1/state``: alerts, every group's desired and published state, holds and errors."""
    cfg = request.config_dict
    store = cfg[STORE]
    alerts = await store.list_alerts(include_resolved=False, limit=1000)
    published = await store.load_groups()
    last = cfg[RECONCILER].last
    groups = []
    keys = set(published) | (set(last.groups) if last else set())
    for key in sorted(keys):
        report = last.groups.get(key) if last else None
        desired = report.desired if report else None
        groups.append(
            {
                "key": key,
                "desired": _jsonable(asdict(desired)) if desired is not None else None,
                "published": _group(published.get(key)),
                "actions": [
                    {"type": type(a).__name__, **_jsonable(asdict(a))}
                    for a in (report.plan.actions if report else ())
                ],
                "held": report.plan.held if report else None,
                "error": report.error if report else None,
            }
        )
    return web.json_response(
        {
            "mode": cfg[SETTINGS].mode,
            "leader": cfg[LEADING].is_set(),
            "paused": bool(await store.get_control(PAUSED)),
            "blind": last.blind if last else [],
            "guard": last.guard if last else {},
            "taken_over": sorted(k for k, p in published.items() if p.taken_over),
            "left_open": {k: p.left_open_incident for k, p in published.items() if p.left_open_incident},
            "last_pass_at": last.at.isoformat() if last else None,
            "alerts": [
                {
                    "source": s.alert.source.value,
                    "fingerprint": s.alert.fingerprint,
                    "labels": dict(s.alert.labels),
                    "status": s.alert.status.value,
                    "starts_at": s.alert.starts_at.isoformat(),
                    "last_received_at": s.last_received_at.isoformat(),
                }
                for s in alerts
            ],
            "groups": groups,
        }
    )


def _done(what: str, **extra: Any) -> web.Response:
    return web.json_response({"ok": True, "action": what, **extra})


async def pause(request: web.Request) -> web.Response:
    """``POST /api/v1/pause``: nothing is published until resumed (stored, so replicas agree)."""
    cfg = request.config_dict
    await cfg[STORE].set_control(PAUSED, {"at": cfg[CLOCK]().isoformat()})
    log.warning("publishing paused by an admin")
    cfg[CHANGED].set()
    return _done("pause")


async def resume(request: web.Request) -> web.Response:
    """``POST /api/v1/resume``: publishing resumes at the next pass, which starts at once."""
    cfg = request.config_dict
    await cfg[STORE].set_control(PAUSED, None)
    log.warning("publishing resumed by an admin")
    cfg[CHANGED].set()
    return _done("resume")


async def release_guard(request: web.Request) -> web.Response:
    """``POST /api/v1/guard/release``: the blast-radius guard lets what it holds through."""
    cfg = request.config_dict
    await cfg[STORE].set_control(GUARD_RELEASED, cfg[CLOCK]().isoformat())
    log.warning("blast-radius guard released by an admin")
    cfg[CHANGED].set()
    return _done("release_guard")


async def _group_or_404(request: web.Request) -> PublishedGroup | web.Response:
    key = request.match_info["key"]
    group = (await request.config_dict[STORE].load_groups()).get(key)
    if group is None:
        return error_response(404, f"no incident group {key!r}")
    return group


async def release_group(request: web.Request) -> web.Response:
    """Hand a taken-over group back to the bridge (and forget an incident left open)."""
    cfg = request.config_dict
    group = await _group_or_404(request)
    if isinstance(group, web.Response):
        return group
    if not group.taken_over and not group.left_open_incident:
        return error_response(409, f"group {group.key!r} is not taken over")
    released = replace(group, taken_over=False, taken_over_reason=None, left_open_incident=None)
    await cfg[STORE].save_group_unfenced(released)
    log.warning("takeover released by an admin", group=group.key)
    cfg[CHANGED].set()
    return _done("release", group=group.key)


async def force_resolve(request: web.Request) -> web.Response:
    """``POST /api/v1/groups/{key}/resolve``: the next pass resolves the group's incident; 409 when
    the bridge manages no open incident for it."""
    cfg = request.config_dict
    group = await _group_or_404(request)
    if isinstance(group, web.Response):
        return group
    if not group.open or group.taken_over:
        return error_response(409, f"group {group.key!r} has no incident the bridge manages open")
    await cfg[STORE].save_group_unfenced(replace(group, force_resolve=True))
    log.warning("force-resolve requested by an admin", group=group.key)
    cfg[CHANGED].set()
    return _done("resolve", group=group.key)


async def openapi(_request: web.Request) -> web.Response:
    """The OpenAPI document; no token needed."""
    return web.json_response(OPENAPI)


def admin_app() -> web.Application:
    """The sub-application to mount at ``PREFIX``; it reads the daemon's resources from the root."""
    app = web.Application(middlewares=[require_admin])
    app.router.add_routes(
        [
            web.get("/state", state),
            web.get("/openapi.json", openapi, name="openapi"),
            web.post("/pause", pause),
            web.post("/resume", resume),
            web.post("/guard/release", release_guard),
            web.post("/groups/{key:[^/]+}/release", release_group),
            web.post("/groups/{key:[^/]+}/resolve", force_resolve),
            *maintenance.routes(),
        ]
    )
    return app
