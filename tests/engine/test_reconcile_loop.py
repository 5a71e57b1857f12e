"""The reconcile loop (``Reconciler.run``) on the one fake time, built from real parts: a SQLite
store in tmp_path, rules loaded by the real loader and the real planner, in shadow mode (no page
API: the loop's timing is under test, not publishing). It wakes on the changed event, at the
interval, backs off 0.5·2ⁿ s after a failed pass, and stops on the stop event."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bridge import pacing
from bridge.domain import Alert
from bridge.engine.reconciler import PassReport, Reconciler
from bridge.store import Store, open_store
from tests.conftest import FakeTime
from tests.engine import realdesired

RULES = realdesired.document(realdesired.rule("api", ["API"]))
INTERVAL = 60.0
PAUSE = pacing.MIN_PASS_INTERVAL
"""After every pass the loop lets changes gather this long (the cost of a pass is 0 on virtual time)."""


@dataclass
class Loop:
    """A reconciler's loop running as a task, and each pass it made: (virtual time, alerts seen),
    ``None`` for a failed pass."""

    reconciler: Reconciler
    changed: asyncio.Event
    stopping: asyncio.Event
    db: Path
    passes: list[tuple[float, int | None]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def times(self) -> list[float]:
        return [at for at, _ in self.passes]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    await s.close()


@pytest.fixture
async def loop(fake_time: FakeTime, store: Store, tmp_path: Path) -> AsyncIterator[Loop]:
    rules = realdesired.load(RULES)
    holder: list[Loop] = []

    def on_pass(report: PassReport | None) -> None:
        holder[0].passes.append((fake_time.time(), None if report is None else report.alerts))

    reconciler = Reconciler(
        store=store,
        evaluate=rules.evaluate,
        relevant=lambda a: any(r.matches(a) for r in rules.rules),
        executor=None,
        clock=fake_time.now,
        interval=timedelta(seconds=INTERVAL),
        pass_retry=(pacing.PASS_RETRY_BASE, pacing.PASS_RETRY_CAP),
        on_pass=on_pass,
    )
    running = Loop(reconciler, asyncio.Event(), asyncio.Event(), tmp_path / "store.db")
    holder.append(running)
    running.task = asyncio.create_task(reconciler.run(running.changed, running.stopping))
    yield running
    running.stopping.set()
    await running.task


async def at(fake_time: FakeTime, t: float) -> None:
    """Let virtual time run to ``t`` (seconds since the test began)."""
    await asyncio.sleep(t - fake_time.time())


def firing(fake_time: FakeTime, service: str) -> Alert:
    return realdesired.alert(
        {"group": "api", "severity": "full_outage", "service": service}, starts_at=fake_time.now()
    )


async def test_a_pass_at_start_then_one_every_interval(fake_time: FakeTime, loop: Loop) -> None:
    await at(fake_time, 3 * INTERVAL + 10)
    assert loop.times() == [0.0, PAUSE + INTERVAL, 2 * (PAUSE + INTERVAL), 3 * (PAUSE + INTERVAL)]


async def test_a_change_wakes_the_loop_at_once(fake_time: FakeTime, loop: Loop, store: Store) -> None:
    await at(fake_time, 10)
    await store.upsert_alerts([firing(fake_time, "a")])
    loop.changed.set()
    await at(fake_time, 10.1)
    assert loop.passes == [(0.0, 0), (10.0, 1)], "woken by the change, not the interval"
    # Changes during the pause after a pass gather into one pass when it ends.
    await store.upsert_alerts([firing(fake_time, "b")])
    loop.changed.set()
    await store.upsert_alerts([firing(fake_time, "c")])
    loop.changed.set()
    await at(fake_time, 11)
    assert loop.passes[2:] == [(10.0 + PAUSE, 3)]
    await at(fake_time, 10 + 2 * PAUSE + INTERVAL + 1)
    assert loop.passes[3:] == [(10 + 2 * PAUSE + INTERVAL, 3)], "then the interval again"


async def test_failed_passes_back_off_doubling_then_the_interval_returns(
    fake_time: FakeTime, loop: Loop
) -> None:
    await at(fake_time, 5)
    # The store breaks for real: the alerts table goes away under it (another connection).
    with sqlite3.connect(loop.db) as other:
        other.execute("ALTER TABLE alerts RENAME TO alerts_away")
    loop.changed.set()
    with capture_logs() as logs:
        await at(fake_time, 5 + 4 * PAUSE + 1 + 2 + 4 + 0.5)
    assert [(e["event"], e["failures"]) for e in logs] == [("reconcile pass failed", n) for n in (1, 2, 3, 4)]
    failed = [at for at, alerts in loop.passes if alerts is None]
    assert failed == [5.0, 5 + PAUSE + 1, 5 + 2 * PAUSE + 1 + 2, 5 + 3 * PAUSE + 1 + 2 + 4], (
        "after the n-th failed pass the next waits 0.5·2ⁿ s"
    )
    with sqlite3.connect(loop.db) as other:
        other.execute("ALTER TABLE alerts_away RENAME TO alerts")
    recovered = failed[-1] + PAUSE + 8
    await at(fake_time, recovered + PAUSE + INTERVAL + 1)
    assert loop.passes[-2:] == [(recovered, 0), (recovered + PAUSE + INTERVAL, 0)], (
        "the store is back: the failures are forgotten, the interval is the pace again"
    )


async def test_the_retry_is_capped(fake_time: FakeTime, loop: Loop) -> None:
    with sqlite3.connect(loop.db) as other:
        other.execute("ALTER TABLE alerts RENAME TO alerts_away")
    loop.changed.set()
    with capture_logs():
        await at(fake_time, 600)
    gaps = [b - a for a, b in zip(loop.times()[1:], loop.times()[2:], strict=False)]
    assert max(gaps) == PAUSE + pacing.PASS_RETRY_CAP, "never longer than the cap"
    assert gaps[-3:] == [PAUSE + pacing.PASS_RETRY_CAP] * 3
    with sqlite3.connect(loop.db) as other:
        other.execute("ALTER TABLE alerts_away RENAME TO alerts")


async def test_the_stop_event_ends_the_loop_at_once(fake_time: FakeTime, loop: Loop) -> None:
    await at(fake_time, 30)
    loop.stopping.set()
    assert loop.task is not None
    await loop.task
    assert fake_time.time() == 30, "no pass and no wait after the stop"
    assert loop.times() == [0.0]
