"""Maintenance window models: the one shape shared by config files, the admin API and the store.

A window is either *one-off* (``start_at``/``end_at``) or *recurring* (``cron`` + ``duration`` +
``timezone``). Config files, the admin API (``source: api``) and the store's JSON documents all go
through these models, so a window the bridge accepted once is accepted again after a restart.
Everything is validated here, at the edge, with messages phrased for the person who wrote the window:
naive times, ``end_at`` before ``start_at``, unknown time zones, cron lines with a surprising meaning.
Message texts stay templates (strings); rendering belongs to whoever publishes.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PrivateAttr,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from bridge.domain import format_duration, parse_duration
from bridge.maintenance.cron import CronSchedule, parse_cron, parse_timezone

MESSAGE_LIMIT = 4096
"""The API's limit on a maintenance message (and update) text."""
NAME_LIMIT = 200
"""The API's limit on a maintenance name."""
DEFAULT_RECURRING_ANNOUNCE = timedelta(days=7)
"""How long before each recurring occurrence it is put on the page, unless ``announce_before`` says."""

ONE_OFF_KEYS = frozenset({"start_at", "end_at"})
RECURRING_KEYS = frozenset({"cron", "duration", "timezone"})

_templates = SandboxedEnvironment()


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""``30m``, ``2h``, ``7d`` or seconds; serialized back in the same notation (not ISO 8601)."""


def _aware_utc(value: Any) -> datetime:
    """An RFC 3339 time with an offset (string, or the datetime YAML made of it), as aware UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        raise ValueError(  # noqa: TRY004 (pydantic reports ValueError)
            f"{value.isoformat()} is a date, not a time: write e.g. {value.isoformat()}T02:00:00+02:00"
        )
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an RFC 3339 time such as 2026-05-03T02:00:00+02:00") from exc
    else:
        raise ValueError("expected an RFC 3339 time such as 2026-05-03T02:00:00+02:00")  # noqa: TRY004
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{moment.isoformat()} has no UTC offset, so it could mean any of 24 hours: "
            f"add one, e.g. {moment.isoformat()}Z or {moment.isoformat()}+02:00"
        )
    return moment.astimezone(UTC)


AwareTime = Annotated[datetime, BeforeValidator(_aware_utc)]
"""A timezone-aware instant, stored in UTC; naive times are refused."""


