"""The reconcile loop: level-triggered, so lost webhooks, crashes and API outages heal themselves.

A pass reads the active alerts and the published state from the store, evaluates the rules, builds
the desired state, and lets the planner decide per group; the executor performs the actions. Passes
run on every change (the ingest sets an event after each committed webhook), when a hold or window
ends (the planner says when), and at least every ``interval``; every ``drift_interval`` the open
incidents are also read back from the page, so that a human's edit is noticed and respected.

Nothing in a pass depends on the history of webhooks, only on the store: the same inputs give the
same actions, which is what makes restarts and leader changes safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bridge import pacing
from bridge.domain import (
    ActionRecord,
    Alert,
    ComponentStatus,
    Impact,
    IncidentStatus,
    PageDirectory,
    PublishedGroup,
)
from bridge.engine.desired import build_desired
from bridge.engine.executor import ActionFailed, Executor, ProviderUnavailable
from bridge.engine.guard import GuardPolicy, GuardState
from bridge.engine.guard import check as guard_check
from bridge.engine.model import (
    CreateIncident,
    CreateMaintenance,
    DesiredGroup,
    MaintenanceAction,
    Plan,
    Policy,
    PublishedMaintenance,
    ReadBack,
)
from bridge.engine.planner import (
    after_create,
    after_takeover,
    note_flip,
    plan,
    with_firing_record,
    with_pending,
)
from bridge.engine.readback import IncidentView
from bridge.engine.windows import HORIZON, load_published, plan_maintenances
from bridge.maintenance import AnyWindow, next_wakeups, under_maintenance
from bridge.maintenance import desired as desired_maintenances
from bridge.observability import get_logger

log = get_logger(__name__)


class EvaluationLike(Protocol):
    """What a pass needs from the rules' evaluation of the active alerts."""

    @property
    def impacts(self) -> Sequence[Impact]:
        """Every impact the rules derive from the active alerts."""
        ...

    @property
    def heartbeats(self) -> Mapping[str, tuple[timedelta, datetime | None]]:
        """Heartbeat rule -> (its timeout, when its alert last arrived or ``None`` if never)."""
        ...


Evaluate = Callable[[Sequence[Alert]], EvaluationLike]
PAUSED = "paused"
GUARD_RELEASED = "guard_released_at"
UnderMaintenance = Callable[[datetime], Mapping[str, Set[str]]]
EXPLAINED_ENDINGS = frozenset({"resolved", "suppressed"})
"""How an alert may end for its group's wind-down to be explained by evidence (see guard.py)."""


class MaintenanceSource(Protocol):
    """Where maintenance windows come from; ``directory`` is ``None`` while page names are unresolved."""

    directory: PageDirectory | None

    async def windows(self) -> list[AnyWindow]:
        """Every window defined now (the rules path's and the admin API's); may raise the store's errors."""
        ...


