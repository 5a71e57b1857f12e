"""The admin API for maintenance windows, and where the reconciler gets its windows from.

Windows come from config (``maintenances:`` in the rules files, or files of their own under the
rules path) and from this API (stored as JSON documents, ``source: api``). Only API windows can be
changed here; a config window is changed in its file. Every change only edits the window: the
reconciler publishes the difference at once (the change wakes it), so a reschedule, an early
completion or a cancellation goes through the same level-triggered path as a timed transition.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bridge.domain import PageDirectory
from bridge.engine.windows import load_published
from bridge.maintenance import (
    AnyWindow,
    MaintenanceConfigError,
    Messages,
    OneOffWindow,
    TargetError,
    load_maintenances,
    new_window_id,
    parse_window,
    phase,
    resolve_targets,
    window_from_json,
    window_to_json,
)
from bridge.maintenance import occurrences as window_occurrences
from bridge.observability import get_logger
from bridge.store import Store
from bridge.web import RUNTIME, Runtime, admin_only

log = get_logger(__name__)

FIELDS = {"name", "status_page", "components", "start_at", "end_at", "message", "notify_subscribers"}
OPTIONAL = {"started_message", "completed_message", "automate"}


class WindowSource:
    """Config windows (loaded at start and on rules reload) plus the API's, from the store."""

    def __init__(self, store: Store, rules_path: Path | None, directory: PageDirectory | None) -> None:
        self._store = store
        self._path = rules_path
        self.directory = directory
        self.config: list[AnyWindow] = []
        self.error: str | None = None
        self.reload()

    def reload(self) -> None:
        if self._path is None:
            return
        try:
            self.config = list(load_maintenances(self._path, directory=self.directory))
            self.error = None
        except MaintenanceConfigError as exc:
            self.error = str(exc)
            # The message names file, window and field; a traceback would hide it.
            log.error(  # noqa: TRY400
                "maintenance windows in the rules path are invalid; keeping the previous ones",
                error=self.error,
            )

    async def api_windows(self) -> list[AnyWindow]:
        return [window_from_json(json.dumps(data)) for data in (await self._store.load_windows()).values()]

    async def windows(self) -> list[AnyWindow]:
        return [*self.config, *await self.api_windows()]


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    error: dict[str, Any] = {"status": status, "message": message}
    if field:
        error["field"] = field
    return web.json_response({"error": error}, status=status)


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, RecursionError):
        return _error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return _error(422, "the body must be a JSON object")
    return body


def _validation(exc: ValidationError) -> web.Response:
    first = exc.errors()[0]
    # pydantic prefixes the union member (the window's kind) and type names: not fields of the body.
    field = ".".join(
        str(p) for p in first["loc"] if not str(p)[:1].isupper() and p not in ("one_off", "recurring")
    )
    return _error(422, first["msg"].removeprefix("Value error, "), field or None)


def _source(request: web.Request) -> tuple[Runtime, WindowSource]:
    rt = request.app[RUNTIME]
    assert rt.windows is not None, "the maintenance source is set up at start-up"
    return rt, rt.windows


async def _view(rt: Runtime, window: AnyWindow) -> dict[str, Any]:
    published = await load_published(rt.get_store())
    now = rt.clock()
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
    rt, source = _source(request)
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    unknown = set(body) - FIELDS - OPTIONAL
    if unknown:
        return _error(422, f"unknown field(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
    missing = {"name", "status_page", "components", "start_at", "end_at"} - set(body)
    if missing:
        field = sorted(missing)[0]
        return _error(422, f"{field} is required", field)
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
        return _error(422, str(exc))
    if source.directory is not None:
        try:
            resolve_targets(window, source.directory)
        except TargetError as exc:
            return _error(422, str(exc), exc.field)
    await rt.get_store().save_window(window.id, json.loads(window_to_json(window)))
    log.info("maintenance window created", window=window.id, name=window.name)
    rt.changed.set()
    return web.json_response(await _view(rt, window), status=201)


async def list_windows(request: web.Request) -> web.Response:
    rt, source = _source(request)
    return web.json_response({"maintenances": [await _view(rt, w) for w in await source.windows()]})


async def _find(request: web.Request) -> tuple[Runtime, AnyWindow] | web.Response:
    rt, source = _source(request)
    wid = request.match_info["id"]
    for window in await source.windows():
        if window.id == wid:
            return rt, window
    return _error(404, f"no maintenance window {wid!r}")


async def _api_window(request: web.Request) -> tuple[Runtime, OneOffWindow] | web.Response:
    """The window named in the path, if the API may change it (config windows change in files)."""
    found = await _find(request)
    if isinstance(found, web.Response):
        return found
    rt, window = found
    if window.source != "api" or not isinstance(window, OneOffWindow):
        return _error(409, f"window {window.id!r} is defined in a config file: change it there")
    return rt, window


async def show(request: web.Request) -> web.Response:
    found = await _find(request)
    if isinstance(found, web.Response):
        return found
    rt, window = found
    return web.json_response(await _view(rt, window))


async def reschedule(request: web.Request) -> web.Response:
    found = await _api_window(request)
    if isinstance(found, web.Response):
        return found
    rt, window = found
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    unknown = set(body) - {"name", "start_at", "end_at"}
    if unknown:
        return _error(
            422, f"only name, start_at and end_at can be changed (got {', '.join(sorted(unknown))})"
        )
    try:
        changed = window.model_validate({**window.model_dump(), **body})
    except ValidationError as exc:
        return _validation(exc)
    await rt.get_store().save_window(changed.id, json.loads(window_to_json(changed)))
    rt.changed.set()
    return web.json_response(await _view(rt, changed))


async def _end_now(rt: Runtime, window: OneOffWindow, now: datetime) -> OneOffWindow:
    ended = window.rescheduled(end_at=now)
    await rt.get_store().save_window(ended.id, json.loads(window_to_json(ended)))
    rt.changed.set()
    return ended


async def complete(request: web.Request) -> web.Response:
    found = await _api_window(request)
    if isinstance(found, web.Response):
        return found
    rt, window = found
    now = rt.clock()
    if not window.start_at <= now < window.end_at:
        return _error(409, "only a maintenance in progress can be completed early")
    return web.json_response(await _view(rt, await _end_now(rt, window, now)))


async def cancel(request: web.Request) -> web.Response:
    """Delete a window that has not started; complete one that has."""
    found = await _api_window(request)
    if isinstance(found, web.Response):
        return found
    rt, window = found
    now = rt.clock()
    if now < window.start_at:
        await rt.get_store().delete_window(window.id)
        rt.changed.set()
        return web.json_response({"id": window.id, "cancelled": True})
    if now < window.end_at:
        await _end_now(rt, window, now)
    return web.json_response({"id": window.id, "cancelled": False, "completed": True})


def maintenance_routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/maintenances", admin_only(create)),
        web.get("/api/v1/maintenances", admin_only(list_windows)),
        web.get("/api/v1/maintenances/{id}", admin_only(show)),
        web.patch("/api/v1/maintenances/{id}", admin_only(reschedule)),
        web.post("/api/v1/maintenances/{id}/complete", admin_only(complete)),
        web.delete("/api/v1/maintenances/{id}", admin_only(cancel)),
    ]
