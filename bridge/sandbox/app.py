"""The sandbox's HTTP face: incident.io's Status Page API V2 paths, a public page, test hooks.

Everything a test needs to drive the bridge through failure is here, at the network boundary:
``/_sandbox/faults`` makes requests fail (before or *after* applying them, to simulate an unknown
outcome) or slow down, ``/_sandbox/requests`` shows what the client sent, ``/_sandbox/clock`` moves
time for automated maintenances and the rate limit. The exchange hook lets tests validate every
request and response against the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import math
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bridge.sandbox.seed import WRITE_SCOPE, Seed, builtin_seed, parse_seed
from bridge.sandbox.state import (
    ApiError,
    Incident,
    Maintenance,
    SandboxState,
    incident_json,
    incident_update_json,
    iso,
    maintenance_json,
    maintenance_update_json,
    page_json,
)


@dataclass(frozen=True)
class Exchange:
    """One API request and its answer, verbatim (headers and bytes), for the OpenAPI contract tests."""

    method: str
    path: str
    query: dict[str, str]
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes


@dataclass
class Fault:
    """An injected failure for requests whose path starts with ``path_prefix`` (any method when
    ``method`` is None): ``count`` times, after ``latency`` seconds; ``after_processing`` applies the
    request before failing it (an outcome the client cannot know).
    """

    method: str | None
    path_prefix: str
    count: int
    status: int | None
    retry_after: float | None
    latency: float
    after_processing: bool
    until: datetime | None = None
    """With a duration: every matching request fails until then (an outage), whatever the count."""

    def matches(self, method: str, path: str) -> bool:
        """Whether the fault applies to a request of ``method`` on ``path``."""
        return (self.method is None or self.method == method) and path.startswith(self.path_prefix)


class SettableClock:
    """Real time plus an offset, or a fixed instant: ``/_sandbox/clock`` moves it."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        """The sandbox's now: the fixed instant when set, else real UTC time plus the offset."""
        return self.fixed if self.fixed is not None else datetime.now(UTC) + self.offset


@dataclass
class Bucket:
    """One API key's token bucket (incident.io's limit): ``capacity`` tokens, ``refill`` more per second."""

    capacity: float
    refill: float
    tokens: float
    at: datetime

    def take(self, now: datetime) -> float | None:
        """Take a token; ``None`` if granted, else the seconds until one is available."""
        elapsed = max(0.0, (now - self.at).total_seconds())
        self.tokens = min(self.capacity, self.tokens + elapsed * self.refill)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.refill


@dataclass
class Sandbox:
    """One fake incident.io: its seed, state, clock, rate limiting, faults and the log of API requests
    (the last 10,000).
    """

    seed: Seed
    state: SandboxState
    raw_seed: Mapping[str, Any]
    clock: Callable[[], datetime]
    settable: SettableClock | None
    rate_limit: bool
    rate_capacity: float
    rate_refill: float
    exchange_hook: Callable[[Exchange], None] | None
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))
    faults: list[Fault] = field(default_factory=list)
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def reset(self) -> None:
        """Back to the seed: pages as seeded, no incidents, maintenances, requests, faults or spent tokens."""
        self.seed = parse_seed(self.raw_seed)
        self.state = SandboxState(self.seed.pages, self.clock)
        self.requests.clear()
        self.faults.clear()
        self.buckets.clear()


SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json", headers=headers
    )


def _error(exc: ApiError, headers: Mapping[str, str] | None = None) -> web.Response:
    return _json(exc.body(str(uuid.uuid4())), exc.status, headers)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        # from None: the decoding error holds the whole request body (JSONDecodeError.doc).
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    return body


def _page_size(request: web.Request) -> int:
    raw = request.query.get("page_size", "25")
    try:
        size = int(raw)
    except ValueError as exc:
        raise ApiError(422, "invalid_value", "page_size must be an integer", field="page_size") from exc
    if not 1 <= size <= 250:
        raise ApiError(422, "invalid_value", "page_size must be between 1 and 250", field="page_size")
    return size