class ReconcileStore(Protocol):
    """The store calls a pass makes; each may raise, which fails the pass (it is retried)."""

    async def scan_active(
        self, *, now: datetime, ttl: timedelta, keep: Callable[[Alert], bool] | None = None
    ) -> tuple[int, list[Alert]]:
        """How many alerts are active, and those ``keep`` wants (Store.scan_active)."""
        ...

    async def load_groups(self) -> dict[str, PublishedGroup]:
        """Every group's published state, by key."""
        ...

    async def save_group(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        """Commit a group's record with its action log line (fenced by the lease)."""
        ...

    async def get_control(self, key: str) -> Any:
        """An admin's control value (pause, guard release), ``None`` when unset."""
        ...

    async def alert_endings(self, series: Sequence[str]) -> dict[str, str]:
        """How each given series' latest instance stands (Store.alert_endings)."""
        ...

    async def load_published_maintenances(self) -> dict[str, dict[str, Any]]:
        """What was published per maintenance occurrence, by key."""
        ...

    async def save_published_maintenance(self, key: str, data: Mapping[str, Any]) -> None:
        """Commit what was published for one occurrence (fenced by the lease)."""
        ...


@dataclass
class GroupReport:
    """One group in a pass: what it should show, what was published, the plan, and the error if any."""

    key: str
    desired: DesiredGroup | None
    published: PublishedGroup | None
    plan: Plan
    error: str | None = None


@dataclass
class PassReport:
    """What one pass saw and did, for the state API, the metrics and the logs; ``wake_at`` is when
    the planner wants the next pass at the latest.
    """

    at: datetime
    groups: dict[str, GroupReport] = field(default_factory=dict)
    alerts: int = 0
    actions: int = 0
    errors: int = 0
    provider_down: bool = False
    """The status page API is unavailable (the executor's breaker is open) as the pass ends."""
    wake_at: datetime | None = None
    paused: bool = False
    held: str | None = None
    """Why this pass published nothing at all (paused, or the rules' names unresolved), if so."""
    blind: list[str] = field(default_factory=list)
    """Heartbeat rules whose alert has not arrived within its timeout."""
    guard: dict[str, str] = field(default_factory=dict)
    """Group key -> why the blast-radius guard holds its publication."""
    maintenances: list[MaintenanceAction] = field(default_factory=list)
    """The maintenance actions planned this pass (shadow/paused: planned, not executed)."""


class Reconciler:
    """The level-triggered loop: each pass reads the store, evaluates the rules, plans every group and
    has the executor act (no executor: shadow mode, nothing written).
    """

    def __init__(
        self,
        *,
        store: ReconcileStore,
        evaluate: Evaluate,
        executor: Executor | None,
        clock: Callable[[], datetime],
        policy: Policy | None = None,
        alert_ttl: timedelta = timedelta(hours=8),
        interval: timedelta = timedelta(seconds=60),
        drift_interval: timedelta | None = None,
        under_maintenance: UnderMaintenance | None = None,
        concurrency: int = 8,
        on_pass: Callable[[PassReport | None], None] | None = None,
        guard: GuardPolicy | None = None,
        maintenance: MaintenanceSource | None = None,
        min_pass_interval: timedelta = timedelta(seconds=pacing.MIN_PASS_INTERVAL),
        relevant: Callable[[Alert], bool] | None = None,
        rules_generation: Callable[[], int] = lambda: 0,
        hold: Callable[[], str | None] = lambda: None,
        pass_retry: tuple[float, float] = (pacing.PASS_RETRY_BASE, pacing.PASS_RETRY_CAP),
    ) -> None:
        """``executor=None`` is shadow mode: plan and explain, never write. ``relevant`` says which
        active alerts a pass needs (those some rule matches); the others are counted, not kept."""
        self._store = store
        self._evaluate = evaluate
        self._relevant = relevant
        self._rules_generation = rules_generation
        self._hold = hold
        self._pass_retry = pass_retry
        """After a failed pass the next waits base·2ⁿ s, at most cap (``bridge.pacing``)."""
        """Why nothing may be published right now (the rules' names are not resolved yet), or None."""
        self._executor = executor
        self._clock = clock
        self.policy = policy or Policy()
        self._ttl = alert_ttl
        self.interval = interval
        self._drift_interval = drift_interval or interval
        self._under_maintenance = under_maintenance or (lambda _now: {})
        self._limit = asyncio.Semaphore(concurrency)
        self._on_pass = on_pass
        self.min_pass_interval = min_pass_interval
        self._maintenance = maintenance
        self.guard_policy = guard or GuardPolicy()
        self._guard = GuardState()
        self._next_drift: datetime | None = None
        self._listing: dict[str, asyncio.Future[list[IncidentView]]] = {}
        self._adoptable: dict[str, list[IncidentView]] = {}
        """Each page's open incidents, read once per process: adoption is for a store that was
        empty or lost at start-up; later incidents of ours are in the store, others are humans'."""
        self.last: PassReport | None = None
        self.last_cost = 0.0
        """Seconds the last pass spent reading the store and evaluating the rules."""

    async def reconcile_once(self) -> PassReport:
        """One pass, start to end; raises when the store cannot be read or written (``run`` retries it).
        A failed action fails its group only, reported in the PassReport.
        """
        now = self._clock()
        # The loop's clock, not perf_counter: the same in production, and zero on virtual time,
        # so that pacing (which grows with this cost) never makes a timeline depend on the machine.
        loop = asyncio.get_running_loop()
        started = loop.time()
        active, alerts = await self._store.scan_active(now=now, ttl=self._ttl, keep=self._relevant)
        evaluation = self._evaluate(alerts)
        self.last_cost = loop.time() - started
        published = await self._store.load_groups()
        paused = bool(await self._store.get_control(PAUSED))
        released_raw = await self._store.get_control(GUARD_RELEASED)
        released_at = datetime.fromisoformat(released_raw) if released_raw else None
        hold = "paused by an admin: nothing is published" if paused else self._hold()
        writing = self._executor is not None and hold is None
        if writing and (self._next_drift is None or now >= self._next_drift):
            published = await self._check_drift(published)
            self._next_drift = now + self._drift_interval
        maintenance_report: list[MaintenanceAction] = []
        wake_maintenance: datetime | None = None
        under = {page: set(ids) for page, ids in self._under_maintenance(now).items()}
        if self._maintenance is not None:
            windows = await self._maintenance.windows()
            directory = self._maintenance.directory
            for page, components in under_maintenance(windows, now, directory=directory).items():
                under.setdefault(page, set()).update(components)
            upcoming = next_wakeups(windows, now, 1)
            wake_maintenance = upcoming[0] if upcoming else None
            mplans = plan_maintenances(
                desired_maintenances(windows, now, horizon=HORIZON),
                await load_published(self._store),
                windows,
                directory,
            )
            maintenance_report = mplans.actions
            for key, problem in mplans.problems.items():
                log.warning("maintenance publication failed", key=key, error=problem)
            if writing:
                published = await self._publish_maintenances(maintenance_report, published, now)
        by_id = {(a.source, a.fingerprint): a for a in alerts}
        desired = build_desired(evaluation.impacts, by_id, published, under)
        # Flips are noted before planning (the plan depends on them) and saved with the group.
        stored = dict(published)
        published = {k: note_flip(p, desired.get(k), now) for k, p in published.items()}
        keys = set(desired) | {
            k
            for k, p in published.items()
            if p.open
            or p.outcome_unknown
            or p.taken_over
            or (p.create_attempted and p.incident_status is None)
        }
        plans = {k: plan(desired.get(k), published.get(k), now, self.policy) for k in sorted(keys)}
        report = PassReport(at=now, alerts=active, paused=paused, held=hold, maintenances=maintenance_report)
        report.wake_at = wake_maintenance
        report.blind = sorted(
            name
            for name, (timeout, last) in evaluation.heartbeats.items()
            if last is None or now - last > timeout
        )
        self._guard.note_pass(self._rules_generation(), frozenset(k for k, d in desired.items() if d.firing))
        report.guard = guard_check(
            plans,
            published,
            now,
            self.guard_policy,
            self._guard,
            released_at=released_at,
            explained=await self._evidence(plans, published, desired),
            blind=bool(report.blind),
        )
        claimed = {p.incident_id for p in published.values() if p.incident_id}
        results = await asyncio.gather(
            *(
                self._group(
                    k, desired.get(k), published.get(k), plans[k], now, report, claimed, stored.get(k)
                )
                for k in sorted(keys)
            )
        )
        for group in results:
            report.groups[group.key] = group
            report.actions += 0 if group.error or group.plan.held else len(group.plan.actions)
            report.errors += 1 if group.error else 0
            wake = group.plan.wake_at
            if self._executor is not None and (blocked := self._executor.blocked_until(group.key, now)):
                wake = blocked if wake is None else min(wake, blocked)
            if wake is not None and (report.wake_at is None or wake < report.wake_at):
                report.wake_at = wake
        report.provider_down = self._executor is not None and self._executor.breaker.open
        self.last = report
        return report

    async def _evidence(
        self,
        plans: Mapping[str, Plan],
        published: Mapping[str, PublishedGroup],
        desired: Mapping[str, DesiredGroup],
    ) -> dict[str, bool]:
        """Per open group winding down with nothing firing: were all its alerts resolved by their
        source (or silenced)? Asked of the store, so the answer is the same after a restart."""
        quiet = {
            k: published[k].alerts
            for k in plans
            if k in published and published[k].open and not (k in desired and desired[k].firing)
        }
        series = [a for alerts in quiet.values() for a in alerts]
        endings = await self._store.alert_endings(series) if series else {}
        return {
            k: bool(alerts) and all(endings.get(a) in EXPLAINED_ENDINGS for a in alerts)
            for k, alerts in quiet.items()
        }

    async def _group(
        self,
        key: str,
        desired: DesiredGroup | None,
        published: PublishedGroup | None,
        result: Plan,
        now: datetime,
        report_: PassReport,
        claimed: set[str],
        stored: PublishedGroup | None = None,
    ) -> GroupReport:
        report = GroupReport(key, desired, published, result)
        if self._executor is None:
            return report
        if report_.held is not None:
            report.plan = replace(result, held=report_.held)
            return report
        if key in report_.guard:
            report.plan = replace(result, held=report_.guard[key])
            return report
        if (blocked := self._executor.blocked_until(key, now)) is not None and result.actions:
            report.error = f"backing off after a failure until {blocked.isoformat()}"
            report.plan = Plan(wake_at=blocked, held=report.error)
            return report
        async with self._limit:
            current = with_firing_record(with_pending(published, result), desired)
            try:
                if result.end_takeover and current is not None:
                    current = after_takeover(current)
                    if current.left_open_incident:
                        log.warning(
                            "a taken-over incident is still open although its alerts cleared",
                            group=key,
                            incident_id=current.left_open_incident,
                        )
                if current is not None and current != (stored if stored is not None else published):
                    await self._store.save_group(current)
                # A held plan acts on nothing: what it holds back is all of what it would do.
                for action in () if result.held else result.actions:
                    if isinstance(action, CreateIncident) and (
                        current is None or not current.create_attempted
                    ):
                        adopted = await self._adopt(action, current, claimed)
                        if adopted is not None:
                            current = adopted
                            break
                    current = await self._executor.execute(action, current)
                    if isinstance(action, CreateIncident):
                        self._guard.record_create(now)
                    if isinstance(action, ReadBack):
                        # The read is never the last step: plan the group again right away.
                        report.plan = replace(result, wake_at=now)
                    else:
                        # What the page answered may not be what was asked (an idempotent replay
                        # returns the incident as it is now): look again once the coalescing
                        # window allows the next write, not a whole interval later.
                        again = now + self.policy.coalesce_window
                        wake = report.plan.wake_at
                        report.plan = replace(
                            report.plan, wake_at=again if wake is None else min(wake, again)
                        )
            except ActionFailed as exc:
                report.error = str(exc)
            except Exception as exc:
                log.exception("reconcile of a group failed", group=key)
                report.error = f"internal error: {type(exc).__name__}"
            report.published = current
        return report

    async def _publish_maintenances(
        self, actions: Sequence[MaintenanceAction], published: dict[str, PublishedGroup], now: datetime
    ) -> dict[str, PublishedGroup]:
        assert self._executor is not None
        latest: dict[str, PublishedMaintenance] = {}
        stopped: set[str] = set()
        for planned in actions:
            if planned.key in stopped:
                continue
            if self._executor.blocked_until(f"maintenance:{planned.key}", now) is not None:
                stopped.add(planned.key)
                continue
            # Actions for one occurrence run in order, each on the record the previous one left.
            action = planned
            if planned.key in latest and not isinstance(planned, CreateMaintenance):
                action = replace(planned, published=latest[planned.key])
            try:
                record, completed = await self._executor.execute_maintenance(action)
            except ActionFailed as exc:
                stopped.add(planned.key)
                if not isinstance(exc, ProviderUnavailable):
                    log.warning("maintenance publication failed", key=planned.key, error=str(exc))
                continue
            latest[planned.key] = record
            if completed:
                published = await self._reassert(set(completed), published)
        return published

    async def _reassert(
        self, completed: set[str], published: dict[str, PublishedGroup]
    ) -> dict[str, PublishedGroup]:
        """Completing a maintenance sets its components operational on the page; where that erased
        the impact of an incident still open on them (read back), mark it unpublished so that this
        pass re-asserts the incident's full component set."""
        assert self._executor is not None
        for key, group in list(published.items()):
            if not group.open or group.taken_over or group.incident_id is None:
                continue
            mine = {
                c for c, s in group.components.items() if s is not ComponentStatus.OPERATIONAL
            } & completed
            if not mine:
                continue
            try:
                # A read-back, not a bare show: a human who changed the incident since the last
                # drift check (resolved it, say) is seen here, and the incident is left to them.
                current, view = await self._executor.read_back_view(group, reset=mine)
            except ActionFailed as exc:
                log.warning("could not read an incident back after a maintenance", group=key, error=str(exc))
                continue
            published[key] = current
            if view is None or current.taken_over or not current.open:
                continue
            lost = {c for c in mine if c not in view.impacted}
            if lost:
                # The read-back has mostly marked them already (readback: erased components);
                # the record is written again only where it had not.
                changed = replace(
                    current,
                    components={**current.components, **dict.fromkeys(lost, ComponentStatus.OPERATIONAL)},
                )
                if changed != current:
                    await self._store.save_group(changed)
                published[key] = changed
                log.info(
                    "re-asserting an incident after a maintenance completed",
                    group=key,
                    components=sorted(lost),
                )
        return published

    async def _adopt(
        self, action: CreateIncident, published: PublishedGroup | None, claimed: set[str]
    ) -> PublishedGroup | None:
        """With no record of this group (an empty or lost store), an open incident on the page with
        the same name and overlapping components is this group's: adopt it instead of a duplicate."""
        assert self._executor is not None
        executor = self._executor
        page = action.status_page_id
        if page not in self._adoptable:
            # Groups plan concurrently: the first one lists the page, the others wait for it.
            listing = self._listing.get(page)
            if listing is None:
                listing = self._listing[page] = asyncio.ensure_future(executor.open_incidents(page))
            try:
                self._adoptable[page] = await listing
            except ActionFailed as exc:
                # Creating without having looked could duplicate an incident already on the page:
                # no create this pass; the next pass lists again.
                if self._listing.get(page) is listing:
                    del self._listing[page]
                    if not isinstance(exc, ProviderUnavailable):
                        log.warning("could not list open incidents for adoption", error=str(exc))
                raise
        wanted = {c for c, s in action.components.items() if s is not ComponentStatus.OPERATIONAL}

        def fits(view: IncidentView) -> bool:
            shown = {c for c, s in view.components.items() if s is not ComponentStatus.OPERATIONAL}
            if view.id in claimed or view.name != action.name:
                return False
            return not (wanted and shown and not (wanted & shown))

        for listed in self._adoptable[action.status_page_id]:
            if not fits(listed):
                continue
            # The listing is as old as the process: a human may have resolved or changed the
            # incident since. Only a fresh read of it may be adopted.
            view = await executor.show(listed.id)
            if view.incident_status in (None, IncidentStatus.RESOLVED) or not fits(view):
                self._adoptable[action.status_page_id] = [
                    v for v in self._adoptable[action.status_page_id] if v.id != listed.id
                ]
                log.info(
                    "not adopting an incident that changed since the page was listed", incident_id=listed.id
                )
                continue
            claimed.add(view.id)
            adopted = after_create(
                published,
                action,
                view.id,
                self._clock(),
                incident_status=view.incident_status,
                components=view.components,
                update_count=view.update_count,
            )
            await self._store.save_group(adopted)
            log.info(
                "adopted an open incident instead of creating one",
                group=action.group_key,
                incident_id=view.id,
            )
            return adopted
        return None

    async def _check_drift(self, published: dict[str, PublishedGroup]) -> dict[str, PublishedGroup]:
        assert self._executor is not None
        executor = self._executor

        async def one(group: PublishedGroup) -> PublishedGroup:
            async with self._limit:
                try:
                    return await executor.read_back(group)
                except ActionFailed as exc:
                    if not isinstance(exc, ProviderUnavailable):
                        log.warning("drift check failed", group=group.key, error=str(exc))
                    return group

        candidates = [
            p
            for p in published.values()
            if p.open and p.incident_id and not p.taken_over and not p.outcome_unknown
        ]
        for group in await asyncio.gather(*(one(p) for p in candidates)):
            published[group.key] = group
        return published

    async def run(self, changed: asyncio.Event, stopping: asyncio.Event) -> None:
        """Reconcile until ``stopping`` is set: on every change, at the planner's wake-ups, and at least
        every ``interval``. A failing pass is logged and retried; it never ends the loop."""
        failures = 0
        while not stopping.is_set():
            changed.clear()
            wake_at: datetime | None = None
            try:
                report = await self.reconcile_once()
                wake_at = report.wake_at
                failures = 0
                if self._on_pass is not None:
                    self._on_pass(report)
            except Exception:
                failures += 1
                log.exception("reconcile pass failed", failures=failures)
                if self._on_pass is not None:
                    self._on_pass(None)
            # A pass reads every active alert: in a storm, let changes gather instead of re-reading
            # the store for each webhook (publications are coalesced anyway). The pause grows with
            # the cost of reading and evaluating (not with the time spent waiting on the page API),
            # so that work takes at most 1/(1 + pacing.PASS_DUTY_FACTOR) of the time however many alerts
            # are active, and ingest keeps the rest.
            pause = max(self.min_pass_interval.total_seconds(), pacing.PASS_DUTY_FACTOR * self.last_cost)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=min(pause, pacing.MAX_PASS_PAUSE))
            now = self._clock()
            timeout = self.interval.total_seconds()
            if wake_at is not None:
                timeout = min(timeout, max(0.0, (wake_at - now).total_seconds()))
            if failures:
                base, cap = self._pass_retry
                timeout = min(timeout, cap, base * 2**failures)
            waiters = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stopping.wait())]
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await w
