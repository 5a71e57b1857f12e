"""Start-up job 5: the reconciler (``RECONCILER``), the leader loop around it (``RECONCILE_TASK``,
``LEADING``), and what each pass reports: metrics, ``/readyz`` warnings, and the next wake-up.

Every replica ingests; the one holding the store's lease reconciles (always this one on SQLite).
Shadow mode, or no API key, gives the reconciler no executor: it plans and reports, and publishes
nothing. APScheduler is the clock that wakes it at the instants the planner names.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bridge import pacing
from bridge.app.publishing import CLIENT
from bridge.engine.breaker import Breaker
from bridge.engine.executor import Backoff, Executor
from bridge.engine.guard import GuardPolicy
from bridge.engine.leadership import lead
from bridge.engine.model import Policy
from bridge.engine.pageapi import ClientPageAPI
from bridge.engine.reconciler import PassReport, Reconciler
from bridge.metrics import Metrics
from bridge.observability import get_logger
from bridge.store import store_identity
from bridge.web.resources import (
    CHANGED,
    CLOCK,
    HEALTH,
    LEADING,
    METRICS,
    RECONCILE_TASK,
    RECONCILER,
    RULES,
    SETTINGS,
    STOPPING,
    STORE,
    WINDOWS,
    Health,
)

log = get_logger(__name__)

OnPass = Callable[[PassReport | None], None]
ON_PASS: web.AppKey[OnPass] = web.AppKey("on_pass")
"""Sees every pass's report after the metrics, ``None`` for a failed pass (``create_app``)."""


async def reconciler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Starts the leader loop; at shutdown lets an in-flight pass finish within
    ``STATUSBRIDGE_SHUTDOWN_TIMEOUT``."""
    s, store, client, rules, clock = app[SETTINGS], app[STORE], app[CLIENT], app[RULES], app[CLOCK]
    health, metrics, changed, stopping = app[HEALTH], app[METRICS], app[CHANGED], app[STOPPING]
    lost = asyncio.Event()
    lease = store.lease(f"{socket.gethostname()}:{os.getpid()}", on_lost=lost.set)
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    executor = None
    if client is not None and s.mode == "live":
        executor = Executor(
            ClientPageAPI(client),
            store,
            clock,
            epoch=lambda: lease.epoch or 0,
            on_drift=metrics.drift.inc,
            on_recover=changed.set,
            late_write_window=2 * s.incidentio_timeout,
            breaker=Breaker(interval=pacing.BREAKER_INTERVAL, cap=pacing.BREAKER_CAP),
            backoff=lambda: Backoff(base=pacing.ACTION_BACKOFF_BASE, cap=pacing.ACTION_BACKOFF_CAP),
        )
    on_pass = app[ON_PASS]

    def after_pass(report: PassReport | None) -> None:
        report_pass(report, metrics, health)
        on_pass(report)
        if report is not None and report.wake_at is not None and scheduler.running:
            # APScheduler is the clock: it wakes the reconciler at the next instant a hold ends or a
            # maintenance window is announced, starts or ends; what to do then is the planner's.
            scheduler.add_job(
                changed.set,
                DateTrigger(run_date=report.wake_at),
                id="wake",
                replace_existing=True,
                misfire_grace_time=None,
            )

    reconciler = app[RECONCILER] = Reconciler(
        store=store,
        evaluate=rules.evaluate,
        relevant=rules.relevant,
        rules_generation=rules.current_generation,
        hold=rules.hold,
        executor=executor,
        clock=clock,
        policy=Policy(coalesce_window=s.coalesce_window, key_scope=await store_identity(store)),
        alert_ttl=s.alert_ttl,
        interval=s.reconcile_interval,
        pass_retry=(pacing.PASS_RETRY_BASE, pacing.PASS_RETRY_CAP),
        on_pass=after_pass,
        maintenance=app[WINDOWS],
        guard=GuardPolicy(
            max_new=s.max_new_incidents,
            window=s.max_new_incidents_window,
            release_after=s.guard_release_after,
        ),
    )
    leading = app[LEADING] = asyncio.Event()
    task = app[RECONCILE_TASK] = asyncio.create_task(
        lead(
            lease,
            lost,
            lambda stop: reconciler.run(changed, stop),
            stopping,
            on_elected=leading.set,
            on_deposed=leading.clear,
        )
    )
    yield
    stopping.set()
    scheduler.shutdown(wait=False)
    try:
        await asyncio.wait_for(task, timeout=s.shutdown_timeout.total_seconds())
    except TimeoutError:
        log.warning("reconcile pass did not finish before the shutdown deadline")


def report_pass(report: PassReport | None, metrics: Metrics, health: Health) -> None:
    """A pass's counters and gauges, and its ``/readyz`` warnings (blind heartbeat, API down)."""
    metrics.reconcile_runs.labels("ok" if report is not None else "failed").inc()
    if report is None:
        return
    for group in report.groups.values():
        if not group.plan.held and not group.error:
            for action in group.plan.actions:
                metrics.actions.labels(type(action).__name__).inc()
    warnings = health.warnings
    was_blind = "heartbeat" in warnings
    if report.blind:
        warnings["heartbeat"] = f"blind: no heartbeat from rule(s) {', '.join(report.blind)}"
        if not was_blind:
            log.error(
                "heartbeat missing: the bridge cannot see alerts, the page may look green wrongly",
                rules=report.blind,
            )
    elif was_blind:
        del warnings["heartbeat"]
        log.info("heartbeat back")
    metrics.blind.set(1 if report.blind else 0)
    metrics.provider_down.set(1 if report.provider_down else 0)
    if report.provider_down:
        warnings["status_page_api"] = "unavailable: publications wait, one probe at a time"
    else:
        warnings.pop("status_page_api", None)
    metrics.guard_held.set(len(report.guard))
    metrics.flapping.set(
        sum(1 for g in report.groups.values() if g.published is not None and g.published.flapping_since)
    )
    if report.guard:
        log.warning("blast-radius guard holds publications", groups=sorted(report.guard))
