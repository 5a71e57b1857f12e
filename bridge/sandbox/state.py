"""The sandbox's in-memory status pages: incidents, maintenances and their semantics.

Written from incident.io's OpenAPI document (``tests/fixtures/openapi/``, with what it leaves open in
``bridge/incidentio/README.md``), never from our client, so that the two can only agree by both
following the spec. Every operation validates first and mutates after, so a rejected request
changes nothing. Choices for what the spec leaves open:

- an idempotent replay (same ``idempotency_key`` on the same page) answers 201 with the original
  body, whatever the new body says;
- lists are newest first and include resolved incidents and completed maintenances;
- a component's public status is the worst over its ongoing incidents; ``under_maintenance`` shows
  only when no ongoing incident impacts it;
- updates to a resolved incident or a completed maintenance are refused (422); a rename is allowed;
- automated maintenances move with the clock whenever state is read (no timers).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "full_outage")
MAINTENANCE_STATUSES = ("maintenance_scheduled", "maintenance_in_progress", "maintenance_complete")
MAINTENANCE_COMPONENT_STATUSES = ("operational", "under_maintenance")
SEVERITY = {s: i for i, s in enumerate(COMPONENT_STATUSES)}
MAX_UPDATES = 100
MAX_NAME = 200
MAX_MESSAGE = 4096
NOTIFY_LIMIT = 1000

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_counter = itertools.count()


def new_id() -> str:
    """A ULID-like id: time-ordered so that ids sort like creation order within a process."""
    t = int(time.time() * 1000) * 1024 + next(_counter) % 1024
    head = "".join(_CROCKFORD[(t >> (5 * i)) & 31] for i in reversed(range(12)))
    return head + "".join(secrets.choice(_CROCKFORD) for _ in range(14))


def iso(ts: datetime) -> str:
    """``ts`` as RFC 3339 UTC with a ``Z`` suffix, as the API writes times."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ApiError(Exception):
    """An error answer in the spec's ErrorResponse shape."""

    TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "resource_forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        422: "validation_error",
        429: "too_many_requests",
        500: "api_error",
    }

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = dict(extra or {})

    def body(self, request_id: str) -> dict[str, Any]:
        """The ErrorResponse body for this error, with ``request_id``; the field, when set, as ``source``."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["source"] = {"field": self.field, "pointer": "/" + self.field.replace(".", "/")}
        return {
            "type": self.TYPES.get(self.status, "invalid_request_error"),
            "status": self.status,
            "request_id": request_id,
            "errors": [error],
            **self.extra,
        }


def invalid(field: str, message: str, code: str = "invalid_value") -> ApiError:
    """A 422 ``validation_error`` about ``field`` (the caller raises it)."""
    return ApiError(422, code, message, field=field)


# --- request field helpers: each raises a 422 naming the field ---------------------------------


def _require(body: Mapping[str, Any], name: str) -> Any:
    if name not in body or body[name] is None:
        raise invalid(name, f"{name} is required", "is_required")
    return body[name]


def req_str(
    body: Mapping[str, Any], name: str, *, max_len: int | None = None, required: bool = True
) -> str | None:
    """``body[name]`` as a string, at most ``max_len`` characters; ``None`` only when not required and
    absent. Raises a 422 ApiError otherwise.
    """
    if not required and body.get(name) is None:
        return None
    value = _require(body, name)
    if not isinstance(value, str):
        raise invalid(name, f"{name} must be a string")
    if required and not value.strip():
        raise invalid(name, f"{name} must not be empty", "is_required")
    if max_len is not None and len(value) > max_len:
        raise invalid(name, f"{name} must be at most {max_len} characters", "too_long")
    return value


def req_bool(body: Mapping[str, Any], name: str, *, required: bool = True, default: bool = False) -> bool:
    """``body[name]`` as a boolean; ``default`` when not required and absent; else a 422 ApiError."""
    if not required and body.get(name) is None:
        return default
    value = _require(body, name)
    if not isinstance(value, bool):
        raise invalid(name, f"{name} must be a boolean")
    return value


def req_enum(
    body: Mapping[str, Any], name: str, allowed: tuple[str, ...], *, required: bool = True
) -> str | None:
    """``body[name]`` when it is one of ``allowed``; ``None`` only when not required and absent. Raises a
    422 ApiError otherwise.
    """
    if not required and body.get(name) is None:
        return None
    value = _require(body, name)
    if value not in allowed:
        raise invalid(name, f"{name} must be one of: {', '.join(allowed)}")
    return str(value)


def req_time(body: Mapping[str, Any], name: str) -> datetime:
    """``body[name]`` as an aware UTC datetime; raises a 422 ApiError unless it is RFC 3339 with an offset."""
    value = _require(body, name)
    if not isinstance(value, str):
        raise invalid(name, f"{name} must be an RFC 3339 date-time string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(name, f"{name} must be an RFC 3339 date-time string") from exc
    if ts.tzinfo is None:
        raise invalid(name, f"{name} must include a time zone offset")
    return ts.astimezone(UTC)


def _statuses(
    body: Mapping[str, Any], name: str, allowed: tuple[str, ...], page: Page
) -> list[tuple[str, str]] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid(name, f"{name} must be an array")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(value):
        where = f"{name}.{i}"
        if not isinstance(item, dict):
            raise invalid(where, f"{where} must be an object")
        cid = req_str(item, "component_id")
        status = req_enum(item, "component_status", allowed)
        assert cid is not None
        assert status is not None
        if cid not in page.components:
            raise invalid(
                f"{where}.component_id", f"component {cid} is not on status page {page.id}", "not_found"
            )
        if cid in seen:
            raise invalid(f"{where}.component_id", f"component {cid} is listed twice")
        seen.add(cid)
        out.append((cid, status))
    return out


# --- the model -------------------------------------------------------------------------------


@dataclass
class Component:
    """A component of a seeded page; ``group`` and ``sub_page`` name where it sits, when it does."""

    id: str
    name: str
    group: str | None = None
    sub_page: str | None = None


@dataclass
class Page:
    """A seeded status page: its structure (as ShowStatusPageStructure answers it) and components by id."""

    id: str
    name: str
    subscribers: int
    structure: list[dict[str, Any]]
    components: dict[str, Component]
    description: str = ""


@dataclass
class Period:
    """A component's impact or maintenance period; ``end_at`` is None while it lasts."""

    component_id: str
    status: str
    start_at: datetime
    end_at: datetime | None = None


