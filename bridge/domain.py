"""Value types every layer speaks.

Ingest produces :class:`Alert`, rules turn alerts into :class:`Impact`, the engine folds impacts into
desired state and compares it with what was published. Keeping these types here, below every other
layer, is what lets ``rules/``, ``store/`` and ``engine/`` agree without importing each other.

All types are immutable; time is always timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Source(StrEnum):
    """Where an alert came from; part of its identity, so the two sources never share an instance."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"


class AlertStatus(StrEnum):
    """An alert instance's status as its source reported it; resolved is terminal for the instance."""

    FIRING = "firing"
    RESOLVED = "resolved"


class ComponentStatus(StrEnum):
    """A component's status in an incident, ordered from best to worst (see :data:`SEVERITY`)."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    FULL_OUTAGE = "full_outage"

    @property
    def severity(self) -> int:
        """0 (operational) to 3 (full outage): comparable across statuses, higher is worse."""
        return SEVERITY[self]


SEVERITY: Mapping[ComponentStatus, int] = {
    ComponentStatus.OPERATIONAL: 0,
    ComponentStatus.DEGRADED_PERFORMANCE: 1,
    ComponentStatus.PARTIAL_OUTAGE: 2,
    ComponentStatus.FULL_OUTAGE: 3,
}


def worst(statuses: Iterable[ComponentStatus]) -> ComponentStatus:
    """The worst of ``statuses``; operational when there are none."""
    return max(statuses, key=SEVERITY.__getitem__, default=ComponentStatus.OPERATIONAL)


class IncidentStatus(StrEnum):
    """The bridge's incident statuses, the API's ``incident_status`` values."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


ENDED_RESOLVED = "resolved"
"""The source sent the resolve: an ending explained by evidence."""
ENDED_GONE = "gone"
"""Alertmanager's API stopped listing the alert without a resolve ever arriving."""


class MaintenanceStatus(StrEnum):
    """The API's maintenance window statuses, in the order a window moves through them."""

    SCHEDULED = "maintenance_scheduled"
    IN_PROGRESS = "maintenance_in_progress"
    COMPLETE = "maintenance_complete"


ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""Alertmanager's ``0001-01-01T00:00:00Z``: "no end" on a firing alert."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One normalized alert instance.

    An instance is identified by ``(source, fingerprint, starts_at)``: a series that fires again keeps
    its fingerprint and gets a new ``starts_at``. ``ends_at`` is ``None`` while firing.
    """

    source: Source
    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    status: AlertStatus
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str
    received_at: datetime
    ended_by: str | None = None
    """How a resolved instance ended: ``resolved`` (the source said so) or ``gone`` (Alertmanager's
    API no longer lists it); ``None`` while firing. The guard judges a wind-down by it."""
    suppressed_by: str = ""
    """The silences and inhibiting alerts Alertmanager's API reports for a firing instance (comma
    separated; empty: not suppressed). A suppressed instance stops counting but is not resolved:
    when the silence ends it fires again."""

    @property
    def firing(self) -> bool:
        """Whether the source reports the instance firing (suppressed ones included)."""
        return self.status is AlertStatus.FIRING


@dataclass(frozen=True, slots=True)
class PageComponent:
    """A component as placed on one status page (from ShowStatusPageStructure)."""

    id: str
    name: str
    group: str | None = None
    sub_page: str | None = None

    @property
    def path(self) -> str:
        """``Group/Name`` (or ``SubPage/Group/Name``): the unambiguous name a rule may use."""
        return "/".join(p for p in (self.sub_page, self.group, self.name) if p)


@dataclass(frozen=True, slots=True)
class PageInfo:
    """A status page as the directory knows it; ``subscribers`` is ``None`` when unknown."""

    id: str
    name: str
    components: tuple[PageComponent, ...] = ()
    subscribers: int | None = None


@dataclass(frozen=True, slots=True)
class PageDirectory:
    """Pages and their components, for resolving the names rules use into IDs.

    Built by the wiring layer from the API client (or offline, empty); rules only read it.
    """

    pages: tuple[PageInfo, ...] = ()

    def page(self, ref: str) -> PageInfo | None:
        """A page by ID or by exact name."""
        for p in self.pages:
            if ref in (p.id, p.name):
                return p
        return None


class NotifyPolicy(StrEnum):
    """When a publication notifies the page's subscribers."""

    NEVER = "never"
    ALWAYS = "always"
    OPEN_AND_RESOLVE = "open_and_resolve"


@dataclass(frozen=True, slots=True)
class Timings:
    """Hysteresis of one rule; every duration is a :class:`timedelta`."""

    open_after: timedelta = timedelta(0)
    resolve_after: timedelta = timedelta(minutes=5)
    change_after: timedelta = timedelta(0)
    downgrade_after: timedelta | None = None
    """Hold for a status *improvement* inside an open incident; ``None`` means ``change_after``."""
    flap_threshold: int = 4
    """More flips between firing and clear than this within ``flap_window`` is flapping (0: off).
    Nagios' flap detection calls a service flapping past about 20-25 % state changes over its
    last 21 checks, i.e. 4-5 changes; a group flipping 5 times in 10 minutes is no longer news
    that subscribers can act on, each flip would only alternate the page."""
    flap_window: timedelta = timedelta(minutes=10)
    """How far back flips count, and how long a flapping group must stay quiet before monitoring."""


