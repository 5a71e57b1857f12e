"""Loading rule files: validation up front, and page and component names resolved.

Loading validates everything it can before a rule is used — unknown keys, bad matchers, durations,
statuses, templates, and (with a page directory) page and component names — and reports every
problem with its file, rule and field (``RulesError``), never only the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateError
from pydantic import (
    ValidationError,
)

from bridge.domain import (
    PageDirectory,
    PageInfo,
    Timings,
)
from bridge.observability import get_logger
from bridge.rules.evaluate import TEMPLATES, Rule, RuleSet
from bridge.rules.matchers import MatcherError, parse_matcher
from bridge.rules.schema import RuleFileModel, RuleModel

log = get_logger(__name__)


@dataclass(frozen=True)
class RuleProblem:
    """One problem of a rules path: the file, the rule and field when known, and what is wrong."""

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
    """The rules cannot be loaded; ``problems`` lists every problem found, the message one per line."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def rule_files(path: Path) -> list[Path]:
    """The ``*.yaml``/``*.yml`` files of a directory, sorted, hidden ones skipped; a file path as itself."""
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
            TEMPLATES.parse(text)
            TEMPLATES.from_string(text)
        except TemplateError as exc:
            problems.append(RuleProblem(file, rule.name, f"incident.{key}", f"template error: {exc}"))


def load_rules(path: Path, directory: PageDirectory | None = None) -> RuleSet:
    """Every rule of the file or directory, resolved against ``directory`` when given; raises RulesError
    with every problem found, never the first only.
    """
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
    """The problems :func:`load_rules` would raise, empty when the rules load."""
    try:
        load_rules(path, directory)
    except RulesError as exc:
        return exc.problems
    return []