def _paginate(items: list[Any], request: web.Request, ids: list[str]) -> tuple[list[Any], dict[str, Any]]:
    size = _page_size(request)
    start = 0
    after = request.query.get("after")
    if after:
        if after not in ids:
            raise ApiError(422, "invalid_value", f"after: unknown cursor {after}", field="after")
        start = ids.index(after) + 1
    chunk = items[start : start + size]
    meta: dict[str, Any] = {"page_size": size}
    if start + size < len(items):
        meta["after"] = ids[start + size - 1]
    return chunk, meta


# --- middleware: log, exchange hook, errors, auth, rate limit, faults ----------------------------


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request: automated maintenances advance to now first; API requests (``/v1/``, ``/v2/``) are
    authenticated, rate limited, faulted and logged, and every error answer is an ErrorResponse.
    """
    sb = request.app[SANDBOX_KEY]
    # incident.io moves automated maintenances with the clock, and a completion resets components
    # of the incidents on them: every request, of any kind, sees that done up to now.
    sb.state.advance_automation()
    is_api = request.path.startswith(("/v1/", "/v2/"))
    body = await request.read() if request.can_read_body else b""
    response: web.StreamResponse
    try:
        response = await _handle_api(request, handler, sb) if is_api else await handler(request)
    except ApiError as exc:
        response = _error(exc)
    except web.HTTPException as exc:
        status = exc.status
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "invalid_request_error")
        response = _error(ApiError(status, code, exc.reason or "error"))
    if is_api:
        try:
            logged_body = json.loads(body) if body else None
        except ValueError:
            logged_body = None
        sb.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "status": response.status,
                "body": logged_body,
                "at": iso(sb.clock()),
            }
        )
        if sb.exchange_hook is not None:
            resp_body = response.body if isinstance(response, web.Response) else b""
            sb.exchange_hook(
                Exchange(
                    request.method,
                    request.path,
                    dict(request.query),
                    dict(request.headers),
                    body,
                    response.status,
                    dict(response.headers),
                    bytes(resp_body) if isinstance(resp_body, bytes | bytearray) else b"",
                )
            )
    return response


async def _handle_api(request: web.Request, handler: Handler, sb: Sandbox) -> web.StreamResponse:
    auth = request.headers.get("Authorization", "")
    if not auth:
        raise ApiError(401, "missing_authorization_material", "No authorization material provided in request")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or token not in sb.seed.keys:
        raise ApiError(401, "invalid_authorization", "The API key is not valid")
    headers: dict[str, str] = {}
    if sb.rate_limit:
        now = sb.clock()
        bucket = sb.buckets.setdefault(token, Bucket(sb.rate_capacity, sb.rate_refill, sb.rate_capacity, now))
        wait = bucket.take(now)
        reset = int((now + timedelta(seconds=(bucket.capacity - bucket.tokens) / bucket.refill)).timestamp())
        headers = {
            "X-RateLimit-Limit": f"{int(bucket.capacity)}, {int(bucket.capacity)};window=60",
            "X-RateLimit-Remaining": str(max(0, int(bucket.tokens))),
            "X-RateLimit-Reset": str(reset),
        }
        if wait is not None:
            retry = max(1, math.ceil(wait))
            exc = ApiError(
                429,
                "too_many_requests",
                "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                extra={
                    "rate_limit": {
                        "name": "api_key_name",
                        "limit": int(bucket.capacity),
                        "remaining": 0,
                        "retry_after": iso(now + timedelta(seconds=retry)),
                    }
                },
            )
            return _error(exc, {**headers, "Retry-After": str(retry)})
    if request.method not in ("GET", "HEAD") and WRITE_SCOPE not in sb.seed.keys[token]:
        raise ApiError(403, "resource_forbidden", f"this API key lacks the {WRITE_SCOPE} scope")
    now = sb.clock()
    sb.faults[:] = [f for f in sb.faults if f.until is None or now < f.until]
    # A dashboard user (the timeline's human) is not on the API path that faults model.
    dashboard = request.headers.get("X-Sandbox-Dashboard") == "1"
    fault = (
        None if dashboard else next((f for f in sb.faults if f.matches(request.method, request.path)), None)
    )
    if fault is not None and fault.until is None:
        fault.count -= 1
        if fault.count <= 0:
            sb.faults.remove(fault)
    if fault is not None:
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.status is not None:
            if fault.after_processing:
                with contextlib.suppress(ApiError):
                    await handler(request)
            return _fault_response(fault, sb)
    response = await handler(request)
    response.headers.update(headers)
    return response


def _fault_response(fault: Fault, sb: Sandbox) -> web.Response:
    assert fault.status is not None
    if fault.status == 429:
        retry = fault.retry_after if fault.retry_after is not None else 1
        exc = ApiError(
            429,
            "too_many_requests",
            "Too many requests hit the API too quickly.",
            extra={
                "rate_limit": {
                    "name": "api_key_name",
                    "limit": int(sb.rate_capacity),
                    "remaining": 0,
                    "retry_after": iso(sb.clock() + timedelta(seconds=retry)),
                }
            },
        )
        return _error(exc, {"Retry-After": str(math.ceil(retry))})
    code = "internal_error" if fault.status >= 500 else "injected_fault"
    return _error(ApiError(fault.status, code, f"injected fault {fault.status}"))


# --- API handlers ------------------------------------------------------------------------------


def _sb(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def list_status_pages(request: web.Request) -> web.Response:
    """Fakes ListStatusPages (``GET /v2/status_pages``), paginated like the API."""
    sb = _sb(request)
    pages = list(sb.state.pages.values())
    chunk, meta = _paginate(pages, request, [p.id for p in pages])
    return _json({"status_pages": [page_json(p, _base(request)) for p in chunk], "pagination_meta": meta})


async def show_status_page(request: web.Request) -> web.Response:
    """Fakes ShowStatusPage; 404 for an unknown page."""
    page = _sb(request).state.page(request.match_info["status_page_id"], not_found=404)
    return _json({"status_page": page_json(page, _base(request))})


async def show_structure(request: web.Request) -> web.Response:
    """Fakes ShowStatusPageStructure (``GET /v2/status_page_structures/{id}``); 404 for an unknown page."""
    page = _sb(request).state.page(request.match_info["status_page_id"], not_found=404)
    return _json(
        {
            "current_structure": {"items": page.structure},
            "display_uptime_mode": "chart_and_percentage",
            "management_meta": {"managed_by": "dashboard", "annotations": {}},
        }
    )


def _list_filter(request: web.Request) -> tuple[str, str | None]:
    page_id = request.query.get("status_page_id")
    if not page_id:
        raise ApiError(422, "is_required", "status_page_id is required", field="status_page_id")
    _sb(request).state.page(page_id)
    return page_id, request.query.get("component_id")


async def list_incidents(request: web.Request) -> web.Response:
    """Fakes ListStatusPageIncidents: newest first, filtered by ``status_page_id`` and ``component_id``."""
    page_id, component = _list_filter(request)
    incs = [
        i
        for i in reversed(_sb(request).state.incidents.values())
        if i.page_id == page_id and (component is None or component in i.current)
    ]
    chunk, meta = _paginate(incs, request, [i.id for i in incs])
    return _json({"status_page_incidents": [incident_json(i) for i in chunk], "pagination_meta": meta})


async def create_incident(request: web.Request) -> web.Response:
    """Fakes CreateStatusPageIncident (201): the body is checked as the spec's payload (422 naming the
    field); a repeated idempotency key returns the first incident."""
    inc = _sb(request).state.create_incident(await _body(request))
    return _json({"status_page_incident": incident_json(inc)}, 201)


async def show_incident(request: web.Request) -> web.Response:
    """Fakes ShowStatusPageIncident; 404 for an unknown (or deleted) incident."""
    inc = _sb(request).state.incident(request.match_info["status_page_incident_id"])
    return _json({"status_page_incident": incident_json(inc)})


async def update_incident(request: web.Request) -> web.Response:
    """Fakes UpdateStatusPageIncident (a rename); 404 for an unknown incident, 422 for a bad name."""
    sb = _sb(request)
    inc_id = request.match_info["status_page_incident_id"]
    sb.state.incident(inc_id)
    inc = sb.state.rename_incident(inc_id, await _body(request))
    return _json({"status_page_incident": incident_json(inc)})


async def create_incident_update(request: web.Request) -> web.Response:
    """Fakes CreateStatusPageIncidentUpdate (201): the body is checked as the spec's payload (422 naming
    the field); a resolved incident, or one with 100 updates, is refused."""
    inc, update = _sb(request).state.create_incident_update(await _body(request))
    return _json({"status_page_incident_update": incident_update_json(inc, update)}, 201)


async def list_maintenances(request: web.Request) -> web.Response:
    """Fakes ListStatusPageMaintenances: newest first, filtered by ``status_page_id`` and ``component_id``."""
    page_id, component = _list_filter(request)
    sb = _sb(request)
    ms = [
        m
        for m in reversed(sb.state.maintenances.values())
        if m.page_id == page_id and (component is None or component in m.components)
    ]
    chunk, meta = _paginate(ms, request, [m.id for m in ms])
    return _json({"status_page_maintenances": [maintenance_json(m) for m in chunk], "pagination_meta": meta})


async def create_maintenance(request: web.Request) -> web.Response:
    """Fakes CreateStatusPageMaintenance (201): the body is checked as the spec's payload (422 naming the
    field); a repeated idempotency key returns the first window."""
    m = _sb(request).state.create_maintenance(await _body(request))
    return _json({"status_page_maintenance": maintenance_json(m)}, 201)


async def show_maintenance(request: web.Request) -> web.Response:
    """Fakes ShowStatusPageMaintenance; 404 for an unknown (or deleted) window."""
    m = _sb(request).state.maintenance(request.match_info["status_page_maintenance_id"])
    return _json({"status_page_maintenance": maintenance_json(m)})


async def update_maintenance(request: web.Request) -> web.Response:
    """Fakes UpdateStatusPageMaintenance (rename and reschedule); 404 for an unknown window, 422 when
    ``end_at`` is not after ``start_at``.
    """
    sb = _sb(request)
    mid = request.match_info["status_page_maintenance_id"]
    sb.state.maintenance(mid)
    m = sb.state.update_maintenance(mid, await _body(request))
    return _json({"status_page_maintenance": maintenance_json(m)})


async def delete_maintenance(request: web.Request) -> web.Response:
    """Fakes DeleteStatusPageMaintenance (204); 404 for an unknown window."""
    _sb(request).state.delete_maintenance(request.match_info["status_page_maintenance_id"])
    return web.Response(status=204)


async def create_maintenance_update(request: web.Request) -> web.Response:
    """Fakes CreateStatusPageMaintenanceUpdate (201): the body is checked as the spec's payload (422
    naming the field); a complete window is refused."""
    sb = _sb(request)
    body = await _body(request)
    update = sb.state.create_maintenance_update(body)
    m = sb.state.maintenances[str(body["status_page_maintenance_id"])]
    return _json({"status_page_maintenance_update": maintenance_update_json(m, update)}, 201)


# --- public page and widget ----------------------------------------------------------------------

STATUS_LABELS = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "full_outage": "Full outage",
    "under_maintenance": "Under maintenance",
}


def _affected(sb: Sandbox, page_id: str, ids: list[str]) -> list[dict[str, Any]]:
    page = sb.state.pages[page_id]
    out = []
    for cid in ids:
        comp = page.components.get(cid)
        if comp is None:
            continue
        item: dict[str, Any] = {
            "id": cid,
            "name": comp.name,
            "current_status": sb.state.component_status(page_id, cid),
        }
        if comp.group:
            item["group_name"] = comp.group
        out.append(item)
    return out


def widget_summary(sb: Sandbox, page_id: str, base: str) -> dict[str, Any]:
    """The Widget API's summary of one page (ongoing incidents and maintenances, with their components),
    as incident.io's public ``/api/v1/summary`` shapes it.
    """
    page = sb.state.pages[page_id]
    url = f"{base}/status/{page_id}"
    ongoing = []
    for inc in reversed(sb.state.incidents.values()):
        if inc.page_id != page_id or not inc.ongoing:
            continue
        impacted = [c for c, s in inc.current.items() if s != "operational"]
        worst = max((inc.current[c] for c in impacted), key=lambda s: STATUS_ORDER[s], default=None)
        item: dict[str, Any] = {
            "id": inc.id,
            "name": inc.name,
            "status": inc.status,
            "url": f"{url}/incidents/{inc.id}",
            "last_update_at": iso(inc.updates[-1].published_at),
            "last_update_message": inc.updates[-1].message,
            "affected_components": _affected(sb, page_id, impacted),
        }
        if worst is not None:
            item["current_worst_impact"] = worst
        ongoing.append(item)

    def maint(m: Maintenance) -> dict[str, Any]:
        return {
            "id": m.id,
            "name": m.name,
            "status": m.status,
            "url": f"{url}/maintenances/{m.id}",
            "last_update_at": iso(m.updates[-1].published_at),
            "last_update_message": m.updates[-1].message,
            "affected_components": _affected(sb, page_id, m.components),
        }

    ms = [m for m in reversed(sb.state.maintenances.values()) if m.page_id == page_id]
    return {
        "page_title": page.name,
        "page_url": url,
        "ongoing_incidents": ongoing,
        "in_progress_maintenances": [
            {**maint(m), "started_at": iso(m.start_at), "scheduled_end_at": iso(m.end_at)}
            for m in ms
            if m.status == "maintenance_in_progress"
        ],
        "scheduled_maintenances": [
            {**maint(m), "starts_at": iso(m.start_at), "ends_at": iso(m.end_at)}
            for m in ms
            if m.status == "maintenance_scheduled"
        ],
    }


STATUS_ORDER = {"operational": 0, "degraded_performance": 1, "partial_outage": 2, "full_outage": 3}

PAGE_CSS = """
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} .comp{display:flex;justify-content:space-between;padding:.45rem .6rem;border-bottom:1px solid #eee}
.operational{color:#1a7f37}.degraded_performance{color:#b08800}.partial_outage{color:#d1640a}
.full_outage{color:#cf222e}.under_maintenance{color:#0969da}
.card{border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}
.update{margin:.5rem 0 .5rem 1rem}.muted{color:#666;font-size:.9em}
"""


def _incident_html(inc: Incident) -> str:
    updates = "".join(
        f'<div class="update"><strong>{html.escape(u.status)}</strong> — {html.escape(u.message)}'
        f' <span class="muted">{iso(u.published_at)}</span></div>'
        for u in reversed(inc.updates)
    )
    return (
        f'<div class="card incident" data-incident-id="{html.escape(inc.id)}">'
        f'<h3>{html.escape(inc.name)} <span class="muted">{html.escape(inc.status)}</span></h3>{updates}</div>'
    )


def _maintenance_html(m: Maintenance) -> str:
    return (
        f'<div class="card maintenance" data-maintenance-id="{html.escape(m.id)}">'
        f'<h3>{html.escape(m.name)} <span class="muted">{html.escape(m.status)}</span></h3>'
        f'<div class="muted">{iso(m.start_at)} → {iso(m.end_at)}</div>'
        f"<div>{html.escape(m.updates[-1].message)}</div></div>"
    )


async def public_page(request: web.Request) -> web.Response:
    """The page as a browser sees it (HTML, every component's status); 404 for an unknown page."""
    sb = _sb(request)
    page_id = request.match_info["status_page_id"]
    if page_id not in sb.state.pages:
        raise web.HTTPNotFound(reason=f"status page {page_id} not found")
    page = sb.state.pages[page_id]
    comps = "".join(
        f'<div class="comp" data-component-id="{html.escape(c.id)}"><span>{html.escape(c.name if not c.group else c.group + " / " + c.name)}</span>'
        f'<span class="{s}">{STATUS_LABELS[s]}</span></div>'
        for c in page.components.values()
        for s in [sb.state.component_status(page_id, c.id)]
    )
    incs = [i for i in reversed(sb.state.incidents.values()) if i.page_id == page_id]
    ongoing = "".join(_incident_html(i) for i in incs if i.ongoing) or "<p>No ongoing incidents.</p>"
    resolved = "".join(_incident_html(i) for i in [i for i in incs if not i.ongoing][:10])
    ms = [m for m in reversed(sb.state.maintenances.values()) if m.page_id == page_id]
    active = (
        "".join(_maintenance_html(m) for m in ms if m.status != "maintenance_complete")
        or "<p>None scheduled.</p>"
    )
    body = (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(page.name)}</title>"
        f"<style>{PAGE_CSS}</style></head><body><h1>{html.escape(page.name)}</h1>"
        f'<p class="muted">StatusBridge sandbox — not a real status page</p>'
        f"<h2>Components</h2>{comps}<h2>Ongoing incidents</h2>{ongoing}"
        f"<h2>Maintenance</h2>{active}<h2>Recently resolved</h2>{resolved or '<p>None.</p>'}</body></html>"
    )
    return web.Response(text=body, content_type="text/html")


async def widget(request: web.Request) -> web.Response:
    """Fakes the public Widget API (``/status/{id}/api/v1/summary``), cacheable for 10 s; 404 for an
    unknown page.
    """
    sb = _sb(request)
    page_id = request.match_info["status_page_id"]
    if page_id not in sb.state.pages:
        raise web.HTTPNotFound(reason=f"status page {page_id} not found")
    return _json(widget_summary(sb, page_id, _base(request)), headers={"Cache-Control": "max-age=10"})


async def index(request: web.Request) -> web.Response:
    """An HTML list of the seeded pages, linking each public page."""
    sb = _sb(request)
    links = "".join(
        f'<li><a href="/status/{html.escape(p.id)}">{html.escape(p.name)}</a></li>'
        for p in sb.state.pages.values()
    )
    return web.Response(
        text=f"<!doctype html><title>Sandbox</title><h1>Status pages</h1><ul>{links}</ul>",
        content_type="text/html",
    )


# --- test hooks ----------------------------------------------------------------------------------


async def hook_requests(request: web.Request) -> web.Response:
    """``GET /_sandbox/requests``: the API requests logged so far, oldest first, with status and JSON body."""
    return _json(list(_sb(request).requests))


async def hook_faults(request: web.Request) -> web.Response:
    """``POST /_sandbox/faults`` adds a Fault from the JSON body (422 naming a bad value); ``DELETE``
    clears them. Answers how many faults are armed.
    """
    sb = _sb(request)
    if request.method == "DELETE":
        sb.faults.clear()
        return _json({"faults": 0})
    body = await _body(request)
    try:
        fault = Fault(
            method=body.get("method"),
            path_prefix=str(body.get("path_prefix", "/")),
            count=int(body.get("count", 1)),
            status=None if body.get("status") is None else int(body["status"]),
            retry_after=None if body.get("retry_after") is None else float(body["retry_after"]),
            latency=float(body.get("latency", 0)),
            after_processing=bool(body.get("after_processing", False)),
        )
        duration = None if body.get("duration") is None else float(body["duration"])
    except (TypeError, ValueError) as exc:
        raise ApiError(422, "invalid_value", f"bad fault: {exc}") from exc
    if duration is not None:
        if not duration > 0:
            raise ApiError(422, "invalid_value", "bad fault: duration must be positive")
        fault.until = sb.clock() + timedelta(seconds=duration)
    sb.faults.append(fault)
    return _json({"faults": len(sb.faults)})


async def hook_reset(request: web.Request) -> web.Response:
    """``POST /_sandbox/reset``: back to the seed (Sandbox.reset)."""
    _sb(request).reset()
    return _json({"reset": True})


async def hook_clock(request: web.Request) -> web.Response:
    """``POST /_sandbox/clock``: ``now`` fixes the clock (RFC 3339), ``advance`` moves it (seconds);
    409 when the sandbox was given its own clock.
    """
    sb = _sb(request)
    if sb.settable is None:
        raise ApiError(409, "conflict", "this sandbox was given its own clock")
    body = await _body(request)
    if "now" in body:
        try:
            sb.settable.fixed = datetime.fromisoformat(str(body["now"])).astimezone(UTC)
        except ValueError as exc:
            raise ApiError(422, "invalid_value", "now must be an RFC 3339 time", field="now") from exc
    if "advance" in body:
        try:
            delta = timedelta(seconds=float(body["advance"]))
        except (TypeError, ValueError) as exc:
            raise ApiError(422, "invalid_value", "advance must be seconds", field="advance") from exc
        if sb.settable.fixed is not None:
            sb.settable.fixed += delta
        else:
            sb.settable.offset += delta
    return _json({"now": iso(sb.clock())})


async def hook_state(request: web.Request) -> web.Response:
    """``GET /_sandbox/state``: every incident and maintenance as the API shows them, and each
    component's status on each page.
    """
    sb = _sb(request)
    return _json(
        {
            "now": iso(sb.clock()),
            "incidents": [incident_json(i) for i in sb.state.incidents.values()],
            "maintenances": [maintenance_json(m) for m in sb.state.maintenances.values()],
            "components": {
                pid: {cid: sb.state.component_status(pid, cid) for cid in p.components}
                for pid, p in sb.state.pages.items()
            },
        }
    )


def create_app(
    seed: Mapping[str, Any] | None = None,
    *,
    rate_limit: bool = False,
    rate_capacity: float | None = None,
    rate_refill: float | None = None,
    clock: Callable[[], datetime] | None = None,
    exchange_hook: Callable[[Exchange], None] | None = None,
) -> web.Application:
    """The sandbox application over ``seed`` (the built-in seed when None), with the ``/_sandbox``
    hooks; a clock of its own (settable) unless ``clock`` is given. Raises SeedError for a bad seed.
    """
    raw = dict(seed if seed is not None else builtin_seed())
    parsed = parse_seed(raw)
    settable = SettableClock() if clock is None else None
    the_clock: Callable[[], datetime] = clock or settable  # type: ignore[assignment]
    seed_rate = parsed.rate_limit
    sb = Sandbox(
        seed=parsed,
        state=SandboxState(parsed.pages, the_clock),
        raw_seed=raw,
        clock=the_clock,
        settable=settable,
        rate_limit=rate_limit or bool(seed_rate),
        rate_capacity=rate_capacity or seed_rate.get("capacity", 1200.0),
        rate_refill=rate_refill or seed_rate.get("refill_per_second", 20.0),
        exchange_hook=exchange_hook,
    )
    app = web.Application(middlewares=[api_middleware], client_max_size=1024 * 1024)
    app[SANDBOX_KEY] = sb
    r = app.router
    r.add_get("/", index)
    r.add_get("/v2/status_pages", list_status_pages)
    r.add_get("/v2/status_pages/{status_page_id}", show_status_page)
    r.add_get("/v2/status_page_structures/{status_page_id}", show_structure)
    r.add_get("/v2/status_page_incidents", list_incidents)
    r.add_post("/v2/status_page_incidents", create_incident)
    r.add_get("/v2/status_page_incidents/{status_page_incident_id}", show_incident)
    r.add_put("/v2/status_page_incidents/{status_page_incident_id}", update_incident)
    r.add_post("/v2/status_page_incident_updates", create_incident_update)
    r.add_get("/v2/status_page_maintenances", list_maintenances)
    r.add_post("/v2/status_page_maintenances", create_maintenance)
    r.add_get("/v2/status_page_maintenances/{status_page_maintenance_id}", show_maintenance)
    r.add_put("/v2/status_page_maintenances/{status_page_maintenance_id}", update_maintenance)
    r.add_delete("/v2/status_page_maintenances/{status_page_maintenance_id}", delete_maintenance)
    r.add_post("/v2/status_page_maintenance_updates", create_maintenance_update)
    r.add_get("/status/{status_page_id}", public_page)
    r.add_get("/status/{status_page_id}/api/v1/summary", widget)
    r.add_get("/_sandbox/requests", hook_requests)
    r.add_post("/_sandbox/faults", hook_faults)
    r.add_delete("/_sandbox/faults", hook_faults)
    r.add_post("/_sandbox/reset", hook_reset)
    r.add_post("/_sandbox/clock", hook_clock)
    r.add_get("/_sandbox/state", hook_state)
    return app
