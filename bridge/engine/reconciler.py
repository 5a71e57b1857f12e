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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bridge.domain import ActionRecord, Alert, Impact, PublishedGroup
from bridge.engine.desired import build_desired
from bridge.engine.executor import ActionFailed, Executor
from bridge.engine.model import DesiredGroup, Plan, Policy
from bridge.engine.planner import plan, with_pending
from bridge.observability import get_logger

log = get_logger(__name__)

Evaluate = Callable[[Sequence[Alert]], Sequence[Impact]]
UnderMaintenance = Callable[[datetime], Mapping[str, Set[str]]]


class ReconcileStore(Protocol):
    async def active_alerts(self, *, now: datetime, ttl: timedelta) -> list[Alert]: ...
    async def load_groups(self) -> dict[str, PublishedGroup]: ...
    async def save_group(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None: ...


@dataclass
class GroupReport:
    key: str
    desired: DesiredGroup | None
    published: PublishedGroup | None
    plan: Plan
    error: str | None = None


@dataclass
class PassReport:
    at: datetime
    groups: dict[str, GroupReport] = field(default_factory=dict)
    alerts: int = 0
    actions: int = 0
    errors: int = 0
    wake_at: datetime | None = None


class Reconciler:
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
    ) -> None:
        """``executor=None`` is shadow mode: plan and explain, never write."""
        self._store = store
        self._evaluate = evaluate
        self._executor = executor
        self._clock = clock
        self.policy = policy or Policy()
        self._ttl = alert_ttl
        self.interval = interval
        self._drift_interval = drift_interval or interval
        self._under_maintenance = under_maintenance or (lambda _now: {})
        self._limit = asyncio.Semaphore(concurrency)
        self._on_pass = on_pass
        self._next_drift: datetime | None = None
        self.last: PassReport | None = None
        self.passes = 0

    @property
    def shadow(self) -> bool:
        return self._executor is None

    async def reconcile_once(self) -> PassReport:
        now = self._clock()
        alerts = await self._store.active_alerts(now=now, ttl=self._ttl)
        impacts = self._evaluate(alerts)
        published = await self._store.load_groups()
        if self._executor is not None and (self._next_drift is None or now >= self._next_drift):
            published = await self._check_drift(published)
            self._next_drift = now + self._drift_interval
        by_id = {(a.source, a.fingerprint): a for a in alerts}
        desired = build_desired(impacts, by_id, published, self._under_maintenance(now))
        keys = set(desired) | {
            k
            for k, p in published.items()
            if p.open or p.outcome_unknown or (p.create_attempted and p.incident_status is None)
        }
        report = PassReport(at=now, alerts=len(alerts))
        results = await asyncio.gather(
            *(self._group(k, desired.get(k), published.get(k), now) for k in sorted(keys))
        )
        for group in results:
            report.groups[group.key] = group
            report.actions += 0 if group.error else len(group.plan.actions)
            report.errors += 1 if group.error else 0
            wake = group.plan.wake_at
            if self._executor is not None and (blocked := self._executor.blocked_until(group.key, now)):
                wake = blocked if wake is None else min(wake, blocked)
            if wake is not None and (report.wake_at is None or wake < report.wake_at):
                report.wake_at = wake
        self.last = report
        self.passes += 1
        return report

    async def _group(
        self, key: str, desired: DesiredGroup | None, published: PublishedGroup | None, now: datetime
    ) -> GroupReport:
        result = plan(desired, published, now, self.policy)
        report = GroupReport(key, desired, published, result)
        if self._executor is None:
            return report
        if (blocked := self._executor.blocked_until(key, now)) is not None and result.actions:
            report.error = f"backing off after a failure until {blocked.isoformat()}"
            report.plan = Plan(wake_at=blocked, held=report.error)
            return report
        async with self._limit:
            remembered = with_pending(published, result)
            if remembered is not None and remembered != published:
                await self._store.save_group(remembered)
            current = remembered
            try:
                for action in result.actions:
                    current = await self._executor.execute(action, current)
            except ActionFailed as exc:
                report.error = str(exc)
            except Exception as exc:
                log.exception("reconcile of a group failed", group=key)
                report.error = f"internal error: {type(exc).__name__}"
            report.published = current
        return report

    async def _check_drift(self, published: dict[str, PublishedGroup]) -> dict[str, PublishedGroup]:
        assert self._executor is not None
        executor = self._executor

        async def one(group: PublishedGroup) -> PublishedGroup:
            async with self._limit:
                try:
                    return await executor.read_back(group)
                except ActionFailed as exc:
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
            now = self._clock()
            timeout = self.interval.total_seconds()
            if wake_at is not None:
                timeout = min(timeout, max(0.0, (wake_at - now).total_seconds()))
            if failures:
                timeout = min(timeout, 30.0, 0.5 * 2**failures)
            waiters = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stopping.wait())]
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await w