@dataclass
class Update:
    """A published incident or maintenance update with the component statuses it shows."""

    id: str
    published_at: datetime
    message: str
    status: str
    component_statuses: list[tuple[str, str]]


@dataclass
class Incident:
    """A status page incident as the sandbox holds it; ``current`` is each component's status now."""

    id: str
    page_id: str
    name: str
    status: str
    published_at: datetime
    updates: list[Update] = field(default_factory=list)
    periods: list[Period] = field(default_factory=list)
    current: dict[str, str] = field(default_factory=dict)

    @property
    def ongoing(self) -> bool:
        """Whether the incident still takes updates (it is not resolved)."""
        return self.status != "resolved"


@dataclass
class Maintenance:
    """A maintenance window as the sandbox holds it; ``automate`` moves its status with the clock."""

    id: str
    page_id: str
    name: str
    status: str
    published_at: datetime
    start_at: datetime
    end_at: datetime
    automate: bool
    components: list[str]
    updates: list[Update] = field(default_factory=list)
    periods: list[Period] = field(default_factory=list)


def _apply_periods(
    periods: list[Period], current: dict[str, str], new: Mapping[str, str], now: datetime, *, off: str
) -> None:
    """One period per run of a status: a change closes the open period and opens another; ``off``
    (operational) just closes it."""
    for cid, status in new.items():
        if current.get(cid, off) == status:
            continue
        for p in periods:
            if p.component_id == cid and p.end_at is None:
                p.end_at = now
        if status != off:
            periods.append(Period(cid, status, now))
        current[cid] = status


