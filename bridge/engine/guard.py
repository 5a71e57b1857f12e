"""The blast-radius guard: hold publications that look like a broken pipeline, not an outage.

It judges evidence. Three conditions, all measured at planning time: more than ``max_new``
incidents opening within ``window`` (a rule gone wrong, a label rename, a monitoring outage
reporting everything down); more than ``max_new`` groups made to appear by one rules reload
(groups with no impact in the pass before it), whenever they open — ``open_after`` may spread
their opens over longer than the window, and a reload is a change an operator made, so the
number that matters is per reload, not per minute; and more than half of the open incidents winding down at once while
their alerts *vanished* — a TTL expiry, a pull that no longer sees them, a rules reload that no
longer matches them, a lost store — rather than being resolved by their source (an Alertmanager
restart that lost its state looks like that). A wind-down whose alerts the source explicitly
resolved (or Alertmanager silenced) is explained and never held — unless a heartbeat rule is
blind at that moment: a Prometheus that lost its targets resolves everything explicitly.

While a condition holds, those publications wait — visible in the state API, logged and metered —
until an admin releases them, or the condition has persisted for ``release_after`` (a real mass
event should still reach the page). Pure: it takes ``now`` and the evidence and returns what to hold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bridge.domain import IncidentStatus, PublishedGroup
from bridge.engine.model import CreateIncident, Plan, UpdateIncident

NEW_INCIDENTS = "new_incidents"
RELOAD_OPENS = "reload_opens"
MASS_RESOLVE = "mass_resolve"


@dataclass(frozen=True)
class GuardPolicy:
    """The guard's thresholds: more than ``max_new`` opens within ``window`` (or from one rules reload)
    are held, and any hold lifts by itself after ``release_after``.
    """

    max_new: int = 5
    window: timedelta = timedelta(minutes=5)
    release_after: timedelta = timedelta(minutes=15)


@dataclass
class GuardState:
    """What the guard remembers between passes (one process; a new leader starts empty)."""

    creates: deque[datetime] = field(default_factory=deque)
    """When recent incidents were opened (for the sliding window)."""
    since: dict[str, datetime] = field(default_factory=dict)
    """Condition -> when it started holding."""
    impacted: frozenset[str] = frozenset()
    """The groups with an impact in the last pass."""
    generation: int | None = None
    """The rules' generation in the last pass (``None``: no pass yet)."""
    reload_cohort: frozenset[str] = frozenset()
    """The groups the last rules reload made appear."""

    def note_pass(self, generation: int, impacted: frozenset[str]) -> None:
        """Remember this pass's rules and impacted groups; a new generation starts a new cohort."""
        if self.generation is not None and generation != self.generation:
            self.reload_cohort = impacted - self.impacted
        self.generation = generation
        self.impacted = impacted

    def record_create(self, now: datetime) -> None:
        """Count an incident opened at ``now`` in the sliding window of recent opens."""
        self.creates.append(now)


def _opens(plan: Plan) -> bool:
    return any(
        isinstance(a, CreateIncident) and a.incident_status is not IncidentStatus.RESOLVED
        for a in plan.actions
    )


def _winds_down(plan: Plan) -> bool:
    return any(
        isinstance(a, UpdateIncident)
        and a.incident_status in (IncidentStatus.MONITORING, IncidentStatus.RESOLVED)
        for a in plan.actions
    )


def check(
    plans: Mapping[str, Plan],
    published: Mapping[str, PublishedGroup],
    now: datetime,
    policy: GuardPolicy,
    state: GuardState,
    *,
    released_at: datetime | None,
    explained: Mapping[str, bool] | None = None,
    blind: bool = False,
) -> dict[str, str]:
    """Group key -> why its publication is held (empty: nothing held). Updates ``state.since``.

    ``explained`` says, per winding-down group, whether every alert behind it was resolved by its
    source or silenced (missing: not explained); ``blind`` (a heartbeat is missing) explains none."""
    explained = explained or {}
    while state.creates and state.creates[0] <= now - policy.window:
        state.creates.popleft()
    held: dict[str, str] = {}
    opening = [k for k, p in plans.items() if _opens(p)]
    conditions: dict[str, tuple[bool, list[str], str]] = {}
    recent = len(state.creates)
    conditions[NEW_INCIDENTS] = (
        recent + len(opening) > policy.max_new,
        opening,
        f"{recent + len(opening)} new incidents within {policy.window} (limit {policy.max_new})",
    )
    # A cohort counts while its groups still have an impact; those not yet published are held.
    cohort = [k for k in sorted(state.reload_cohort) if k in state.impacted]
    conditions[RELOAD_OPENS] = (
        len(cohort) > policy.max_new,
        [k for k in cohort if k in opening],
        f"{len(cohort)} new incident groups from one rules reload (limit {policy.max_new})",
    )
    open_groups = [k for k, p in published.items() if p.open and not p.taken_over]
    resolving = [
        k
        for k, p in plans.items()
        if k in open_groups and _winds_down(p) and (blind or not explained.get(k, False))
    ]
    why = "with no resolve from their source" if not blind else "while a heartbeat is missing"
    conditions[MASS_RESOLVE] = (
        len(open_groups) >= 2 and len(resolving) * 2 > len(open_groups),
        resolving,
        f"{len(resolving)} of {len(open_groups)} open incidents resolving at once {why}",
    )
    let_through: set[str] = set()
    for name, (active, keys, why) in conditions.items():
        if not active:
            state.since.pop(name, None)
            continue
        since = state.since.setdefault(name, now)
        if (released_at is not None and released_at >= since) or now - since >= policy.release_after:
            # Released: what this condition held goes, even where another condition (e.g. the
            # window, counting these very opens) started later — one release, not a relay of holds.
            let_through.update(keys)
            continue
        for key in keys:
            held.setdefault(key, f"blast-radius guard ({name}): {why}; held since {since.isoformat()}")
    return {k: why for k, why in held.items() if k not in let_through}
