"""The bridge's own HTTP API under ``/api/v1/`` (admin token required) and its OpenAPI document.

``GET /api/v1/state`` explains the bridge: the active alerts, every incident group's desired and
published state, what the planner holds back and why, and for each component the alerts and rule
behind its status. The OpenAPI document served at ``/api/v1/openapi.json`` is kept in sync with the
routes by a test.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.domain import Alert, Impact, PublishedGroup, format_duration
from bridge.engine.reconciler import GUARD_RELEASED, PAUSED, EvaluationLike, PassReport, Reconciler
from bridge.incidentio.client import StatusPageClient
from bridge.ingest.routes import Ingest
from bridge.metrics import Metrics
from bridge.observability import get_logger
from bridge.rules import RulesHolder
from bridge.settings import Settings
from bridge.store import Store


@dataclass
class Runtime:
    """Everything the running daemon holds; one per app."""

    settings: Settings
    clock: Callable[[], datetime]
    store: Store | None = None
    client: StatusPageClient | None = None
    rules: RulesHolder | None = None
    reconciler: Reconciler | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    readiness: dict[str, str] = field(default_factory=dict)
    """Component -> problem that makes the daemon unready (503); empty means ready."""
    warnings: dict[str, str] = field(default_factory=dict)
    """Component -> problem worth showing on /readyz that does not stop ingest."""
    ingest: Ingest | None = None
    metrics: Metrics = field(default_factory=Metrics)
    reconcile_task: Any = None
    """The running reconcile loop (or lease loop), for shutdown and tests."""
    scheduler: Any = None
    """APScheduler (AsyncIOScheduler): the clock that wakes the reconciler at known instants."""
    windows: Any = None
    """The maintenance windows' source (``bridge.web_maintenance.WindowSource``), set at start-up."""
    leader: bool = False
    """Whether this replica holds the reconcile lease (always, on SQLite)."""
    on_pass: Callable[[PassReport | None], None] | None = None
    """Sees every pass's report after the metrics (timeline tests trace the planner with it)."""

    def get_store(self) -> Store:
        if self.store is None:
            raise RuntimeError("store not open")
        return self.store

    def relevant(self, alert: Alert) -> bool:
        """Does any rule look at this alert? A pass keeps only these in memory."""
        return self.rules is not None and any(rule.matches(alert) for rule in self.rules.current.rules)

    def evaluate(self, alerts: Sequence[Alert]) -> EvaluationLike:
        if self.rules is None:
            return NO_RULES
        return self.rules.evaluate(alerts)


RUNTIME = web.AppKey("runtime", Runtime)


@dataclass(frozen=True)
class _NoRules:
    impacts: tuple[Impact, ...] = ()
    heartbeats: dict[str, Any] = field(default_factory=dict)