def _close_all(periods: list[Period], now: datetime) -> None:
    for p in periods:
        if p.end_at is None:
            p.end_at = now


class SandboxState:
    """The fake's data (pages, incidents, maintenances, idempotency keys) and the API's rules on it: every
    write validates its body as incident.io does and raises ApiError for what it would refuse.
    """

    def __init__(self, pages: list[Page], clock: Callable[[], datetime]) -> None:
        self.pages = {p.id: p for p in pages}
        self.clock = clock
        self.incidents: dict[str, Incident] = {}
        self.maintenances: dict[str, Maintenance] = {}
        self.idempotency: dict[tuple[str, str, str], str] = {}

    # --- lookups -----------------------------------------------------------------------------

    def page(self, page_id: Any, *, field_name: str = "status_page_id", not_found: int = 422) -> Page:
        """The page ``page_id`` names; a 404 ApiError for an unknown one when ``not_found`` is 404, else a 422
        about ``field_name``.
        """
        if not isinstance(page_id, str) or page_id not in self.pages:
            if not_found == 404:
                raise ApiError(404, "not_found", f"status page {page_id} not found")
            raise invalid(field_name, f"status page {page_id} not found", "not_found")
        return self.pages[page_id]

    def incident(self, incident_id: str) -> Incident:
        """The incident by id; a 404 ApiError when there is none."""
        if incident_id not in self.incidents:
            raise ApiError(404, "not_found", f"status page incident {incident_id} not found")
        return self.incidents[incident_id]

    def maintenance(self, maintenance_id: str) -> Maintenance:
        """The window by id, its automated status brought up to now; a 404 ApiError when there is none."""
        self.advance_automation()
        if maintenance_id not in self.maintenances:
            raise ApiError(404, "not_found", f"status page maintenance {maintenance_id} not found")
        return self.maintenances[maintenance_id]

    def _check_notify(self, page: Page, notify: bool) -> None:
        if notify and page.subscribers > NOTIFY_LIMIT:
            raise invalid(
                "notify_subscribers",
                f"status page {page.id} has more than {NOTIFY_LIMIT} subscribers: notify_subscribers "
                "must be false through the API",
                "too_many_subscribers",
            )

    # --- incidents ---------------------------------------------------------------------------

    def create_incident(self, body: Mapping[str, Any]) -> Incident:
        """A new incident from a create payload, or the first one for a repeated idempotency key; raises
        422 ApiErrors for a bad body, component statuses on a resolve, or notifying a page over the limit.
        """
        page = self.page(_require(body, "status_page_id"))
        name = req_str(body, "name", max_len=MAX_NAME)
        status = req_enum(body, "incident_status", INCIDENT_STATUSES)
        message = req_str(body, "message", max_len=MAX_MESSAGE)
        key = req_str(body, "idempotency_key")
        notify = req_bool(body, "notify_subscribers")
        comps = _statuses(body, "component_statuses", COMPONENT_STATUSES, page)
        assert name is not None
        assert status is not None
        assert message is not None
        assert key is not None
        replay = self.idempotency.get(("incident", page.id, key))
        if replay is not None:
            return self.incidents[replay]
        if status == "resolved" and comps:
            raise invalid("component_statuses", "component_statuses must not be set when resolving")
        self._check_notify(page, notify)
        now = self.clock()
        inc = Incident(new_id(), page.id, name, status, now)
        inc.updates.append(Update(new_id(), now, message, status, list(comps or [])))
        if status != "resolved":
            _apply_periods(inc.periods, inc.current, dict(comps or []), now, off="operational")
        self.incidents[inc.id] = inc
        self.idempotency[("incident", page.id, key)] = inc.id
        return inc

    def rename_incident(self, incident_id: str, body: Mapping[str, Any]) -> Incident:
        """The incident renamed; a 404 or 422 ApiError for an unknown incident or a bad name."""
        inc = self.incident(incident_id)
        name = req_str(body, "name", max_len=MAX_NAME)
        assert name is not None
        inc.name = name
        return inc

    def create_incident_update(self, body: Mapping[str, Any]) -> tuple[Incident, Update]:
        """The incident and its new update; 422 when it is resolved, has MAX_UPDATES updates, or the body
        is bad. A resolve sets every component operational and ends every impact.
        """
        inc_id = _require(body, "status_page_incident_id")
        if not isinstance(inc_id, str):
            raise invalid("status_page_incident_id", "status_page_incident_id must be a string")
        inc = self.incident(inc_id)
        page = self.pages[inc.page_id]
        message = req_str(body, "message", max_len=MAX_MESSAGE)
        notify = req_bool(body, "notify_subscribers")
        status = req_enum(body, "incident_status", INCIDENT_STATUSES, required=False) or inc.status
        comps = _statuses(body, "component_statuses", COMPONENT_STATUSES, page)
        assert message is not None
        if not inc.ongoing:
            raise invalid(
                "status_page_incident_id",
                "the incident is resolved: it takes no more updates",
                "incident_resolved",
            )
        if status == "resolved" and comps is not None:
            raise invalid(
                "component_statuses",
                "component_statuses must not be set when resolving: all components become operational",
            )
        if len(inc.updates) >= MAX_UPDATES:
            raise invalid(
                "status_page_incident_id",
                f"an incident holds at most {MAX_UPDATES} updates",
                "too_many_updates",
            )
        self._check_notify(page, notify)
        now = self.clock()
        if status == "resolved":
            _close_all(inc.periods, now)
            inc.current = dict.fromkeys(inc.current, "operational")
            shown = sorted(inc.current.items())
        else:
            _apply_periods(inc.periods, inc.current, dict(comps or []), now, off="operational")
            shown = sorted(inc.current.items())
        inc.status = status
        update = Update(new_id(), now, message, status, shown)
        inc.updates.append(update)
        return inc, update

    # --- maintenances ------------------------------------------------------------------------

    def advance_automation(self) -> None:
        """Move every automated window whose start or end has passed (scheduled -> in progress ->
        complete), posting the update incident.io would.
        """
        now = self.clock()
        for m in self.maintenances.values():
            if not m.automate or m.status == "maintenance_complete":
                continue
            if m.status == "maintenance_scheduled" and now >= m.start_at:
                self._move_maintenance(
                    m, "maintenance_in_progress", "Maintenance has started.", max(m.start_at, m.published_at)
                )
            if m.status == "maintenance_in_progress" and now >= m.end_at:
                self._move_maintenance(
                    m, "maintenance_complete", "Maintenance is complete.", max(m.end_at, m.published_at)
                )

    def _move_maintenance(
        self, m: Maintenance, status: str, message: str, at: datetime, comps: Mapping[str, str] | None = None
    ) -> Update:
        current = {p.component_id: "under_maintenance" for p in m.periods if p.end_at is None}
        if status == "maintenance_complete":
            _close_all(m.periods, at)
            shown = dict.fromkeys(m.components, "operational")
            # The API: completing a window sets its components to operational. Emulated as ending
            # the impact of every ongoing incident on them (a bridge must re-assert what it lost).
            for inc in self.incidents.values():
                if inc.page_id == m.page_id and inc.ongoing:
                    _apply_periods(
                        inc.periods,
                        inc.current,
                        dict.fromkeys(m.components, "operational"),
                        at,
                        off="operational",
                    )
        else:
            target = (
                dict(comps)
                if comps is not None
                else (
                    dict.fromkeys(m.components, "under_maintenance")
                    if status == "maintenance_in_progress"
                    else {}
                )
            )
            _apply_periods(m.periods, current, target, at, off="operational")
            shown = {c: current.get(c, "operational") for c in m.components}
        m.status = status
        update = Update(new_id(), at, message, status, sorted(shown.items()))
        m.updates.append(update)
        return update

    def create_maintenance(self, body: Mapping[str, Any]) -> Maintenance:
        """A new window from a create payload, or the first one for a repeated idempotency key; 422 for a
        bad body, an unknown or repeated component, or an end not after the start.
        """
        page = self.page(_require(body, "status_page_id"))
        name = req_str(body, "name", max_len=MAX_NAME)
        status = req_enum(body, "maintenance_status", MAINTENANCE_STATUSES)
        key = req_str(body, "idempotency_key")
        ids = _require(body, "affected_component_ids")
        start_at = req_time(body, "start_at")
        end_at = req_time(body, "end_at")
        message = req_str(body, "message", max_len=MAX_MESSAGE)
        notify = req_bool(body, "notify_subscribers")
        automate = req_bool(body, "automate_maintenance_status", required=False)
        assert name is not None
        assert status is not None
        assert key is not None
        assert message is not None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise invalid("affected_component_ids", "affected_component_ids must be an array of strings")
        for i, cid in enumerate(ids):
            if cid not in page.components:
                raise invalid(
                    f"affected_component_ids.{i}",
                    f"component {cid} is not on status page {page.id}",
                    "not_found",
                )
        if len(set(ids)) != len(ids):
            raise invalid("affected_component_ids", "a component is listed twice")
        replay = self.idempotency.get(("maintenance", page.id, key))
        if replay is not None:
            return self.maintenances[replay]
        if end_at <= start_at:
            raise invalid("end_at", "end_at must be after start_at")
        self._check_notify(page, notify)
        now = self.clock()
        m = Maintenance(
            new_id(), page.id, name, "maintenance_scheduled", now, start_at, end_at, automate, list(ids)
        )
        self._move_maintenance(m, status, message, now)
        self.maintenances[m.id] = m
        self.idempotency[("maintenance", page.id, key)] = m.id
        return m

    def update_maintenance(self, maintenance_id: str, body: Mapping[str, Any]) -> Maintenance:
        """The window renamed and rescheduled; 422 when ``end_at`` is not after ``start_at``."""
        m = self.maintenance(maintenance_id)
        name = req_str(body, "name", max_len=MAX_NAME)
        start_at = req_time(body, "start_at")
        end_at = req_time(body, "end_at")
        assert name is not None
        if end_at <= start_at:
            raise invalid("end_at", "end_at must be after start_at")
        m.name, m.start_at, m.end_at = name, start_at, end_at
        self.advance_automation()
        return m

    def delete_maintenance(self, maintenance_id: str) -> None:
        """Delete the window; a 404 ApiError when there is none."""
        self.maintenance(maintenance_id)
        del self.maintenances[maintenance_id]

    def create_maintenance_update(self, body: Mapping[str, Any]) -> Update:
        """The window's new update; 422 when it is complete, holds MAX_UPDATES updates or the body is bad.
        A status given by hand ends the window's automation.
        """
        mid = _require(body, "status_page_maintenance_id")
        if not isinstance(mid, str):
            raise invalid("status_page_maintenance_id", "status_page_maintenance_id must be a string")
        m = self.maintenance(mid)
        page = self.pages[m.page_id]
        message = req_str(body, "message", max_len=MAX_MESSAGE)
        notify = req_bool(body, "notify_subscribers")
        status = req_enum(body, "maintenance_status", MAINTENANCE_STATUSES, required=False)
        comps = _statuses(body, "component_statuses", MAINTENANCE_COMPONENT_STATUSES, page)
        assert message is not None
        if m.status == "maintenance_complete":
            raise invalid(
                "status_page_maintenance_id",
                "the maintenance is complete: it takes no more updates",
                "maintenance_complete",
            )
        if status == "maintenance_complete" and comps is not None:
            raise invalid("component_statuses", "component_statuses must not be set when completing")
        if comps is not None:
            for i, (cid, _s) in enumerate(comps):
                if cid not in m.components:
                    raise invalid(
                        f"component_statuses.{i}.component_id",
                        f"component {cid} is not affected by this maintenance",
                    )
        if len(m.updates) >= MAX_UPDATES:
            raise invalid(
                "status_page_maintenance_id",
                f"a maintenance holds at most {MAX_UPDATES} updates",
                "too_many_updates",
            )
        self._check_notify(page, notify)
        if status is not None:
            m.automate = False  # a manual status update takes over from automation
        return self._move_maintenance(
            m, status or m.status, message, self.clock(), dict(comps) if comps is not None else None
        )

    # --- derived views -----------------------------------------------------------------------

    def component_status(self, page_id: str, component_id: str) -> str:
        """What the page shows for a component: the worst status of the ongoing incidents, else
        ``under_maintenance`` during an open maintenance period, else ``operational``.
        """
        worst = "operational"
        for inc in self.incidents.values():
            if inc.page_id == page_id and inc.ongoing:
                s = inc.current.get(component_id, "operational")
                if SEVERITY[s] > SEVERITY[worst]:
                    worst = s
        if worst == "operational":
            for m in self.maintenances.values():
                if m.page_id == page_id and any(
                    p.component_id == component_id and p.end_at is None for p in m.periods
                ):
                    return "under_maintenance"
        return worst


