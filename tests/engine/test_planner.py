"""The planner is pure: table tests of the lifecycle, then a hypothesis state machine that throws
alert events, time and crashes at it and checks that the page converges with never two open
incidents for one group."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bridge.domain import Alert, AlertStatus, NotifyPolicy, PublishedGroup, worst
from bridge.domain import ComponentStatus as CS
from bridge.domain import IncidentStatus as IS
from bridge.engine.model import (
    MAX_UPDATES,
    CreateIncident,
    DesiredGroup,
    Policy,
    ReadBack,
    RenameIncident,
    UpdateIncident,
    idempotency_key,
)
from bridge.engine.planner import (
    after_create,
    after_rename,
    after_update,
    before_create,
    note_flip,
    plan,
    with_firing_record,
    with_pending,
)
from tests.engine import realdesired

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAGE = "page-1"
POLICY = Policy(coalesce_window=timedelta(seconds=2))


def desired(
    components: dict[str, CS] | None = None,
    *,
    key: str = "g",
    name: str = "API is degraded",
    message: str = "We are looking into it.",
    started: datetime = T0,
    notify: NotifyPolicy = NotifyPolicy.NEVER,
    under_maintenance: set[str] | None = None,
    rule: Mapping[str, str] | None = None,
) -> DesiredGroup | None:
    """The desired state of group ``key`` as a reconcile pass computes it: one rule named ``key``
    over ``components`` (``rule``: its other keys, e.g. ``{"change_after": "30s"}``, as in
    bridge/rules/README.md),
    one firing alert per component status, evaluated and folded by ``build_desired``.

    ``components`` empty means nothing fires: the real producer then has no entry and this is
    ``None``, never a group with no components. A group has one status for all of its rule's
    components (each alert hits every component of its rule), so ``components`` must agree."""
    components = components or {}
    statuses = set(components.values())
    assert len(statuses) <= 1, f"one rule gives all its components one status, not {components}"
    text = realdesired.document(
        realdesired.rule(
            key,
            sorted(components) or ["api"],
            incident={"name": name, "message": message, "resolved_message": "Resolved."},
            notify_subscribers=notify.value,
            **(rule or {}),
        )
    )
    alerts = [
        realdesired.alert({"group": key, realdesired.SEVERITY_LABEL: s.value}, starts_at=started)
        for s in statuses
    ]
    maintenance = {PAGE: under_maintenance} if under_maintenance else None
    return realdesired.desired_state(text, alerts, under_maintenance=maintenance).get(key)


def opened(
    components: dict[str, CS], *, at: datetime = T0, rule: Mapping[str, str] | None = None, **kw: object
) -> PublishedGroup:
    d = desired(components, rule=rule)
    p = plan(d, None, at, POLICY)
    (create,) = p.actions
    assert isinstance(create, CreateIncident)
    pub = after_create(None, create, "inc-1", at)
    return replace(pub, **kw) if kw else pub  # type: ignore[arg-type]


# --- table tests ------------------------------------------------------------------------------


def test_quiet_group_does_nothing() -> None:
    # Nothing fires: the real producer has no entry for the group, the planner gets None.
    assert desired() is None
    assert plan(None, None, T0).actions == ()
    # The one quiet group build_desired does return: its only alert hits a component under
    # maintenance, which must not open an incident.
    suppressed = desired({"api": CS.PARTIAL_OUTAGE}, under_maintenance={"api"})
    assert suppressed is not None
    assert not suppressed.firing
    assert suppressed.suppressed == ("api",)
    assert plan(suppressed, None, T0, POLICY).actions == ()


def test_first_alert_creates_investigating_incident_with_rule_statuses() -> None:
    p = plan(desired({"api": CS.PARTIAL_OUTAGE}), None, T0, POLICY)
    (a,) = p.actions
    assert isinstance(a, CreateIncident)
    assert a.incident_status is IS.INVESTIGATING
    assert a.components == {"api": CS.PARTIAL_OUTAGE}
    assert a.episode == 1
    assert a.idempotency_key == idempotency_key("g", 1)
    assert a.notify_subscribers is False


def test_the_store_identity_scopes_create_keys() -> None:
    """Two stores (a lost one and its replacement) never send the same key for the same episode;
    the empty scope (a store from before scopes) keeps the keys it always had."""
    d = desired({"api": CS.PARTIAL_OUTAGE})
    keys = {
        scope: plan(d, None, T0, replace(POLICY, key_scope=scope)).actions[0]
        for scope in ("", "a" * 32, "b" * 32)
    }
    assert all(isinstance(a, CreateIncident) for a in keys.values())
    sent = {scope: a.idempotency_key for scope, a in keys.items() if isinstance(a, CreateIncident)}
    assert len(set(sent.values())) == 3
    assert sent[""] == idempotency_key("g", 1) == "statusbridge-" + hashlib.sha256(b"g\x001").hexdigest()[:32]
    assert sent["a" * 32] == idempotency_key("g", 1, "a" * 32)


def test_open_after_holds_then_opens() -> None:
    d = desired({"api": CS.FULL_OUTAGE}, rule={"open_after": "2m"})
    early = plan(d, None, T0 + timedelta(seconds=30), POLICY)
    assert early.actions == ()
    assert early.wake_at == T0 + timedelta(minutes=2)
    assert early.held
    assert "open_after" in early.held
    later = plan(d, None, T0 + timedelta(minutes=2), POLICY)
    assert isinstance(later.actions[0], CreateIncident)


def test_component_change_is_one_update_with_full_set() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE})
    now = T0 + timedelta(seconds=10)
    # The rule now names another component (a reload) and its alert is less severe.
    p = plan(desired({"web": CS.DEGRADED_PERFORMANCE}), pub, now, POLICY)
    (u,) = p.actions
    assert isinstance(u, UpdateIncident)
    assert u.incident_status is IS.INVESTIGATING
    assert u.components == {"api": CS.OPERATIONAL, "web": CS.DEGRADED_PERFORMANCE}


def test_message_change_alone_publishes_nothing() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE})
    p = plan(desired({"api": CS.PARTIAL_OUTAGE}, message="other words"), pub, T0 + timedelta(1), POLICY)
    assert p.actions == ()


def test_name_change_renames() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE})
    p = plan(desired({"api": CS.PARTIAL_OUTAGE}, name="New"), pub, T0 + timedelta(seconds=5), POLICY)
    assert p.actions == (RenameIncident("g", "inc-1", "New"),)
    assert after_rename(pub, p.actions[0]).name == "New"


def test_all_resolved_goes_monitoring_then_resolved_after_quiet_period() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE})
    t1 = T0 + timedelta(minutes=1)
    (u,) = plan(desired(), pub, t1, POLICY).actions
    assert isinstance(u, UpdateIncident)
    assert u.incident_status is IS.MONITORING
    assert u.components == {"api": CS.OPERATIONAL}
    pub = after_update(pub, u, t1)
    assert pub.monitoring_since == t1
    waiting = plan(desired(), pub, t1 + timedelta(minutes=4), POLICY)
    assert waiting.actions == ()
    assert waiting.wake_at == t1 + timedelta(minutes=5)
    (r,) = plan(desired(), pub, t1 + timedelta(minutes=5), POLICY).actions
    assert isinstance(r, UpdateIncident)
    assert r.incident_status is IS.RESOLVED
    assert r.components is None
    assert r.message == "Resolved."
    pub = after_update(pub, r, t1 + timedelta(minutes=5))
    assert not pub.open


def test_refire_during_monitoring_reopens_same_incident() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE})
    t1 = T0 + timedelta(minutes=1)
    (u,) = plan(desired(), pub, t1, POLICY).actions
    pub = after_update(pub, u, t1)  # type: ignore[arg-type]
    t2 = t1 + timedelta(minutes=1)
    (again,) = plan(desired({"api": CS.FULL_OUTAGE}), pub, t2, POLICY).actions
    assert isinstance(again, UpdateIncident)
    assert again.incident_id == "inc-1"
    assert again.incident_status is IS.INVESTIGATING
    assert again.components == {"api": CS.FULL_OUTAGE}


def test_firing_after_resolved_opens_a_new_episode() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE}, incident_status=IS.RESOLVED)
    (c,) = plan(desired({"api": CS.PARTIAL_OUTAGE}), pub, T0 + timedelta(hours=1), POLICY).actions
    assert isinstance(c, CreateIncident)
    assert c.episode == 2
    assert c.idempotency_key != idempotency_key("g", 1)


def test_unconfirmed_create_reuses_episode_key() -> None:
    pub = PublishedGroup(key="g", episode=3, status_page_id=PAGE)
    (c,) = plan(desired({"api": CS.PARTIAL_OUTAGE}), pub, T0, POLICY).actions
    assert isinstance(c, CreateIncident)
    assert c.episode == 3


def test_quiet_after_unrecorded_create_settles_it_with_the_same_key() -> None:
    (c,) = plan(desired({"api": CS.PARTIAL_OUTAGE}), None, T0, POLICY).actions
    assert isinstance(c, CreateIncident)
    pub = before_create(None, c)
    (settle,) = plan(desired(), pub, T0 + timedelta(minutes=1), POLICY).actions
    assert isinstance(settle, CreateIncident)
    assert settle.idempotency_key == c.idempotency_key
    assert settle.incident_status is IS.RESOLVED
    assert settle.components == {}
    # the replay returned the original, open incident: the lifecycle winds it down
    pub = after_create(pub, settle, "inc-1", T0, incident_status=IS.INVESTIGATING, components=c.components)
    assert pub.open
    (mon,) = plan(desired(), pub, T0 + timedelta(minutes=2), POLICY).actions
    assert isinstance(mon, UpdateIncident)
    assert mon.incident_status is IS.MONITORING


# A create whose outcome was never recorded (a crash, a timeout) and whose alerts then resolve:
# the planner gets None, so the rule's settings must come from the write-ahead record.


def test_settling_an_unrecorded_create_uses_the_rules_resolved_message() -> None:
    (c,) = plan(desired({"api": CS.PARTIAL_OUTAGE}), None, T0, POLICY).actions
    assert isinstance(c, CreateIncident)
    pub = before_create(None, c)
    (settle,) = plan(desired(), pub, T0 + timedelta(minutes=1), POLICY).actions
    assert isinstance(settle, CreateIncident)
    assert settle.message == "Resolved."


def test_winding_down_a_replayed_create_keeps_the_rules_resolve_after() -> None:
    (c,) = plan(desired({"api": CS.PARTIAL_OUTAGE}, rule={"resolve_after": "30m"}), None, T0, POLICY).actions
    assert isinstance(c, CreateIncident)
    pub = before_create(None, c)
    (settle,) = plan(desired(), pub, T0 + timedelta(minutes=1), POLICY).actions
    assert isinstance(settle, CreateIncident)
    pub = after_create(pub, settle, "inc-1", T0, incident_status=IS.INVESTIGATING, components=c.components)
    t1 = T0 + timedelta(minutes=2)
    (mon,) = plan(desired(), pub, t1, POLICY).actions
    assert isinstance(mon, UpdateIncident)
    pub = after_update(pub, mon, t1)
    held = plan(desired(), pub, t1 + timedelta(minutes=6), POLICY)
    assert held.actions == ()
    assert held.wake_at == t1 + timedelta(minutes=30)


def test_coalescing_window_defers_update() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE})
    p = plan(desired({"api": CS.FULL_OUTAGE}), pub, T0 + timedelta(seconds=1), POLICY)
    assert p.actions == ()
    assert p.wake_at == T0 + timedelta(seconds=2)
    assert isinstance(
        plan(desired({"api": CS.FULL_OUTAGE}), pub, T0 + timedelta(seconds=2)).actions[0], UpdateIncident
    )


@pytest.mark.parametrize(
    ("new", "hold"),
    [(CS.FULL_OUTAGE, timedelta(seconds=30)), (CS.DEGRADED_PERFORMANCE, timedelta(minutes=3))],
)
def test_change_after_and_downgrade_after_hold(new: CS, hold: timedelta) -> None:
    timings = {"change_after": "30s", "downgrade_after": "3m"}
    pub = opened({"api": CS.PARTIAL_OUTAGE}, rule=timings)
    t1 = T0 + timedelta(minutes=1)
    d = desired({"api": new}, rule=timings)
    first = plan(d, pub, t1, POLICY)
    assert first.actions == ()
    assert first.wake_at == t1 + hold
    pending = with_pending(pub, first)
    assert pending is not None
    pub = pending
    assert pub.pending_since == t1
    still = plan(d, pub, t1 + hold - timedelta(seconds=1), POLICY)
    assert still.actions == ()
    assert still.pending_since == t1
    (u,) = plan(d, pub, t1 + hold, POLICY).actions
    assert isinstance(u, UpdateIncident)
    assert u.components == {"api": new}


def test_flap_inside_hold_publishes_nothing_and_resets() -> None:
    timings = {"change_after": "30s"}
    pub = opened({"api": CS.PARTIAL_OUTAGE}, rule=timings)
    t1 = T0 + timedelta(minutes=1)
    p1 = plan(desired({"api": CS.FULL_OUTAGE}, rule=timings), pub, t1, POLICY)
    pending = with_pending(pub, p1)
    assert pending is not None
    pub = pending
    back = plan(desired({"api": CS.PARTIAL_OUTAGE}, rule=timings), pub, t1 + timedelta(seconds=10), POLICY)
    assert back.actions == ()
    assert back.pending_digest is None
    assert with_pending(pub, back).pending_digest is None  # type: ignore[union-attr]


def test_update_budget_keeps_room_for_status_changes() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE}, update_count=MAX_UPDATES - 2)
    t = T0 + timedelta(minutes=1)
    churn = plan(desired({"api": CS.FULL_OUTAGE}), pub, t, POLICY)
    assert churn.actions == ()
    assert churn.held
    assert "budget" in churn.held
    (mon,) = plan(desired(), pub, t, POLICY).actions
    assert isinstance(mon, UpdateIncident)
    pub = after_update(pub, mon, t)
    assert pub.update_count == MAX_UPDATES - 1
    (res,) = plan(desired(), pub, t + timedelta(minutes=5), POLICY).actions
    assert isinstance(res, UpdateIncident)
    assert res.incident_status is IS.RESOLVED
    assert after_update(pub, res, t).update_count == MAX_UPDATES


def test_outcome_unknown_reads_back_first() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE}, outcome_unknown=True)
    assert plan(desired({"api": CS.FULL_OUTAGE}), pub, T0 + timedelta(minutes=1)).actions == (
        ReadBack("g", "inc-1"),
    )


def test_taken_over_is_never_touched() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE}, taken_over=True)
    p = plan(desired({"api": CS.FULL_OUTAGE}), pub, T0 + timedelta(minutes=1))
    assert p.actions == ()
    assert p.held


def test_vanished_group_winds_down() -> None:
    pub = opened({"api": CS.PARTIAL_OUTAGE}, settings=None)
    (u,) = plan(None, pub, T0 + timedelta(minutes=1), POLICY).actions
    assert isinstance(u, UpdateIncident)
    assert u.incident_status is IS.MONITORING
    pub = after_update(pub, u, T0 + timedelta(minutes=1))
    # No rule settings were recorded with this group: the built-in resolve_after (5 minutes)
    # applies, never zero (bug 1 of the timeline issue).
    held = plan(None, pub, T0 + timedelta(minutes=1, seconds=3), POLICY)
    assert held.actions == ()
    assert held.wake_at == T0 + timedelta(minutes=6)
    (r,) = plan(None, pub, T0 + timedelta(minutes=6), POLICY).actions
    assert isinstance(r, UpdateIncident)
    assert r.incident_status is IS.RESOLVED


@pytest.mark.parametrize(
    ("policy", "create", "update", "resolve"),
    [
        (NotifyPolicy.NEVER, False, False, False),
        (NotifyPolicy.ALWAYS, True, True, True),
        (NotifyPolicy.OPEN_AND_RESOLVE, True, False, True),
    ],
)
def test_notify_policy(policy: NotifyPolicy, create: bool, update: bool, resolve: bool) -> None:
    (c,) = plan(desired({"api": CS.PARTIAL_OUTAGE}, notify=policy), None, T0, POLICY).actions
    assert isinstance(c, CreateIncident)
    assert c.notify_subscribers is create
    pub = after_create(None, c, "inc", T0)
    t1 = T0 + timedelta(minutes=1)
    (u,) = plan(desired({"api": CS.FULL_OUTAGE}, notify=policy), pub, t1, POLICY).actions
    assert isinstance(u, UpdateIncident)
    assert u.notify_subscribers is update
    pub = replace(after_update(pub, u, t1), incident_status=IS.MONITORING, monitoring_since=t1)
    pub = replace(pub, components={"api": CS.OPERATIONAL})
    (r,) = plan(desired(notify=policy), pub, t1 + timedelta(hours=1), POLICY).actions
    assert isinstance(r, UpdateIncident)
    assert r.incident_status is IS.RESOLVED
    # nothing fires any more (no desired entry): the policy recorded with the incident applies
    assert r.notify_subscribers is (resolve and policy is not NotifyPolicy.NEVER)


# --- state machine: events, time and crashes converge to one incident per group -----------------


@dataclass
class FakeIncident:
    id: str
    group: str
    status: IS
    components: dict[str, CS]
    updates: int = 1


@dataclass
class FakePage:
    """The status page as a tiny model of the API's semantics (idempotent creates, 100 updates)."""

    incidents: dict[str, FakeIncident] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def create(self, a: CreateIncident) -> FakeIncident:
        if a.idempotency_key in self.keys:
            return self.incidents[self.keys[a.idempotency_key]]
        inc_id = f"inc-{len(self.incidents) + 1}"
        self.incidents[inc_id] = FakeIncident(inc_id, a.group_key, a.incident_status, dict(a.components))
        self.keys[a.idempotency_key] = inc_id
        return self.incidents[inc_id]

    def update(self, a: UpdateIncident) -> None:
        inc = self.incidents[a.incident_id]
        assert inc.status is not IS.RESOLVED, "the API refuses updates to a resolved incident"
        assert inc.updates < MAX_UPDATES, "the API refuses the 101st update"
        inc.updates += 1
        inc.status = a.incident_status
        if a.components is None:
            inc.components = dict.fromkeys(inc.components, CS.OPERATIONAL)
        else:
            inc.components = dict(a.components)

    def open_for(self, group: str) -> list[FakeIncident]:
        return [i for i in self.incidents.values() if i.group == group and i.status is not IS.RESOLVED]


