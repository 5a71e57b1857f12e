"""Evaluation: alerts in, impacts and rendered incident texts out — no clock and no I/O.

A rule maps matching alerts to component statuses on a status page and to an incident *group* (one
public incident per rule and distinct ``group_by`` label values). Templates are Jinja2 in a sandbox:
the page is public, so a template that fails at render time falls back to the rule's default text,
and the failure is returned with the evaluation (``Evaluation.template_failures``) for the caller
to report; evaluation itself logs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from bridge.domain import (
    Alert,
    ComponentStatus,
    Impact,
    NotifyPolicy,
    Timings,
    worst,
)
from bridge.rules.matchers import Matcher
from bridge.rules.schema import (
    DEFAULT_INTERMITTENT,
    DEFAULT_MESSAGE,
    DEFAULT_NAME,
    DEFAULT_RESOLVED,
    MAX_MESSAGE,
    MAX_NAME,
    IncidentTexts,
    StatusFrom,
)

TEMPLATES = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
"""Every rule template is compiled here: sandboxed (the texts are public), strict about undefined names."""


@dataclass(frozen=True)
class Rule:
    """One loaded rule, its component names resolved to ids where the page is known."""

    name: str
    file: str
    matchers: tuple[Matcher, ...]
    page: str
    components: tuple[tuple[str, str], ...]
    """(id or unresolved name, display name)."""
    status: ComponentStatus | StatusFrom
    group_by: tuple[str, ...]
    texts: IncidentTexts
    continue_: bool
    timings: Timings
    notify: NotifyPolicy
    suppress_during_maintenance: bool
    heartbeat_timeout: timedelta | None = None

    def matches(self, alert: Alert) -> bool:
        """Whether every matcher of the rule matches the alert's labels (no matchers: every alert)."""
        return all(m.matches(alert.labels) for m in self.matchers)

    def status_for(self, alert: Alert) -> ComponentStatus:
        """The status the rule gives a component for ``alert``: fixed, or mapped from a label (the default
        when the label is absent or unmapped).
        """
        if isinstance(self.status, ComponentStatus):
            return self.status
        value = alert.labels.get(self.status.from_label)
        return self.status.map.get(value, self.status.default) if value is not None else self.status.default

    def group_key(self, alert: Alert) -> str:
        """The incident group ``alert`` belongs to: the rule's name, plus its ``group_by`` label values
        (missing labels as empty).
        """
        if not self.group_by:
            return self.name
        values = ",".join(f'{label}="{alert.labels.get(label, "")}"' for label in self.group_by)
        return f"{self.name}{{{values}}}"


@dataclass
class GroupSpec:
    """One incident group of an evaluation: its rule, its alerts, and its texts rendered from them."""

    key: str
    rule: Rule
    alerts: list[Alert] = field(default_factory=list)
    name: str = ""
    message: str = ""
    resolved_message: str = ""
    intermittent_message: str = ""


@dataclass
class Evaluation:
    """What the rules make of the active alerts: impacts, groups by key, and the evidence behind them."""

    impacts: list[Impact]
    groups: dict[str, GroupSpec]
    matches: dict[tuple[str, str], list[str]]
    """``(source, fingerprint)`` -> names of the rules that matched the alert."""
    heartbeats: dict[str, tuple[timedelta, datetime | None]] = field(default_factory=dict)
    """Heartbeat rule -> (timeout, when a matching firing alert was last received)."""
    template_failures: list[tuple[str, str]] = field(default_factory=list)
    """(template, error) for each text that fell back to its default, for the caller to report."""


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


@functools.lru_cache(maxsize=1024)
def _compiled(template: str) -> Template:
    return TEMPLATES.from_string(template)