@dataclass(frozen=True, slots=True)
class Impact:
    """What one alert means for one component: the output of rule evaluation.

    ``component`` is a component ID when the page directory could resolve it, otherwise the name
    the rule used (offline dry runs). ``group_key`` identifies the public incident the impact
    belongs to: one incident per distinct group key.
    """

    rule: str
    status_page: str
    component: str
    status: ComponentStatus
    group_key: str
    alert_source: Source
    alert_fingerprint: str
    incident_name: str
    message: str
    resolved_message: str
    component_name: str = ""
    intermittent_message: str = ""
    timings: Timings = field(default_factory=Timings)
    notify: NotifyPolicy = NotifyPolicy.NEVER
    suppress_during_maintenance: bool = True


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | float | timedelta) -> timedelta:
    """Parse ``250ms``, ``2s``, ``1m30s``, ``5m``, ``1h``, ``1d`` or plain (fractional) seconds.

    Raises ``ValueError`` naming the bad text; negative durations are refused.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError as exc:
            pos, seconds = 0, 0.0
            for m in _DURATION_PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNITS[m.group(2)]
                pos = m.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"invalid duration {value!r}: use e.g. 250ms, 2s, 1m30s, 5m, 1h or seconds"
                ) from exc
    else:
        raise ValueError(f"invalid duration {value!r}")  # noqa: TRY004 (pydantic reports ValueError)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must be a finite, non-negative time")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration` for display (``1m30s``)."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """The rule's settings for one incident group, recorded with what was published.

    Once every alert of a group has resolved there is no desired state to read them from, and a
    restart or a rules reload that removed the rule must not change how the incident winds down:
    ``resolve_after``, ``downgrade_after``, the resolved message and the notify policy come from here.
    """

    timings: Timings = field(default_factory=Timings)
    notify: NotifyPolicy = NotifyPolicy.NEVER
    resolved_message: str = ""
    intermittent_message: str = ""


DEFAULT_INTERMITTENT_MESSAGE = (
    "The problem is intermittent: it keeps recovering and coming back. We are keeping this incident "
    "open until it has been stable for a while."
)
"""What a flapping group's one extra update says when its rule does not say otherwise."""


def update_digest(status: str, components: Mapping[str, str] | None, message: str) -> str:
    """What identifies an incident update by its content: status, impacted components, message."""
    impacted = sorted((c, s) for c, s in (components or {}).items() if s != ComponentStatus.OPERATIONAL.value)
    text = "\x1f".join([status, ";".join(f"{c}={s}" for c, s in impacted), message.strip()])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def utcnow() -> datetime:
    """The only wall clock in the code base: everything below the wiring layer takes ``now``."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PublishedGroup:
    """What the bridge has published (or is publishing) for one incident group.

    Persisted by the store in the same transaction as the outcome of the action that changed it, so
    that after a crash the planner sees exactly what the page was last told. ``episode`` counts the
    incidents a group has opened: a new incident after a resolved one is a new episode, and the
    create's idempotency key is derived from ``(key, episode)``.
    """

    key: str
    episode: int
    status_page_id: str
    incident_id: str | None = None
    """``None`` until a create is confirmed; a retried create reuses the episode's idempotency key."""
    incident_status: IncidentStatus | None = None
    """``None``: no incident of this episode is known to exist on the page."""
    components: Mapping[str, ComponentStatus] = field(default_factory=dict)
    """Every component this episode has touched, with its last published status."""
    name: str = ""
    update_count: int = 0
    """Updates the incident holds (its creation counts as one); the API allows 100."""
    opened_at: datetime | None = None
    last_published_at: datetime | None = None
    monitoring_since: datetime | None = None
    pending_digest: str | None = None
    """The not-yet-published target the planner is holding (``change_after``), and since when."""
    pending_since: datetime | None = None
    create_attempted: bool = False
    """Written ahead of a create: the page may hold this episode's incident even though no id is known."""
    outcome_unknown: bool = False
    """An update was sent and its outcome is unknown: read the incident back before anything else."""
    taken_over: bool = False
    """A human changed the incident on the page: the bridge no longer touches this episode."""
    taken_over_reason: str | None = None
    force_resolve: bool = False
    """An admin asked to resolve this episode now, whatever the alerts say."""
    left_open_incident: str | None = None
    """A taken-over incident whose alerts all cleared while a human still had it open (reported)."""
    settings: GroupSettings | None = None
    """The rule's settings as of the last pass that saw the group firing (``None``: a record
    written before they were kept; the built-in defaults then apply)."""
    alerts: tuple[str, ...] = ()
    """The series (``source:fingerprint``) firing for the group as of that pass: how they ended is
    the guard's evidence when the group winds down."""
    last_firing: bool | None = None
    """Whether the group fired at the last pass that saw its incident open (flip detection)."""
    flips: tuple[datetime, ...] = ()
    """When the open group flipped between firing and clear, within the flap window."""
    flapping_since: datetime | None = None
    """Set when the flips passed the threshold; cleared once no flip came for a flap window."""
    flap_announced: bool = False
    """The one update saying the problem is intermittent has been published for this episode."""
    unknown_since: datetime | None = None
    """When the write whose outcome is unknown was sent (written ahead with it)."""
    recheck_at: datetime | None = None
    """A read-back found that write not landed yet while it still could: read again then."""
    sent: tuple[str, ...] = ()
    """Content digests (:func:`update_digest`) of every update the bridge sent for this episode,
    written ahead of each request. An update on the page with one of these is the bridge's own,
    however late it landed, whichever replica sent it."""

    @property
    def open(self) -> bool:
        """Whether the group has an incident on the page that is not resolved."""
        return self.incident_status not in (None, IncidentStatus.RESOLVED)


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One line of the action log: what was sent to the page for a group, and what came of it."""

    group_key: str
    action: str
    """``create``, ``update``, ``rename`` or ``read_back``."""
    outcome: str
    """``ok``, ``failed`` (known not applied), ``unknown`` (may have been applied) or ``drift``."""
    at: datetime
    incident_id: str | None = None
    detail: str = ""
    epoch: int = 0
    """The reconcile lease epoch the write was made under (PostgreSQL HA fences stale leaders)."""
