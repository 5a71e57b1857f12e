"""The admin API for maintenance windows (``/api/v1/maintenances``, in the admin sub-application).

Windows come from config (``maintenances:`` in the rules files, or files of their own under the
rules path) and from this API (stored as JSON documents, ``source: api``), and reach the reconciler
through ``bridge.engine.windows.WindowSource``. Only API windows can be changed here; a config window is changed in its file. Every change only edits the window: the
reconciler publishes the difference at once (the change wakes it), so a reschedule, an early
completion or a cancellation goes through the same level-triggered path as a timed transition.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.helpers import ChainMapProxy
from pydantic import ValidationError

from bridge.engine.windows import WindowSource, load_published
from bridge.maintenance import (
    AnyWindow,
    Messages,
    OneOffWindow,
    TargetError,
    new_window_id,
    parse_window,
    phase,
    resolve_targets,
    window_to_json,
)
from bridge.maintenance import occurrences as window_occurrences
from bridge.observability import get_logger
from bridge.web.errors import error_response
from bridge.web.resources import CHANGED, CLOCK, STORE, WINDOWS

log = get_logger(__name__)

FIELDS = {"name", "status_page", "components", "start_at", "end_at", "message", "notify_subscribers"}
OPTIONAL = {"started_message", "completed_message", "automate"}


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, RecursionError):
        return error_response(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return error_response(422, "the body must be a JSON object")
    return body


def _validation(exc: ValidationError) -> web.Response:
    first = exc.errors()[0]
    # pydantic prefixes the union member (the window's kind) and type names: not fields of the body.
    field = ".".join(
        str(p) for p in first["loc"] if not str(p)[:1].isupper() and p not in ("one_off", "recurring")
    )
    return error_response(422, first["msg"].removeprefix("Value error, "), field or None)


Resources = ChainMapProxy
"""The root app's resources, as a sub-application's handler sees them (``request.config_dict``)."""


def _source(request: web.Request) -> tuple[Resources, WindowSource]:
    cfg = request.config_dict
    return cfg, cfg[WINDOWS]


async def _view(cfg: Resources, window: AnyWindow) -> dict[str, Any]:
    published = await load_published(cfg[STORE])
    now = cfg[CLOCK]()
    data: dict[str, Any] = json.loads(window_to_json(window))
    data["published"] = {
        k.split(":", 1)[1]: {"maintenance_id": p.maintenance_id, "status": p.status}
        for k, p in published.items()
        if p.window_id == window.id
    }
    if isinstance(window, OneOffWindow):
        found = window_occurrences(window, window.start_at, window.end_at)
        data["phase"] = phase(found[0], now).value if found else None
    return data


async def create(request: web.Request) -> web.Response:
    """``POST /api/v1/maintenances``: a one-off window (201 with its view); 422 names the field."""
    cfg, source = _source(request)
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    unknown = set(body) - FIELDS - OPTIONAL
    if unknown:
        return error_response(422, f"unknown field(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
    missing = {"name", "status_page", "components", "start_at", "end_at"} - set(body)
    if missing:
        field = sorted(missing)[0]
        return error_response(422, f"{field} is required", field)
    messages = {
        k: v
        for k, v in (
            ("scheduled", body.get("message")),
            ("started", body.get("started_message")),
            ("completed", body.get("completed_message")),
        )
        if v is not None
    }
    try:
        window = parse_window(
            {
                "id": new_window_id(),
                "source": "api",
                "name": body["name"],
                "status_page": body["status_page"],
                "components": body["components"],
                "start_at": body["start_at"],
                "end_at": body["end_at"],
                "messages": Messages(**messages).model_dump(),
                "notify_subscribers": body.get("notify_subscribers", False),
                "automate": body.get("automate", False),
            }
        )
    except ValidationError as exc:
        return _validation(exc)
    except TypeError as exc:
        return error_response(422, str(exc))
    if source.directory is not None:
        try:
            resolve_targets(window, source.directory)
        except TargetError as exc:
            return error_response(422, str(exc), exc.field)
    await cfg[STORE].save_window(window.id, json.loads(window_to_json(window)))
    log.info("maintenance window created", window=window.id, name=window.name)
    cfg[CHANGED].set()
    return web.json_response(await _view(cfg, window), status=201)


async def list_windows(request: web.Request) -> web.Response:
    """``GET /api/v1/maintenances``: every window, config and API, with what was published."""
    cfg, source = _source(request)
    return web.json_response({"maintenances": [await _view(cfg, w) for w in await source.windows()]})


async def _find(request: web.Request) -> tuple[Resources, AnyWindow] | web.Response:
    cfg, source = _source(request)
    wid = request.match_info["id"]
    for window in await source.windows():
        if window.id == wid:
            return cfg, window
    return error_response(404, f"no maintenance window {wid!r}")


async def _api_window(request: web.Request) -> tuple[Resources, OneOffWindow] | web.Response:
    """The window named in the path, if the API may change it (config windows change in files)."""
    found = await _find(request)
    if isinstance(found, web.Response):
        return found
    cfg, window = found
    if window.source != "api" or not isinstance(window, OneOffWindow):
        return error_response(409, f"window {window.id!r} is defined in a config file: change it there")
    return cfg, window


async def show(request: web.Request) -> web.Response:
    """``GET /api/v1/maintenances/{id}``: one window's view, or 404."""
    found = await _find(request)
    if isinstance(found, web.Response):
        return found
    cfg, window = found
    return web.json_response(await _view(cfg, window))