def render(
    template: str,
    context: Mapping[str, Any],
    fallback: str,
    *,
    limit: int,
    what: str,
    failures: list[tuple[str, str]] | None = None,
) -> str:
    """The rendered text, or ``fallback`` when the template fails (noted in ``failures``)."""
    try:
        text = _compiled(template).render(**context).strip()
    except (TemplateError, TypeError, ValueError, KeyError, AttributeError) as exc:
        if failures is not None:
            failures.append((what, str(exc)))
        text = fallback
    return (text or fallback)[:limit]


class RuleSet:
    """Loaded rules in file order, evaluated first to last (a match stops unless the rule continues)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)

    def evaluate(self, alerts: Sequence[Alert]) -> Evaluation:
        """Evaluate every alert against the rules; pure, and a template that fails falls back to its
        default text, reported in ``template_failures`` instead of raising.
        """
        groups: dict[str, GroupSpec] = {}
        matches: dict[tuple[str, str], list[str]] = {}
        hits: list[tuple[Alert, Rule, str]] = []
        failures: list[tuple[str, str]] = []
        heartbeats: dict[str, tuple[timedelta, datetime | None]] = {
            r.name: (r.heartbeat_timeout, None) for r in self.rules if r.heartbeat_timeout is not None
        }
        for alert in alerts:
            matched: list[str] = []
            for rule in self.rules:
                if not rule.matches(alert):
                    continue
                matched.append(rule.name)
                if rule.heartbeat_timeout is not None:
                    if alert.firing:
                        last = heartbeats[rule.name][1]
                        if last is None or alert.received_at > last:
                            heartbeats[rule.name] = (rule.heartbeat_timeout, alert.received_at)
                elif alert.firing:
                    key = rule.group_key(alert)
                    groups.setdefault(key, GroupSpec(key, rule)).alerts.append(alert)
                    hits.append((alert, rule, key))
                if not rule.continue_:
                    break
            matches[(alert.source.value, alert.fingerprint)] = matched
        for group in groups.values():
            self._render(group, failures)
        impacts: list[Impact] = []
        for alert, rule, key in hits:
            group = groups[key]
            status = rule.status_for(alert)
            for component, display in rule.components:
                impacts.append(
                    Impact(
                        rule=rule.name,
                        status_page=rule.page,
                        component=component,
                        status=status,
                        group_key=key,
                        alert_source=alert.source,
                        alert_fingerprint=alert.fingerprint,
                        incident_name=group.name,
                        message=group.message,
                        resolved_message=group.resolved_message,
                        intermittent_message=group.intermittent_message,
                        component_name=display,
                        timings=rule.timings,
                        notify=rule.notify,
                        suppress_during_maintenance=rule.suppress_during_maintenance,
                    )
                )
        return Evaluation(impacts, groups, matches, heartbeats, failures)

    @staticmethod
    def _render(group: GroupSpec, failures: list[tuple[str, str]]) -> None:
        rule = group.rule
        alerts = sorted(group.alerts, key=lambda a: (a.starts_at, a.fingerprint))
        context = {
            "labels": _common([a.labels for a in alerts]),
            "annotations": _common([a.annotations for a in alerts]),
            "alerts": [
                {
                    "labels": dict(a.labels),
                    "annotations": dict(a.annotations),
                    "starts_at": a.starts_at.isoformat(),
                    "status": a.status.value,
                }
                for a in alerts
            ],
            "components": [display for _, display in rule.components],
            "status": worst(rule.status_for(a) for a in alerts).value,
        }
        defaults = {
            "name": DEFAULT_NAME,
            "message": DEFAULT_MESSAGE,
            "resolved_message": DEFAULT_RESOLVED,
            "intermittent_message": DEFAULT_INTERMITTENT,
        }
        for key, default in defaults.items():
            limit = MAX_NAME if key == "name" else MAX_MESSAGE
            fallback = render(default, context, key, limit=MAX_MESSAGE, what="default", failures=failures)
            text = render(
                getattr(rule.texts, key),
                context,
                fallback,
                limit=limit,
                what=f"{rule.name}.incident.{key}",
                failures=failures,
            )
            setattr(group, key, text)
