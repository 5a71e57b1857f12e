"""What the running daemon holds, one per app (the admin and maintenance handlers read it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from bridge.domain import Alert, Impact
from bridge.engine.reconciler import EvaluationLike, PassReport, Reconciler
from bridge.incidentio.client import StatusPageClient
from bridge.ingest.routes import Ingest
from bridge.metrics import Metrics
from bridge.rules import RulesHolder
from bridge.settings import Settings
from bridge.store import Store


@dataclass
class Runtime:
    """Everything the running daemon holds; one per app."""

    settings: Settings
    clock: Callable[[], datetime]
    store: Store | None = None
    client: StatusPageClient | None = None
    rules: RulesHolder | None = None
    reconciler: Reconciler | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    readiness: dict[str, str] = field(default_factory=dict)
    """Component -> problem that makes the daemon unready (503); empty means ready."""
    warnings: dict[str, str] = field(default_factory=dict)
    """Component -> problem worth showing on /readyz that does not stop ingest."""
    ingest: Ingest | None = None
    metrics: Metrics = field(default_factory=Metrics)
    reconcile_task: Any = None
    """The running reconcile loop (or lease loop), for shutdown and tests."""
    scheduler: Any = None
    """APScheduler (AsyncIOScheduler): the clock that wakes the reconciler at known instants."""
    windows: Any = None
    """The maintenance windows' source (``bridge.engine.windows.WindowSource``), set at start-up."""
    leader: bool = False
    """Whether this replica holds the reconcile lease (always, on SQLite)."""
    on_pass: Callable[[PassReport | None], None] | None = None
    """Sees every pass's report after the metrics (timeline tests trace the planner with it)."""

    def get_store(self) -> Store:
        if self.store is None:
            raise RuntimeError("store not open")
        return self.store

    def relevant(self, alert: Alert) -> bool:
        """Does any rule look at this alert? A pass keeps only these in memory."""
        return self.rules is not None and any(rule.matches(alert) for rule in self.rules.current.rules)

    def evaluate(self, alerts: Sequence[Alert]) -> EvaluationLike:
        if self.rules is None:
            return NO_RULES
        return self.rules.evaluate(alerts)


RUNTIME = web.AppKey("runtime", Runtime)


@dataclass(frozen=True)
class _NoRules:
    impacts: tuple[Impact, ...] = ()
    heartbeats: dict[str, Any] = field(default_factory=dict)


NO_RULES = _NoRules()
