"""Rule files: loading with validation, pure evaluation, and hot reload.

A rule maps matching alerts to component statuses on a status page and to an incident *group* (one
public incident per rule and distinct ``group_by`` label values). Evaluation is pure: alerts in,
impacts out, no clock and no I/O. Loading validates everything it can up front — unknown keys, bad
matchers, durations, statuses, templates, and (with a page directory) page and component names —
and reports every problem with its file, rule and field.

Templates are Jinja2 in a sandbox: the page is public, so the default texts are the rule's own words
and a template that fails at render time falls back to them (with a logged warning) instead of
publishing an error or crashing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.domain import (
    DEFAULT_INTERMITTENT_MESSAGE,
    Alert,
    ComponentStatus,
    Impact,
    NotifyPolicy,
    PageDirectory,
    PageInfo,
    Timings,
    parse_duration,
    worst,
)
from bridge.observability import get_logger
from bridge.rules.matchers import Matcher, MatcherError, parse_matcher

log = get_logger(__name__)

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
MAX_NAME = 200
MAX_MESSAGE = 4096
DEFAULT_NAME = "{{ components | join(', ') }} disruption"
DEFAULT_MESSAGE = "We are investigating problems affecting {{ components | join(', ') }}."
DEFAULT_RESOLVED = "This incident has been resolved."
DEFAULT_INTERMITTENT = DEFAULT_INTERMITTENT_MESSAGE

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)


def _notify(value: Any) -> Any:
    if value is True:
        return NotifyPolicy.ALWAYS
    if value is False:
        return NotifyPolicy.NEVER
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    open_after: Duration = timedelta(0)
    resolve_after: Duration = timedelta(minutes=5)
    change_after: Duration = timedelta(0)
    downgrade_after: Duration | None = None
    flap_threshold: int = Field(default=4, ge=0, le=1000)
    flap_window: Duration = timedelta(minutes=10)
    notify_subscribers: Annotated[NotifyPolicy, BeforeValidator(_notify)] = NotifyPolicy.NEVER
    suppress_during_maintenance: bool = True


class StatusFrom(_Model):
    from_label: str
    map: dict[str, ComponentStatus] = Field(default_factory=dict)
    default: ComponentStatus = ComponentStatus.PARTIAL_OUTAGE


class IncidentTexts(_Model):
    name: str = DEFAULT_NAME
    message: str = DEFAULT_MESSAGE
    resolved_message: str = DEFAULT_RESOLVED
    intermittent_message: str = DEFAULT_INTERMITTENT


class HeartbeatSpec(_Model):
    timeout: Duration


class RuleModel(_Model):
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
    status_page: str | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    rules: list[RuleModel] = Field(default_factory=list)
    maintenances: list[dict[str, Any]] = Field(default_factory=list)
    """Maintenance windows may live in rule files too; they are validated by ``bridge.maintenance``."""


@dataclass(frozen=True)
class RuleProblem:
    file: str
    rule: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.file]
        if self.rule is not None:
            parts.append(f"rule {self.rule!r}")
        if self.field:
            parts.append(self.field)
        return ": ".join(parts) + f": {self.message}"


class RulesError(Exception):
    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Rule:
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
        return all(m.matches(alert.labels) for m in self.matchers)

    def status_for(self, alert: Alert) -> ComponentStatus:
        if isinstance(self.status, ComponentStatus):
            return self.status
        value = alert.labels.get(self.status.from_label)
        return self.status.map.get(value, self.status.default) if value is not None else self.status.default

    def group_key(self, alert: Alert) -> str:
        if not self.group_by:
            return self.name
        values = ",".join(f'{label}="{alert.labels.get(label, "")}"' for label in self.group_by)
        return f"{self.name}{{{values}}}"


@dataclass
class GroupSpec:
    key: str
    rule: Rule
    alerts: list[Alert] = field(default_factory=list)
    name: str = ""
    message: str = ""
    resolved_message: str = ""
    intermittent_message: str = ""


@dataclass
class Evaluation:
    impacts: list[Impact]
    groups: dict[str, GroupSpec]
    matches: dict[tuple[str, str], list[str]]
    """``(source, fingerprint)`` -> names of the rules that matched the alert."""
    heartbeats: dict[str, tuple[timedelta, datetime | None]] = field(default_factory=dict)
    """Heartbeat rule -> (timeout, when a matching firing alert was last received)."""


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


_warned: set[tuple[str, str]] = set()


@functools.lru_cache(maxsize=1024)
def _compiled(template: str) -> Template:
    return _env.from_string(template)


def render(template: str, context: Mapping[str, Any], fallback: str, *, limit: int, what: str) -> str:
    try:
        text = _compiled(template).render(**context).strip()
    except (TemplateError, TypeError, ValueError, KeyError, AttributeError) as exc:
        # Evaluation runs on every reconcile pass: say it once per template and error, not each time.
        if (what, str(exc)) not in _warned and len(_warned) < 10_000:
            _warned.add((what, str(exc)))
            log.warning("template failed; using the rule's default text", template=what, error=str(exc))
        text = fallback
    return (text or fallback)[:limit]


class RuleSet:
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)

    def evaluate(self, alerts: Sequence[Alert]) -> Evaluation:
        groups: dict[str, GroupSpec] = {}
        matches: dict[tuple[str, str], list[str]] = {}
        hits: list[tuple[Alert, Rule, str]] = []
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
            self._render(group)
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
        return Evaluation(impacts, groups, matches, heartbeats)

    @staticmethod
    def _render(group: GroupSpec) -> None:
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
            fallback = render(default, context, key, limit=MAX_MESSAGE, what="default")
            text = render(
                getattr(rule.texts, key), context, fallback, limit=limit, what=f"{rule.name}.incident.{key}"
            )
            setattr(group, key, text)


# --- loading ---------------------------------------------------------------------------------------


def rule_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.suffix in (".yaml", ".yml") and p.is_file() and not p.name.startswith(".")
        )
    return [path]


def _loc_to_problem(file: str, raw_rules: Any, loc: Sequence[Any], message: str) -> RuleProblem:
    rule: str | None = None
    parts = [str(p) for p in loc]
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        index = loc[1]
        name = (
            raw_rules[index].get("name")
            if isinstance(raw_rules, list) and index < len(raw_rules) and isinstance(raw_rules[index], dict)
            else None
        )
        rule = str(name) if name else f"#{index + 1}"
        parts = parts[2:]
    # pydantic names union members in its locations ("str-enum[ComponentStatus]", "StatusFrom"):
    # they mean nothing to the person editing the YAML.
    parts = [p for p in parts if "[" not in p and not p[:1].isupper()]
    return RuleProblem(file, rule, ".".join(parts) or None, message.removeprefix("Value error, "))


def _resolve_components(page: PageInfo, ref: str) -> list[tuple[str, str]]:
    found = [c for c in page.components if ref == c.id]
    if not found:
        found = [c for c in page.components if ref == c.path]
    if not found:
        found = [c for c in page.components if c.path.endswith("/" + ref) or c.name == ref]
    return [(c.id, c.path) for c in found]


def _check_templates(file: str, rule: RuleModel, problems: list[RuleProblem]) -> None:
    for key in ("name", "message", "resolved_message", "intermittent_message"):
        text = getattr(rule.incident, key)
        try:
            _env.parse(text)
            _env.from_string(text)
        except TemplateError as exc:
            problems.append(RuleProblem(file, rule.name, f"incident.{key}", f"template error: {exc}"))


def load_rules(path: Path, directory: PageDirectory | None = None) -> RuleSet:
    problems: list[RuleProblem] = []
    rules: list[Rule] = []
    if not path.exists():
        raise RulesError([RuleProblem(str(path), None, None, "no such file or directory")])
    files = rule_files(path)
    if not files:
        raise RulesError([RuleProblem(str(path), None, None, "no *.yaml rule files in this directory")])
    seen: dict[str, str] = {}
    for file in files:
        name = str(file)
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(RuleProblem(name, None, None, f"cannot read: {exc.strerror}"))
            continue
        except yaml.YAMLError as exc:
            problems.append(RuleProblem(name, None, None, f"not valid YAML: {exc}"))
            continue
        if raw is None:
            continue
        if not isinstance(raw, dict):
            problems.append(RuleProblem(name, None, None, "expected a mapping with 'rules:'"))
            continue
        raw_rules = raw.get("rules")
        if raw_rules is not None and not isinstance(raw_rules, list):
            problems.append(RuleProblem(name, None, "rules", "must be a list of rules"))
            continue
        try:
            model = RuleFileModel.model_validate({**raw, "rules": []})
        except ValidationError as exc:
            problems += [_loc_to_problem(name, None, e["loc"], e["msg"]) for e in exc.errors()]
            continue
        for index, raw_rule in enumerate(raw_rules or []):
            try:
                rm = RuleModel.model_validate(raw_rule)
            except ValidationError as exc:
                problems += [
                    _loc_to_problem(name, raw_rules, ["rules", index, *e["loc"]], e["msg"])
                    for e in exc.errors()
                ]
                continue
            if rm.name in seen:
                problems.append(
                    RuleProblem(name, rm.name, "name", f"duplicate rule name (also in {seen[rm.name]})")
                )
                continue
            seen[rm.name] = name
            rule = _build_rule(name, model, rm, directory, problems)
            if rule is not None:
                rules.append(rule)
    if problems:
        raise RulesError(problems)
    return RuleSet(rules)


def _build_rule(
    file: str,
    model: RuleFileModel,
    rm: RuleModel,
    directory: PageDirectory | None,
    problems: list[RuleProblem],
) -> Rule | None:
    before = len(problems)
    matchers = []
    for i, text in enumerate(rm.matchers):
        try:
            matchers.append(parse_matcher(text))
        except MatcherError as exc:
            problems.append(RuleProblem(file, rm.name, f"matchers[{i}]", str(exc)))
    page_ref = rm.status_page or model.status_page
    if page_ref is None and rm.heartbeat is not None:
        page_ref = ""
    if page_ref is None:
        problems.append(
            RuleProblem(
                file, rm.name, "status_page", "no status page: set it on the rule or at the top of the file"
            )
        )
        return None
    components: list[tuple[str, str]] = []
    page_id = page_ref
    if directory is not None and rm.heartbeat is None:
        page = directory.page(page_ref)
        if page is None:
            problems.append(RuleProblem(file, rm.name, "status_page", f"unknown status page {page_ref!r}"))
            return None
        page_id = page.id
        for i, ref in enumerate(rm.components):
            found = _resolve_components(page, ref)
            if not found:
                problems.append(
                    RuleProblem(
                        file, rm.name, f"components[{i}]", f"no component {ref!r} on page {page.name!r}"
                    )
                )
            elif len(found) > 1:
                paths = ", ".join(p for _, p in found)
                problems.append(
                    RuleProblem(
                        file,
                        rm.name,
                        f"components[{i}]",
                        f"{ref!r} is ambiguous ({paths}): use Group/Name or the ID",
                    )
                )
            else:
                components.append(found[0])
    else:
        components = [(ref, ref) for ref in rm.components]
    _check_templates(file, rm, problems)
    if len(problems) > before:
        return None
    d = model.defaults
    return Rule(
        name=rm.name,
        file=file,
        matchers=tuple(matchers),
        page=page_id,
        components=tuple(components),
        status=rm.status,
        group_by=tuple(rm.group_by),
        texts=rm.incident,
        continue_=rm.continue_,
        timings=Timings(
            open_after=rm.open_after if rm.open_after is not None else d.open_after,
            resolve_after=rm.resolve_after if rm.resolve_after is not None else d.resolve_after,
            change_after=rm.change_after if rm.change_after is not None else d.change_after,
            downgrade_after=rm.downgrade_after if rm.downgrade_after is not None else d.downgrade_after,
            flap_threshold=rm.flap_threshold if rm.flap_threshold is not None else d.flap_threshold,
            flap_window=rm.flap_window if rm.flap_window is not None else d.flap_window,
        ),
        notify=rm.notify_subscribers or d.notify_subscribers,
        suppress_during_maintenance=rm.suppress_during_maintenance
        if rm.suppress_during_maintenance is not None
        else d.suppress_during_maintenance,
        heartbeat_timeout=rm.heartbeat.timeout if rm.heartbeat is not None else None,
    )


def check_rules(path: Path, directory: PageDirectory | None = None) -> list[RuleProblem]:
    try:
        load_rules(path, directory)
    except RulesError as exc:
        return exc.problems
    return []


class RulesHolder:
    """The rules in force, reloaded on SIGHUP or file change; a broken file keeps the previous rules."""

    def __init__(
        self,
        path: Path,
        *,
        directory: PageDirectory | None = None,
        on_reload: Callable[[], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self._on_error = on_error
        self.directory = directory
        self._on_reload = on_reload
        self.current = load_rules(path, directory)
        self.last_error: str | None = None
        self.generation = 1
        self._stamp = self._fingerprint()

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = rule_files(self.path)
            return tuple((str(f), (st := f.stat()).st_mtime_ns, st.st_size) for f in files)
        except OSError:
            return ()

    def changed_on_disk(self) -> bool:
        return self._fingerprint() != self._stamp

    def reload(self) -> bool:
        self._stamp = self._fingerprint()
        try:
            rules = load_rules(self.path, self.directory)
        except RulesError as exc:
            self.last_error = str(exc)
            # The message names file, rule and field; a traceback would only hide it.
            log.error("rules reload failed; keeping the previous rules", error=self.last_error)  # noqa: TRY400
            if self._on_error is not None:
                self._on_error(self.last_error)
            return False
        self.current = rules
        self.last_error = None
        self.generation += 1
        log.info("rules reloaded", rules=len(rules.rules), generation=self.generation)
        if self._on_reload is not None:
            self._on_reload()
        return True
