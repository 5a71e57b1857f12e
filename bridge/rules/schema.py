"""The rule file's schema: what a rule file may say, validated by pydantic as it is read.

Unknown keys, bad durations, statuses and the notify spelling are refused here, before anything is
resolved against a page (``load.py``) or evaluated (``evaluate.py``). The default texts are the
rule's own words: a template that fails at render time falls back to them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from bridge.domain import (
    DEFAULT_INTERMITTENT_MESSAGE,
    ComponentStatus,
    NotifyPolicy,
    parse_duration,
)
from bridge.observability import get_logger

log = get_logger(__name__)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
MAX_NAME = 200
MAX_MESSAGE = 4096
DEFAULT_NAME = "{{ components | join(', ') }} disruption"
DEFAULT_MESSAGE = "We are investigating problems affecting {{ components | join(', ') }}."
DEFAULT_RESOLVED = "This incident has been resolved."
DEFAULT_INTERMITTENT = DEFAULT_INTERMITTENT_MESSAGE


def _notify(value: Any) -> Any:
    if value is True:
        return NotifyPolicy.ALWAYS
    if value is False:
        return NotifyPolicy.NEVER
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    """A rule file's ``defaults:``, the timings and policies every rule of the file inherits."""

    open_after: Duration = timedelta(0)
    resolve_after: Duration = timedelta(minutes=5)
    change_after: Duration = timedelta(0)
    downgrade_after: Duration | None = None
    flap_threshold: int = Field(default=4, ge=0, le=1000)
    flap_window: Duration = timedelta(minutes=10)
    notify_subscribers: Annotated[NotifyPolicy, BeforeValidator(_notify)] = NotifyPolicy.NEVER
    suppress_during_maintenance: bool = True


class StatusFrom(_Model):
    """``status: {from_label, map, default}``: the component status read from an alert label."""

    from_label: str
    map: dict[str, ComponentStatus] = Field(default_factory=dict)
    default: ComponentStatus = ComponentStatus.PARTIAL_OUTAGE


class IncidentTexts(_Model):
    """A rule's ``incident:`` texts (Jinja templates, rendered sandboxed from the group's alerts)."""

    name: str = DEFAULT_NAME
    message: str = DEFAULT_MESSAGE
    resolved_message: str = DEFAULT_RESOLVED
    intermittent_message: str = DEFAULT_INTERMITTENT


class HeartbeatSpec(_Model):
    """``heartbeat: {timeout}``: how long the always-firing alert may stay away."""

    timeout: Duration


class RuleModel(_Model):
    """One rule as written in a rule file; unknown keys are refused."""

    name: str = Field(min_length=1, max_length=100)
    matchers: list[str] = Field(default_factory=list)
    components: list[str] = Field(default_factory=list)
    heartbeat: HeartbeatSpec | None = None
    """An always-firing alert (Alertmanager's Watchdog) proving the pipeline works: no impacts;
    when none arrives for ``timeout`` the bridge reports itself blind."""
    status: ComponentStatus | StatusFrom = ComponentStatus.PARTIAL_OUTAGE
    status_page: str | None = None
    group_by: list[str] = Field(default_factory=list)
    incident: IncidentTexts = Field(default_factory=IncidentTexts)
    continue_: bool = Field(default=False, alias="continue")
    open_after: Duration | None = None
    resolve_after: Duration | None = None
    change_after: Duration | None = None
    downgrade_after: Duration | None = None
    flap_threshold: int | None = Field(default=None, ge=0, le=1000)
    flap_window: Duration | None = None
    notify_subscribers: Annotated[NotifyPolicy | None, BeforeValidator(_notify)] = None
    suppress_during_maintenance: bool | None = None

    @model_validator(mode="after")
    def _components_unless_heartbeat(self) -> RuleModel:
        if self.heartbeat is None and not self.components:
            raise ValueError("components: a rule needs at least one component (or is a heartbeat)")
        return self

    @field_validator("status", mode="before")
    @classmethod
    def _no_operational(cls, value: Any) -> Any:
        if value == "operational":
            raise ValueError("a rule's status must be an outage or degradation, not operational")
        return value


class RuleFileModel(_Model):
    """One rule file as written: its page, defaults, rules and maintenance windows."""

    status_page: str | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    rules: list[RuleModel] = Field(default_factory=list)
    maintenances: list[dict[str, Any]] = Field(default_factory=list)
    """Maintenance windows may live in rule files too; they are validated by ``bridge.maintenance``."""