async def reschedule(request: web.Request) -> web.Response:
    """``PATCH /api/v1/maintenances/{id}``: a new name, start or end for an API window."""
    found = await _api_window(request)
    if isinstance(found, web.Response):
        return found
    cfg, window = found
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    unknown = set(body) - {"name", "start_at", "end_at"}
    if unknown:
        return error_response(
            422, f"only name, start_at and end_at can be changed (got {', '.join(sorted(unknown))})"
        )
    try:
        changed = window.model_validate({**window.model_dump(), **body})
    except ValidationError as exc:
        return _validation(exc)
    await cfg[STORE].save_window(changed.id, json.loads(window_to_json(changed)))
    cfg[CHANGED].set()
    return web.json_response(await _view(cfg, changed))


async def _end_now(cfg: Resources, window: OneOffWindow, now: datetime) -> OneOffWindow:
    ended = window.rescheduled(end_at=now)
    await cfg[STORE].save_window(ended.id, json.loads(window_to_json(ended)))
    cfg[CHANGED].set()
    return ended


async def complete(request: web.Request) -> web.Response:
    """``POST /api/v1/maintenances/{id}/complete``: ends a window in progress now; 409 otherwise."""
    found = await _api_window(request)
    if isinstance(found, web.Response):
        return found
    cfg, window = found
    now = cfg[CLOCK]()
    if not window.start_at <= now < window.end_at:
        return error_response(409, "only a maintenance in progress can be completed early")
    return web.json_response(await _view(cfg, await _end_now(cfg, window, now)))


async def cancel(request: web.Request) -> web.Response:
    """Delete a window that has not started; complete one that has."""
    found = await _api_window(request)
    if isinstance(found, web.Response):
        return found
    cfg, window = found
    now = cfg[CLOCK]()
    if now < window.start_at:
        await cfg[STORE].delete_window(window.id)
        cfg[CHANGED].set()
        return web.json_response({"id": window.id, "cancelled": True})
    if now < window.end_at:
        await _end_now(cfg, window, now)
    return web.json_response({"id": window.id, "cancelled": False, "completed": True})


def routes() -> list[web.RouteDef]:
    """The maintenance routes, relative to the admin sub-application (which checks the token)."""
    return [
        web.post("/maintenances", create),
        web.get("/maintenances", list_windows),
        web.get("/maintenances/{id}", show),
        web.patch("/maintenances/{id}", reschedule),
        web.post("/maintenances/{id}/complete", complete),
        web.delete("/maintenances/{id}", cancel),
    ]
