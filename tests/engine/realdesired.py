"""Desired state as production makes it, for tests downstream of ``build_desired``.

A rules document (YAML, loaded by the real loader) -> the real rule evaluation over real
:class:`~bridge.domain.Alert` objects -> :func:`bridge.engine.desired.build_desired`. Tests of the
planner and beyond take their ``DesiredGroup`` from here, never build one by hand: the real
producer returns *no entry* for a group with nothing firing, and a hand-built quiet group (one
with no components) is an input the planner never receives (see tests/test_no_hand_built_desired.py).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterable, Mapping, Sequence, Set
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bridge.domain import Alert, AlertStatus, PublishedGroup, Source
from bridge.engine.desired import build_desired
from bridge.engine.model import DesiredGroup
from bridge.ingest.payloads import fingerprint
from bridge.rules import RuleSet, load_rules

SEVERITY_LABEL = "severity"
"""Rules built here map this label's value (a ``ComponentStatus`` value) to the component status."""

_STATUS_FROM_LABEL = {
    "from_label": SEVERITY_LABEL,
    "map": {s: s for s in ("degraded_performance", "partial_outage", "full_outage")},
}


def rule(
    name: str,
    components: Sequence[str],
    *,
    matchers: Sequence[str] | None = None,
    incident: Mapping[str, str] | None = None,
    **keys: Any,
) -> dict[str, Any]:
    """One rule of a rules document. ``keys`` are further rule keys as in bridge/rules/README.md
    (``open_after="2m"``, ``notify_subscribers="open_and_resolve"``, ...). By default the rule
    matches alerts labelled ``group=<name>`` and takes each alert's status from its severity label."""
    out: dict[str, Any] = {
        "name": name,
        "matchers": list(matchers if matchers is not None else [f'group = "{name}"']),
        "components": list(components),
        "status": _STATUS_FROM_LABEL,
        **keys,
    }
    if incident:
        out["incident"] = dict(incident)
    return out


def document(*rules: Mapping[str, Any], status_page: str = "page-1", **defaults: Any) -> str:
    """A rules file (YAML text) with ``rules`` and optional ``defaults``."""
    doc: dict[str, Any] = {"status_page": status_page, "rules": [dict(r) for r in rules]}
    if defaults:
        doc["defaults"] = defaults
    return yaml.safe_dump(doc, sort_keys=False)


@functools.lru_cache(maxsize=256)
def load(text: str) -> RuleSet:
    """Load a rules document with the real loader (which reads files), cached by its text."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(text, encoding="utf-8")
        return load_rules(path)


def alert(
    labels: Mapping[str, str],
    *,
    starts_at: datetime,
    resolved_at: datetime | None = None,
    source: Source = Source.ALERTMANAGER,
) -> Alert:
    """An Alertmanager alert as ingest normalizes it (fingerprint from the labels)."""
    return Alert(
        source=source,
        fingerprint=fingerprint(labels),
        labels=dict(labels),
        annotations={},
        status=AlertStatus.FIRING if resolved_at is None else AlertStatus.RESOLVED,
        starts_at=starts_at,
        ends_at=resolved_at,
        generator_url="",
        received_at=resolved_at or starts_at,
        ended_by="resolved" if resolved_at is not None else None,
    )


def desired_state(
    rules: RuleSet | str,
    alerts: Iterable[Alert],
    published: Mapping[str, PublishedGroup] | None = None,
    under_maintenance: Mapping[str, Set[str]] | None = None,
) -> dict[str, DesiredGroup]:
    """What a reconcile pass computes: evaluate the rules over the alerts, fold with build_desired.
    Look a group up with ``.get(key)``: a group with nothing firing is absent (``None``)."""
    ruleset = load(rules) if isinstance(rules, str) else rules
    alerts = list(alerts)
    evaluation = ruleset.evaluate(alerts)
    by_id = {(a.source, a.fingerprint): a for a in alerts}
    return build_desired(evaluation.impacts, by_id, published or {}, under_maintenance)
