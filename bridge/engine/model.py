"""The engine's value types: what a group should look like, and what to do about it.

``DesiredGroup`` is computed from alerts and rules; ``Action`` is what the planner decides and the
executor performs; ``MaintenanceAction`` is the same for maintenance windows, so that incidents and
maintenances share one write path (breaker, back-off, write-ahead, shadow mode, error mapping). All
are plain immutable data so that planning stays a pure function that can be tested exhaustively.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bridge.domain import (
    ComponentStatus,
    GroupSettings,
    IncidentStatus,
    MaintenanceStatus,
    NotifyPolicy,
    Timings,
)

MAX_UPDATES = 100
"""incident.io accepts at most 100 updates per incident (its creation included)."""

DEFAULT_MONITORING_MESSAGE = (
    "The issue appears to be resolved. We are monitoring to make sure it does not come back."
)


@dataclass(frozen=True, slots=True)
class ComponentReason:
    """Why a component has its desired status: the alerts and the rule behind it."""

    rule: str
    alerts: tuple[str, ...]
    """``source:fingerprint`` of each firing alert that hits the component."""


@dataclass(frozen=True, slots=True)
class DesiredGroup:
    """What the page should show for one incident group, before hysteresis.

    ``components`` holds only components impacted by eligible firing alerts; an empty mapping means
    the group is quiet (every alert resolved, stale or gone).
    """

    key: str
    status_page_id: str
    rule: str
    name: str
    message: str
    resolved_message: str
    components: Mapping[str, ComponentStatus] = field(default_factory=dict)
    first_firing_at: datetime | None = None
    """``starts_at`` of the earliest eligible firing alert: what ``open_after`` is measured from."""
    timings: Timings = field(default_factory=Timings)
    notify: NotifyPolicy = NotifyPolicy.NEVER
    intermittent_message: str = ""
    """The rule's text for the one update that says a flapping problem is intermittent."""
    reasons: Mapping[str, ComponentReason] = field(default_factory=dict)
    suppressed: tuple[str, ...] = ()
    """Components whose alerts were not allowed to open an incident (maintenance in progress)."""

    @property
    def firing(self) -> bool:
        """Whether any component of the group is impacted now (no components: nothing fires)."""
        return bool(self.components)

    @property
    def alert_series(self) -> tuple[str, ...]:
        """Every firing series behind the group (``source:fingerprint``), sorted."""
        return tuple(sorted({a for reason in self.reasons.values() for a in reason.alerts}))

    @property
    def settings(self) -> GroupSettings:
        """What is recorded with the published group, to apply once no alert fires any more."""
        return GroupSettings(
            timings=self.timings,
            notify=self.notify,
            resolved_message=self.resolved_message,
            intermittent_message=self.intermittent_message,
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """Process-wide knobs of the planner (per-group ones come with the rules)."""

    coalesce_window: timedelta = timedelta(seconds=2)
    reserved_updates: int = 2
    """Updates kept back from component churn so that monitoring and resolved can always be posted."""
    monitoring_message: str = DEFAULT_MONITORING_MESSAGE
    key_scope: str = ""
    """The store's identity (``store_identity``), mixed into create idempotency keys: a store lost
    and started afresh restarts its episode numbers, and must not replay its predecessor's creates."""


@dataclass(frozen=True, slots=True)
class CreateIncident:
    """Open an incident for an episode of a group; ``idempotency_key`` is unique to that episode (and
    the store), so a replay returns the incident the first attempt created.
    """

    group_key: str
    episode: int
    status_page_id: str
    name: str
    message: str
    components: Mapping[str, ComponentStatus]
    notify_subscribers: bool
    idempotency_key: str
    incident_status: IncidentStatus = IncidentStatus.INVESTIGATING
    settings: GroupSettings | None = None
    """The rule's settings, recorded with the created group."""
    alerts: tuple[str, ...] = ()
    """The series behind it, recorded with the created group (the guard's evidence)."""


@dataclass(frozen=True, slots=True)
class UpdateIncident:
    """One incident update; ``components`` is the full set, ``None`` when resolving (the API forbids it)."""

    group_key: str
    incident_id: str
    incident_status: IncidentStatus
    components: Mapping[str, ComponentStatus] | None
    message: str
    notify_subscribers: bool
    announces_flapping: bool = False
    """This is the one update saying the problem is intermittent."""


@dataclass(frozen=True, slots=True)
class RenameIncident:
    """Rename the group's incident to the rule's current name."""

    group_key: str
    incident_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ReadBack:
    """Read the incident before anything else: a previous update's outcome is unknown."""

    group_key: str
    incident_id: str


Action = CreateIncident | UpdateIncident | RenameIncident | ReadBack


@dataclass(frozen=True)
class PublishedMaintenance:
    """What the bridge published for one occurrence of a maintenance window (stored as JSON)."""

    key: str
    window_id: str
    status_page_id: str
    maintenance_id: str | None = None
    status: str | None = None
    name: str = ""
    start_at: str = ""
    end_at: str = ""
    components: tuple[str, ...] = ()
    automate: bool = False
    create_attempted: bool = False
    outcome_unknown: bool = False
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """Every field as a JSON-serializable dict (what the store keeps)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublishedMaintenance:
        """The inverse of :meth:`to_json`; fields a newer release wrote are dropped, missing ones default."""
        known = cls.__dataclass_fields__
        values = {k: v for k, v in data.items() if k in known}
        values["components"] = tuple(values.get("components") or ())
        return cls(**values)

    @property
    def finished(self) -> bool:
        """Nothing is left to publish: the window was deleted or is complete."""
        return self.deleted or self.status == MaintenanceStatus.COMPLETE.value


@dataclass(frozen=True, slots=True)
class MaintenanceView:
    """What the page shows of a maintenance window."""

    id: str
    status: str
    name: str


@dataclass(frozen=True, slots=True)
class CreateMaintenance:
    """Publish an occurrence; ``ahead`` is the record written before the request (its key replays it)."""

    key: str
    ahead: PublishedMaintenance
    message: str
    idempotency_key: str
    notify_subscribers: bool
    status: MaintenanceStatus
    start_at: datetime
    end_at: datetime
    why: str = ""


@dataclass(frozen=True, slots=True)
class MoveMaintenance:
    """Move an occurrence forward (scheduled -> in progress -> complete) with an update."""

    key: str
    published: PublishedMaintenance
    status: MaintenanceStatus
    message: str
    notify_subscribers: bool
    why: str = ""


@dataclass(frozen=True, slots=True)
class RescheduleMaintenance:
    """New name or times; ``notice`` is the update that says so (the reschedule itself notifies
    nobody), when the window notifies subscribers."""

    key: str
    published: PublishedMaintenance
    name: str
    start_at: datetime
    end_at: datetime
    notice: str | None = None
    why: str = ""


@dataclass(frozen=True, slots=True)
class DeleteMaintenance:
    """Cancelled before it started: take it off the page."""

    key: str
    published: PublishedMaintenance
    why: str = ""


@dataclass(frozen=True, slots=True)
class ReadBackMaintenance:
    """Read the window before anything else: a write's outcome is unknown, or incident.io moves it
    (``automate``) and the bridge must learn of a completion it did not write."""

    key: str
    published: PublishedMaintenance
    why: str = ""


MaintenanceAction = (
    CreateMaintenance | MoveMaintenance | RescheduleMaintenance | DeleteMaintenance | ReadBackMaintenance
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The planner's answer for one group."""

    actions: tuple[Action, ...] = ()
    wake_at: datetime | None = None
    """When to plan again even if nothing changes (a hold, a coalescing window or resolve_after ends)."""
    pending_digest: str | None = None
    pending_since: datetime | None = None
    """The hold to remember (unchanged when equal to the published one)."""
    held: str | None = None
    """Why something desired is not published yet (for the state API), or ``None``. A held plan's
    actions are never executed; the planner gives it none."""
    end_takeover: bool = False
    """The group's alerts cleared while a human held its incident: close the episode (a later
    firing opens a new incident)."""


def idempotency_key(group_key: str, episode: int, scope: str = "") -> str:
    """Stable across restarts and replicas (they share the store, and with it ``scope``): the same
    episode of a group always maps to one incident. The empty scope gives the keys of stores made
    before scopes existed."""
    text = f"{group_key}\x00{episode}" if not scope else f"{scope}\x00{group_key}\x00{episode}"
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"statusbridge-{digest}"
