"""Desired state: fold the rules' impacts into one :class:`DesiredGroup` per incident group.

Pure: it takes the impacts of the currently firing alerts, the alerts themselves (for their start
times), what is published (an open incident keeps going through a maintenance window) and the
components under maintenance right now. Hysteresis that needs memory (``change_after`` holds, the
``resolve_after`` quiet period) is the planner's business; this module only knows the present.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime

from bridge.domain import SEVERITY, Alert, ComponentStatus, Impact, PublishedGroup, Source
from bridge.engine.model import ComponentReason, DesiredGroup


@dataclass
class _Acc:
    first: Impact
    components: dict[str, ComponentStatus] = field(default_factory=dict)
    alerts: dict[str, set[str]] = field(default_factory=dict)
    first_firing_at: datetime | None = None
    suppressed: set[str] = field(default_factory=set)


def build_desired(
    impacts: Iterable[Impact],
    alerts: Mapping[tuple[Source, str], Alert],
    published: Mapping[str, PublishedGroup],
    under_maintenance: Mapping[str, Set[str]] | None = None,
) -> dict[str, DesiredGroup]:
    """One desired group per group key that has at least one impact.

    An impact on a component under an in-progress maintenance window does not count when its rule
    suppresses during maintenance and the group has no open incident: maintenance must not open
    incidents, but an incident that was already open keeps going.
    """
    under_maintenance = under_maintenance or {}
    acc: dict[str, _Acc] = {}
    for impact in impacts:
        group = acc.get(impact.group_key)
        if group is None:
            group = acc[impact.group_key] = _Acc(first=impact)
        pub = published.get(impact.group_key)
        if (
            impact.suppress_during_maintenance
            and impact.component in under_maintenance.get(impact.status_page, ())
            and not (pub is not None and pub.open and not pub.taken_over)
        ):
            group.suppressed.add(impact.component)
            continue
        current = group.components.get(impact.component, ComponentStatus.OPERATIONAL)
        if SEVERITY[impact.status] > SEVERITY[current]:
            group.components[impact.component] = impact.status
        group.alerts.setdefault(impact.component, set()).add(
            f"{impact.alert_source.value}:{impact.alert_fingerprint}"
        )
        alert = alerts.get((impact.alert_source, impact.alert_fingerprint))
        if alert is not None and (group.first_firing_at is None or alert.starts_at < group.first_firing_at):
            group.first_firing_at = alert.starts_at

    result: dict[str, DesiredGroup] = {}
    for key, group in acc.items():
        first = group.first
        components = {c: s for c, s in group.components.items() if s is not ComponentStatus.OPERATIONAL}
        result[key] = DesiredGroup(
            key=key,
            status_page_id=first.status_page,
            rule=first.rule,
            name=first.incident_name,
            message=first.message,
            resolved_message=first.resolved_message,
            intermittent_message=first.intermittent_message,
            components=components,
            first_firing_at=group.first_firing_at if components else None,
            timings=first.timings,
            notify=first.notify,
            reasons={
                c: ComponentReason(rule=first.rule, alerts=tuple(sorted(group.alerts[c]))) for c in components
            },
            suppressed=tuple(sorted(group.suppressed - set(components))),
        )
    return result