NO_RULES = _NoRules()

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _err(description: str) -> dict[str, Any]:
    """An error response of the admin API's OpenAPI document (every error body is ``Error``)."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "StatusBridge admin API", "version": "1"},
    "components": {
        "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["status", "message"],
                        "properties": {
                            "status": {"type": "integer"},
                            "message": {"type": "string"},
                            "field": {"type": "string"},
                        },
                    }
                },
            },
            "NewMaintenance": {
                "type": "object",
                "required": ["name", "status_page", "components", "start_at", "end_at"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "status_page": {"type": "string", "minLength": 1, "description": "name or ID"},
                    "components": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "minLength": 1},
                        "description": "names (Group/Name) or IDs",
                    },
                    "start_at": {"type": "string", "format": "date-time"},
                    "end_at": {"type": "string", "format": "date-time"},
                    "message": {"type": "string"},
                    "started_message": {"type": "string"},
                    "completed_message": {"type": "string"},
                    "notify_subscribers": {"type": "boolean"},
                    "automate": {"type": "boolean"},
                },
            },
            "Maintenance": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "phase": {"type": "string", "nullable": True},
                    "published": {"type": "object"},
                },
            },
            "State": {
                "type": "object",
                "required": [
                    "mode",
                    "leader",
                    "paused",
                    "blind",
                    "guard",
                    "taken_over",
                    "left_open",
                    "alerts",
                    "groups",
                ],
                "properties": {
                    "paused": {"type": "boolean"},
                    "blind": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "heartbeat rules gone quiet",
                    },
                    "guard": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "held publications and why",
                    },
                    "taken_over": {"type": "array", "items": {"type": "string"}},
                    "left_open": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "taken-over incidents still open although their alerts cleared",
                    },
                    "mode": {"type": "string", "enum": ["live", "shadow"]},
                    "leader": {"type": "boolean"},
                    "last_pass_at": {"type": "string", "format": "date-time", "nullable": True},
                    "alerts": {"type": "array", "items": {"type": "object"}},
                    "groups": {"type": "array", "items": {"$ref": "#/components/schemas/Group"}},
                },
            },
            "Group": {
                "type": "object",
                "required": ["key", "desired", "published", "actions", "held", "error"],
                "properties": {
                    "key": {"type": "string"},
                    "desired": {"type": "object", "nullable": True},
                    "published": {"type": "object", "nullable": True},
                    "actions": {"type": "array", "items": {"type": "object"}},
                    "held": {"type": "string", "nullable": True},
                    "error": {"type": "string", "nullable": True},
                },
            },
        },
    },
    "security": [{"admin": []}],
    "paths": {
        "/api/v1/state": {
            "get": {
                "summary": "Alerts, desired vs published state per group, and why each component has its status",
                "responses": {
                    "200": {
                        "description": "state",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/State"}}},
                    },
                    "401": _err("missing or wrong admin token"),
                    "403": _err("admin API disabled (no STATUSBRIDGE_ADMIN_TOKEN)"),
                },
            }
        },
        **{
            path: {
                "post": {
                    "summary": summary,
                    **(
                        {
                            "parameters": [
                                {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
                            ]
                        }
                        if "{key}" in path
                        else {}
                    ),
                    "responses": {
                        "200": {
                            "description": "done",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "401": _err("missing or wrong admin token"),
                        "404": _err("no such group"),
                        "409": _err("not applicable to the group's state"),
                    },
                }
            }
            for path, summary in (
                ("/api/v1/pause", "Pause publishing (the bridge still ingests and plans)"),
                ("/api/v1/resume", "Resume publishing"),
                ("/api/v1/guard/release", "Let the publications the blast-radius guard holds through"),
                ("/api/v1/groups/{key}/release", "Hand a taken-over group back to the bridge"),
                (
                    "/api/v1/groups/{key}/resolve",
                    "Resolve the group's incident now; it stays resolved until its alerts clear",
                ),
            )
        },
        "/api/v1/maintenances": {
            "post": {
                "summary": "Create a maintenance window (published on the page at once)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/NewMaintenance"}}
                    },
                },
                "responses": {
                    "201": {
                        "description": "created",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Maintenance"}}
                        },
                    },
                    "400": _err("not JSON"),
                    "401": _err("missing or wrong admin token"),
                    "422": _err("invalid window (names the field)"),
                },
            },
            "get": {
                "summary": "Every window (config and API) with what was published for it",
                "responses": {
                    "200": {
                        "description": "windows",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "maintenances": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Maintenance"},
                                        }
                                    },
                                }
                            }
                        },
                    }
                },
            },
        },
        "/api/v1/maintenances/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {
                "summary": "One window",
                "responses": {
                    "200": {
                        "description": "window",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Maintenance"}}
                        },
                    },
                    "404": _err("unknown"),
                },
            },
            "patch": {
                "summary": "Reschedule: name, start_at, end_at (UpdateStatusPageMaintenance; a notifying window also posts an update)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "start_at": {"type": "string", "format": "date-time"},
                                    "end_at": {"type": "string", "format": "date-time"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "rescheduled",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Maintenance"}}
                        },
                    },
                    "404": _err("unknown"),
                    "409": _err("a config window"),
                    "422": _err("invalid"),
                },
            },
            "delete": {
                "summary": "Cancel: delete a window that has not started, complete one that has",
                "responses": {
                    "200": {
                        "description": "cancelled",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "404": _err("unknown"),
                    "409": _err("a config window"),
                },
            },
        },
        "/api/v1/maintenances/{id}/complete": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "post": {
                "summary": "Finish a window in progress early",
                "responses": {
                    "200": {
                        "description": "completing",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Maintenance"}}
                        },
                    },
                    "404": _err("unknown"),
                    "409": _err("not in progress, or a config window"),
                },
            },
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
}


def _complete(doc: dict[str, Any]) -> None:
    """Said once for every admin operation: each may answer 401, and one with a body 400 (not
    JSON) and 422 (invalid, naming the field)."""
    for item in doc["paths"].values():
        for method, op in item.items():
            if method == "parameters" or op.get("security") == []:
                continue
            op["responses"].setdefault("401", _err("missing or wrong admin token"))
            if "requestBody" in op:
                op["responses"].setdefault("400", _err("not JSON"))
                op["responses"].setdefault("422", _err("invalid (names the field)"))


_complete(OPENAPI)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"status": status, "message": message}}, status=status)


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


def admin_only(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        token = request.app[RUNTIME].settings.admin_token
        if token is None:
            return _error(403, "the admin API is disabled: set STATUSBRIDGE_ADMIN_TOKEN")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.encode(), token.get_secret_value().encode()
        ):
            return web.json_response(
                {"error": {"status": 401, "message": "admin token required (Authorization: Bearer …)"}},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="statusbridge-admin"'},
            )
        return await handler(request)

    return wrapped


async def state(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    store = rt.get_store()
    alerts = await store.list_alerts(include_resolved=False, limit=1000)
    published = await store.load_groups()
    last = rt.reconciler.last if rt.reconciler is not None else None
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
            "mode": rt.settings.mode,
            "leader": rt.leader,
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


async def metrics(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    m = rt.metrics
    if rt.rules is not None:
        m.rules_ok.set(0 if rt.rules.last_error else 1)
    last = rt.reconciler.last if rt.reconciler is not None else None
    if last is not None:
        m.reconcile_lag.set(max(0.0, (rt.clock() - last.at).total_seconds()))
        m.coalesced.set(sum(1 for g in last.groups.values() if g.plan.held == "coalescing updates"))
        severity: dict[str, int] = {}
        for g in last.groups.values():
            for component, status in g.desired.components.items() if g.desired else ():
                severity[component] = max(severity.get(component, 0), status.severity)
        m.impacts.clear()
        for component, value in severity.items():
            m.impacts.labels(component).set(value)
        m.alerts_active.set(last.alerts)
        m.incidents_open.set(
            sum(1 for g in last.groups.values() if g.published is not None and g.published.open)
        )
        m.groups_held.set(sum(1 for g in last.groups.values() if g.plan.held))
    m.leader.set(1 if rt.leader else 0)
    if rt.store is not None:
        from bridge.engine.windows import load_published  # noqa: PLC0415 (scrape-time only)

        by_status: dict[str, int] = {}
        for pub in (await load_published(rt.store)).values():
            if pub.maintenance_id and not pub.deleted and pub.status:
                by_status[pub.status] = by_status.get(pub.status, 0) + 1
        m.maintenances.clear()
        for maintenance_status, count in by_status.items():
            m.maintenances.labels(maintenance_status).set(count)
    if rt.store is not None:
        m.left_open.set(sum(1 for g in (await rt.store.load_groups()).values() if g.left_open_incident))
    return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _done(what: str, **extra: Any) -> web.Response:
    return web.json_response({"ok": True, "action": what, **extra})


async def pause(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    await rt.get_store().set_control(PAUSED, {"at": rt.clock().isoformat()})
    log.warning("publishing paused by an admin")
    rt.changed.set()
    return _done("pause")


async def resume(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    await rt.get_store().set_control(PAUSED, None)
    log.warning("publishing resumed by an admin")
    rt.changed.set()
    return _done("resume")


async def release_guard(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    await rt.get_store().set_control(GUARD_RELEASED, rt.clock().isoformat())
    log.warning("blast-radius guard released by an admin")
    rt.changed.set()
    return _done("release_guard")


async def _group_or_404(request: web.Request) -> PublishedGroup | web.Response:
    key = request.match_info["key"]
    group = (await request.app[RUNTIME].get_store().load_groups()).get(key)
    if group is None:
        return _error(404, f"no incident group {key!r}")
    return group


async def release_group(request: web.Request) -> web.Response:
    """Hand a taken-over group back to the bridge (and forget an incident left open)."""
    rt = request.app[RUNTIME]
    group = await _group_or_404(request)
    if isinstance(group, web.Response):
        return group
    if not group.taken_over and not group.left_open_incident:
        return _error(409, f"group {group.key!r} is not taken over")
    released = replace(group, taken_over=False, taken_over_reason=None, left_open_incident=None)
    await rt.get_store().save_group_unfenced(released)
    log.warning("takeover released by an admin", group=group.key)
    rt.changed.set()
    return _done("release", group=group.key)


async def force_resolve(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    group = await _group_or_404(request)
    if isinstance(group, web.Response):
        return group
    if not group.open or group.taken_over:
        return _error(409, f"group {group.key!r} has no incident the bridge manages open")
    await rt.get_store().save_group_unfenced(replace(group, force_resolve=True))
    log.warning("force-resolve requested by an admin", group=group.key)
    rt.changed.set()
    return _done("resolve", group=group.key)


async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def admin_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/state", admin_only(state)),
        web.get("/api/v1/openapi.json", openapi),
        web.post("/api/v1/pause", admin_only(pause)),
        web.post("/api/v1/resume", admin_only(resume)),
        web.post("/api/v1/guard/release", admin_only(release_guard)),
        web.post("/api/v1/groups/{key:[^/]+}/release", admin_only(release_group)),
        web.post("/api/v1/groups/{key:[^/]+}/resolve", admin_only(force_resolve)),
        web.get("/metrics", metrics),
    ]