def _template(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    try:
        _templates.parse(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template error on line {exc.lineno}: {exc.message}") from exc
    return text


Template = Annotated[str, Field(max_length=MESSAGE_LIMIT), AfterValidator(_template)]


def _stripped(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


Ref = Annotated[str, AfterValidator(_stripped)]
"""A status page or component reference: its ID, or its name (``Group/Name`` for a component)."""

WINDOW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Messages(_Model):
    """What the page says as the window moves on; Jinja2 templates, rendered by the publisher."""

    scheduled: Template = "We will be carrying out scheduled maintenance."
    started: Template = "Scheduled maintenance is in progress."
    completed: Template = "Scheduled maintenance is complete."


class _Window(_Model):
    id: str = Field(
        pattern=WINDOW_ID_PATTERN,
        description="Stable forever: it is part of the idempotency key of every occurrence.",
    )
    source: Literal["config", "api"] = "config"
    """Where the window comes from: a config file, or the admin API (stored by the bridge)."""
    name: Annotated[str, Field(max_length=NAME_LIMIT), AfterValidator(_stripped)]
    status_page: Ref
    components: tuple[Ref, ...] = Field(min_length=1)
    messages: Messages = Field(default_factory=Messages)
    notify_subscribers: bool = False
    announce_before: Duration | None = None
    """How long before its start an occurrence is put on the page; ``None``: the kind's default."""
    automate: bool = False
    """Create with ``automate_maintenance_status``: the provider moves the window, the bridge watches."""

    @field_validator("components")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for ref in value:
            if ref in seen:
                raise ValueError(f"component {ref!r} is listed twice")
            seen.add(ref)
        return value


class OneOffWindow(_Window):
    """A window at fixed instants. Without ``announce_before`` it is on the page at once."""

    kind: Literal["one_off"] = "one_off"
    start_at: AwareTime
    end_at: AwareTime

    @model_validator(mode="before")
    @classmethod
    def _not_recurring(cls, data: Any) -> Any:
        if isinstance(data, dict) and RECURRING_KEYS & data.keys():
            raise ValueError(_BOTH)
        return data

    @model_validator(mode="after")
    def _ordered(self) -> OneOffWindow:
        if self.end_at <= self.start_at:
            raise ValueError(
                f"end_at ({self.end_at.isoformat()}) must be after start_at ({self.start_at.isoformat()})"
            )
        return self

    def rescheduled(
        self,
        *,
        name: str | None = None,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
    ) -> OneOffWindow:
        """A copy with new times or name, validated again (``model_copy`` would skip validation)."""
        data = self.model_dump()
        data.update(
            {k: v for k, v in (("name", name), ("start_at", start_at), ("end_at", end_at)) if v is not None}
        )
        return OneOffWindow.model_validate(data)


class RecurringWindow(_Window):
    """Occurrences at the start instants of a crontab line in a time zone, each ``duration`` long.

    ``duration`` is elapsed time: a 2h window starting the night clocks change still lasts 2 hours.
    """

    kind: Literal["recurring"] = "recurring"
    timezone: str
    cron: str
    duration: Duration

    _schedule: CronSchedule = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _not_one_off(cls, data: Any) -> Any:
        if isinstance(data, dict) and ONE_OFF_KEYS & data.keys():
            raise ValueError(_BOTH)
        return data

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        parse_timezone(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)
        return " ".join(value.split())

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("a window's duration must be longer than zero")
        return value

    def model_post_init(self, context: Any, /) -> None:  # noqa: ARG002 (pydantic's signature)
        """Parse the cron expression once, in the window's time zone (validation has checked both)."""
        self._schedule = parse_cron(self.cron, self.timezone)

    @property
    def schedule(self) -> CronSchedule:
        """The window's parsed cron schedule, in its time zone."""
        return self._schedule


_BOTH = "a window is either one-off (start_at, end_at) or recurring (cron, duration, timezone), not both"


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        if value.get("kind") in ("one_off", "recurring"):
            return str(value["kind"])
        return "recurring" if RECURRING_KEYS & value.keys() else "one_off"
    return str(getattr(value, "kind", "one_off"))


Window = Annotated[
    Annotated[OneOffWindow, Tag("one_off")] | Annotated[RecurringWindow, Tag("recurring")],
    Discriminator(_kind),
]
"""Either kind of window; dicts without ``kind`` are told apart by their keys."""

WINDOW_ADAPTER: TypeAdapter[OneOffWindow | RecurringWindow] = TypeAdapter(Window)


def parse_window(data: Any) -> OneOffWindow | RecurringWindow:
    """Validate one window (a mapping as in YAML or JSON); raises pydantic's ``ValidationError``."""
    return WINDOW_ADAPTER.validate_python(data)


def window_to_json(window: OneOffWindow | RecurringWindow) -> str:
    """The document the store keeps; :func:`window_from_json` reads it back unchanged."""
    return WINDOW_ADAPTER.dump_json(window).decode()


def window_from_json(text: str | bytes) -> OneOffWindow | RecurringWindow:
    """A one-off or recurring window from its JSON (the store's or the admin API's); raises pydantic's
    ValidationError for anything invalid.
    """
    return WINDOW_ADAPTER.validate_json(text)


def new_window_id() -> str:
    """An id for a window created through the admin API (config windows name their own)."""
    return f"mw-{secrets.token_hex(8)}"


def announce_lead(window: OneOffWindow | RecurringWindow) -> timedelta | None:
    """How long before each start the window is on the page; ``None``: from the moment it exists."""
    if window.announce_before is not None:
        return window.announce_before
    return DEFAULT_RECURRING_ANNOUNCE if isinstance(window, RecurringWindow) else None