GROUPS = ("g1", "g2")
COMPONENTS = ("api", "web", "db")
MACHINE_RULE_KEYS = {
    "open_after": "5s",
    "resolve_after": "60s",
    "change_after": "3s",
    "downgrade_after": "10s",
}


class LifecycleMachine(RuleBasedStateMachine):
    """Alerts are real :class:`Alert` objects (labels ``group``, ``instance``, ``severity``); each
    reconcile evaluates the rules over them and takes the group's desired state from build_desired,
    as a reconcile pass does. A group's component set changes by reloading its rule."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.page = FakePage()
        self.published: dict[str, PublishedGroup] = {}
        self.firing: dict[tuple[str, str], Alert] = {}
        self.resolved: dict[str, Alert] = {}
        self.rule_components: dict[str, tuple[str, ...]] = dict.fromkeys(GROUPS, COMPONENTS)
        self.maintenance: set[str] = set()
        """Components under an in-progress maintenance window (both rules suppress then)."""

    def rules_text(self) -> str:
        return realdesired.document(
            *(
                realdesired.rule(
                    g,
                    self.rule_components[g],
                    incident={"name": "API is degraded", "resolved_message": "Resolved."},
                    **MACHINE_RULE_KEYS,
                )
                for g in GROUPS
            )
        )

    def desired_for(self, g: str) -> DesiredGroup | None:
        alerts = [*self.firing.values(), *self.resolved.values()]
        under = {PAGE: set(self.maintenance)} if self.maintenance else None
        state = realdesired.desired_state(self.rules_text(), alerts, self.published, under)
        # build_desired's only quiet entry: every impact suppressed by maintenance.
        assert all(d.firing or d.suppressed for d in state.values())
        return state.get(g)

    def _resolve(self, g: str, c: str) -> None:
        old = self.firing.pop((g, c), None)
        if old is not None:
            self.resolved[old.fingerprint] = replace(
                old, status=AlertStatus.RESOLVED, ends_at=self.now, received_at=self.now, ended_by="resolved"
            )

    @rule(g=st.sampled_from(GROUPS), c=st.sampled_from(COMPONENTS), s=st.sampled_from(list(CS)))
    def alert_event(self, g: str, c: str, s: CS) -> None:
        """Alert ``c`` of group ``g`` resolves (``s`` operational) or fires at ``s``; a new severity
        is a new label set, hence a new alert (the old one resolves)."""
        old = self.firing.get((g, c))
        if old is not None and old.labels[realdesired.SEVERITY_LABEL] == s.value:
            return
        self._resolve(g, c)
        if s is not CS.OPERATIONAL:
            labels = {"group": g, "instance": c, realdesired.SEVERITY_LABEL: s.value}
            self.firing[(g, c)] = realdesired.alert(labels, starts_at=self.now)
            self.resolved.pop(self.firing[(g, c)].fingerprint, None)

    @rule(g=st.sampled_from(GROUPS))
    def all_resolve(self, g: str) -> None:
        for c in COMPONENTS:
            self._resolve(g, c)

    @rule(g=st.sampled_from(GROUPS), components=st.sets(st.sampled_from(COMPONENTS), min_size=1))
    def reload_rule(self, g: str, components: set[str]) -> None:
        self.rule_components[g] = tuple(sorted(components))

    @rule(c=st.sampled_from(COMPONENTS), on=st.booleans())
    def maintenance_window(self, c: str, on: bool) -> None:
        """A maintenance window on ``c`` starts or ends."""
        (self.maintenance.add if on else self.maintenance.discard)(c)

    @rule(seconds=st.integers(min_value=0, max_value=120))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(g=st.sampled_from(GROUPS), crash=st.booleans(), unknown=st.booleans())
    def reconcile(self, g: str, crash: bool, unknown: bool) -> None:
        """One pass for a group; ``crash`` loses the commit after the API call, ``unknown`` makes an
        update's outcome unknown (applied on the page, error to the caller)."""
        pub = self.published.get(g)
        d = self.desired_for(g)
        if pub is not None:
            pub = self.published[g] = note_flip(pub, d, self.now)
        result = plan(d, pub, self.now, POLICY)
        pub = with_firing_record(with_pending(pub, result), d)
        for action in result.actions:
            if isinstance(action, CreateIncident):
                pub = self.published[g] = before_create(pub, action)
                inc = self.page.create(action)
                if crash:
                    return
                pub = after_create(
                    pub,
                    action,
                    inc.id,
                    self.now,
                    incident_status=inc.status,
                    components=inc.components,
                    update_count=inc.updates,
                )
            elif isinstance(action, UpdateIncident):
                assert pub is not None
                # written ahead: a crash from here on leaves an update of unknown outcome
                self.published[g] = replace(pub, outcome_unknown=True)
                self.page.update(action)
                if crash:
                    return
                if unknown:
                    assert pub is not None
                    pub = replace(pub, outcome_unknown=True)
                    break
                assert pub is not None
                pub = after_update(pub, action, self.now)
            elif isinstance(action, RenameIncident):
                assert pub is not None
                pub = after_rename(pub, action)
            elif isinstance(action, ReadBack):
                assert pub is not None
                inc = self.page.incidents[action.incident_id]
                pub = replace(
                    pub,
                    incident_status=inc.status,
                    components=dict(inc.components),
                    update_count=inc.updates,
                    last_published_at=self.now,
                    monitoring_since=(pub.monitoring_since or self.now)
                    if inc.status is IS.MONITORING
                    else None,
                    outcome_unknown=False,
                )
        if pub is not None:
            self.published[g] = pub

    @invariant()
    def never_two_open_incidents(self) -> None:
        for g in GROUPS:
            assert len(self.page.open_for(g)) <= 1

    def teardown(self) -> None:
        # Quiesce: alerts stay as they are, time passes, no crashes: the page must converge.
        for _ in range(12):
            self.now += timedelta(seconds=61)
            for g in GROUPS:
                self.reconcile(g, crash=False, unknown=False)
        for g in GROUPS:
            open_ = self.page.open_for(g)
            statuses = [
                CS(a.labels[realdesired.SEVERITY_LABEL]) for (ag, _), a in self.firing.items() if ag == g
            ]
            want = dict.fromkeys(self.rule_components[g], worst(statuses)) if statuses else {}
            if want and not open_ and set(want) <= self.maintenance:
                continue  # maintenance does not open incidents (an open one would keep going)
            if want:
                assert len(open_) == 1, (g, want, self.page.incidents)
                inc = open_[0]
                shown = {c: s for c, s in inc.components.items() if s is not CS.OPERATIONAL}
                if inc.updates < MAX_UPDATES - POLICY.reserved_updates:
                    assert shown == want
                assert inc.status is IS.INVESTIGATING
            else:
                assert open_ == [], (g, self.page.incidents)


LifecycleMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_lifecycle_state_machine = LifecycleMachine.TestCase