# --- JSON views (the spec's response schemas) ---------------------------------------------------


def page_json(page: Page, base_url: str) -> dict[str, Any]:
    """The StatusPageV2 body of a page; its public URL is under ``base_url``."""
    return {
        "id": page.id,
        "name": page.name,
        "description": page.description,
        "public_url": f"{base_url}/status/{page.id}",
    }


def _update_json(u: Update, parent_key: str, parent_id: str, status_key: str) -> dict[str, Any]:
    return {
        "id": u.id,
        parent_key: parent_id,
        "published_at": iso(u.published_at),
        "message": u.message,
        status_key: u.status,
        "component_statuses": [{"component_id": c, "component_status": s} for c, s in u.component_statuses],
    }


def _period_json(p: Period, *, with_status: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"component_id": p.component_id, "start_at": iso(p.start_at)}
    if with_status:
        out["component_status"] = p.status
    if p.end_at is not None:
        out["end_at"] = iso(p.end_at)
    return out


def incident_json(inc: Incident) -> dict[str, Any]:
    """The StatusPageIncidentV2 body of an incident, updates newest first."""
    return {
        "id": inc.id,
        "status_page_id": inc.page_id,
        "name": inc.name,
        "published_at": iso(inc.published_at),
        "incident_status": inc.status,
        "updates": [
            _update_json(u, "status_page_incident_id", inc.id, "incident_status")
            for u in reversed(inc.updates)
        ],
        "component_impacts": [_period_json(p, with_status=True) for p in inc.periods],
    }


def incident_update_json(inc: Incident, u: Update) -> dict[str, Any]:
    """The StatusPageIncidentUpdateV2 body of one of the incident's updates."""
    return _update_json(u, "status_page_incident_id", inc.id, "incident_status")


def maintenance_json(m: Maintenance) -> dict[str, Any]:
    """The StatusPageMaintenanceV2 body of a window, updates newest first."""
    return {
        "id": m.id,
        "status_page_id": m.page_id,
        "name": m.name,
        "published_at": iso(m.published_at),
        "maintenance_status": m.status,
        "automate_maintenance_status": m.automate,
        "updates": [
            _update_json(u, "status_page_maintenance_id", m.id, "maintenance_status")
            for u in reversed(m.updates)
        ],
        "component_maintenance_periods": [_period_json(p, with_status=False) for p in m.periods],
    }


def maintenance_update_json(m: Maintenance, u: Update) -> dict[str, Any]:
    """The StatusPageMaintenanceUpdateV2 body of one of the window's updates."""
    return _update_json(u, "status_page_maintenance_id", m.id, "maintenance_status")
