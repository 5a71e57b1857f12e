"""The timeline file: version 1, validated by these models; its JSON Schema is generated from them.

A timeline names a page structure, rules, inputs at virtual times and the public page expected at
later times. Times are durations from the start (``90s``, ``1m30s``); the start itself is a fixed
instant so that a file gives the same answer on every machine and every day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge.domain import ComponentStatus, IncidentStatus, parse_duration

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""A Monday morning: far from DST changes and month ends, so window math is unsurprising."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Duration = Annotated[timedelta, Field(description='a duration from the start: "0s", "90s", "1m30s", "2h"')]


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError('a duration such as "0s", "2s", "1m30s"')
    return parse_duration(value)


class Repeat(_Strict):
    """The event again every ``every``, ``count`` times in all (the first one included)."""

    every: Duration
    count: int = Field(ge=1, le=100_000)

    _every = field_validator("every", mode="before")(_duration)


class AlertIn(_Strict):
    """One alert as the source sends it. ``startsAt`` defaults to the event's time when firing and,
    when resolving, to the start of the last firing delivery of the same labels in this timeline;
    ``endsAt`` of a resolve defaults to the event's time."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"
    starts_at: Duration | datetime | None = Field(default=None, alias="startsAt")
    ends_at: Duration | datetime | None = Field(default=None, alias="endsAt")

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        if isinstance(value, str) and "T" in value:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        return _duration(value)


class ApiAlert(_Strict):
    """An alert as Alertmanager's API v2 lists it (for the pull): active, silenced or inhibited."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    state: Literal["active", "suppressed"] = "active"
    silenced_by: list[str] = Field(default_factory=list, alias="silencedBy")
    inhibited_by: list[str] = Field(default_factory=list, alias="inhibitedBy")
    starts_at: Duration | None = Field(default=None, alias="startsAt")

    _starts = field_validator("starts_at", mode="before")(lambda v: None if v is None else _duration(v))


class Delivery(_Strict):
    """``alertmanager:``/``grafana:`` events: one webhook delivery of at least one alert."""

    alerts: list[AlertIn] = Field(min_length=1)


class ApiState(_Strict):
    """What Alertmanager's ``GET /api/v2/alerts`` answers from now on (an alert not listed is gone)."""

    alerts: list[ApiAlert] = Field(default_factory=list)


class HumanAction(_Strict):
    """Somebody editing the page in incident.io's dashboard (through the API, with their own key)."""

    action: Literal["resolve", "edit", "post", "rename"]
    incident: str = Field(description="the name of the ongoing incident it applies to")
    status: IncidentStatus | None = None
    components: dict[str, ComponentStatus] | None = None
    name: str | None = None
    message: str = "Update from the dashboard."
    required: bool = Field(
        default=True, description="false: skip quietly when no such incident is ongoing (generated timelines)"
    )


class Fault(_Strict):
    """A provider fault on the sandbox (see bridge/sandbox/README.md, ``/_sandbox/faults``)."""

    method: str | None = None
    path_prefix: str = "/"
    count: int = Field(default=1, ge=1)
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    latency: Duration = timedelta(0)
    after_processing: bool = False
    duration: Duration | None = Field(
        default=None, description="every matching request fails for this long, whatever the count (an outage)"
    )

    _latency = field_validator("latency", "duration", mode="before")(_duration)


class Admin(_Strict):
    """A call to the bridge's admin API."""

    action: Literal["pause", "resume", "release_guard", "force_resolve"]
    group: str | None = None


class Event(_Strict):
    """One input at ``at``: exactly one of the kinds below."""

    at: Duration
    repeat: Repeat | None = None
    alertmanager: Delivery | None = None
    grafana: Delivery | None = None
    alertmanager_api: ApiState | None = None
    restart: Literal[True] | None = None
    store_loss: Literal[True] | None = None
    human: HumanAction | None = None
    fault: Fault | None = None
    rules: dict[str, Any] | None = Field(default=None, description="the rules file's new content")
    maintenance: dict[str, Any] | None = Field(default=None, description="a window, through the admin API")
    admin: Admin | None = None

    _at = field_validator("at", mode="before")(_duration)

    @model_validator(mode="after")
    def _one_kind(self) -> Event:
        kinds = [k for k in EVENT_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"an event has exactly one of {', '.join(EVENT_KINDS)} (found {kinds or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        """The name of the event's one kind (validation guarantees exactly one is set)."""
        return next(k for k in EVENT_KINDS if getattr(self, k) is not None)


EVENT_KINDS = (
    "alertmanager",
    "grafana",
    "alertmanager_api",
    "restart",
    "store_loss",
    "human",
    "fault",
    "rules",
    "maintenance",
    "admin",
)


class IncidentExpect(_Strict):
    """An incident on the page; only the fields given are compared."""

    name: str | None = None
    status: IncidentStatus | None = None
    components: dict[str, ComponentStatus] | None = Field(
        default=None, description="component name -> status the incident shows (its full set)"
    )
    message: str | None = Field(default=None, description="the text of its latest update")
    updates: int | None = Field(
        default=None, ge=1, description="how many updates it has (its creation included)"
    )


class WriteExpect(_Strict):
    """One public write by the bridge, as the page's request log shows it."""

    at: Duration | None = None
    kind: Literal[
        "create", "update", "rename", "maintenance_create", "maintenance_update", "maintenance_delete"
    ]
    status: str | None = None
    notify: bool | None = Field(default=None, description="whether it notified subscribers")

    _at = field_validator("at", mode="before")(lambda v: None if v is None else _duration(v))


class Expect(_Strict):
    """The public page at ``at``, after everything due then has happened."""

    at: Duration
    incidents: list[IncidentExpect] | None = Field(
        default=None, description="every incident on the page, oldest first (resolved ones included)"
    )
    ongoing: int | None = Field(default=None, ge=0, description="how many incidents are not resolved")
    components: dict[str, ComponentStatus] | None = Field(
        default=None, description="component name -> public status (only those listed are compared)"
    )
    writes: list[WriteExpect] | None = Field(
        default=None, description="the exact list of the bridge's public writes so far"
    )
    max_writes: int | None = Field(default=None, ge=0, description="at most this many public writes so far")
    max_attempts: int | None = Field(
        default=None,
        ge=0,
        description="at most this many write requests sent so far, refused and failed ones included",
    )
    maintenances: dict[str, Literal["scheduled", "in_progress", "complete"]] | None = Field(
        default=None, description="maintenance name -> its status on the page (without `maintenance_`)"
    )

    _at = field_validator("at", mode="before")(_duration)


class Timeline(_Strict):
    """A timeline file (``version: 1``)."""

    version: Literal[1]
    name: str
    description: str = ""
    start: datetime = DEFAULT_START
    seed: str | dict[str, Any] = Field(
        default="builtin",
        description='"builtin", a seed file path (relative to this file), or the seed inline',
    )
    rules: str | dict[str, Any] = Field(
        description="a rules file or directory (relative to this file), or inline"
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="STATUSBRIDGE_* settings, lower-case without the prefix"
    )
    events: list[Event] = Field(default_factory=list)
    expect: list[Expect] = Field(min_length=1)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start needs a UTC offset")
        return value.astimezone(UTC)
