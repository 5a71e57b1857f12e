"""The daemon's resources, each under its own typed key on the root app (aiohttp ``AppKey``).

``create_app`` sets the ones that exist before start-up; each of the others is set by the
``cleanup_ctx`` entry in ``bridge.app`` that opens it and closes it again, so a handler, which runs
only once start-up has finished, finds every one of them present. A sub-application's handler
reads them with ``request.config_dict[KEY]``.

What configuration may leave out has one explicit form for its absence, never ``None`` to check:
no rules path gives ``NO_RULES`` under ``RULES`` (nothing matches, nothing is published), and the
engine itself handles shadow mode and a missing API key (the reconciler gets no executor). The
incident.io client and the Alertmanager pull are used by start-up alone (``bridge.app``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from bridge.engine.reconciler import Reconciler
from bridge.engine.windows import WindowSource
from bridge.metrics import Metrics
from bridge.rules import NoRules, RulesHolder
from bridge.settings import Settings
from bridge.store import Store


@dataclass
class Health:
    """What ``/readyz`` reports, written by the parts that know: start-up, the pass, the pull."""

    problems: dict[str, str] = field(default_factory=dict)
    """Component -> problem that makes the daemon unready (503); empty means ready."""
    warnings: dict[str, str] = field(default_factory=dict)
    """Component -> problem worth showing on /readyz that does not stop ingest."""


SETTINGS = web.AppKey("settings", Settings)
"""The daemon's settings (``create_app``)."""
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
"""The only wall clock the daemon reads (``create_app``; virtual in timelines)."""
METRICS = web.AppKey("metrics", Metrics)
"""The app's own Prometheus registry and metrics (``create_app``)."""
HEALTH = web.AppKey("health", Health)
"""Readiness problems and warnings (``create_app``)."""
CHANGED = web.AppKey("changed", asyncio.Event)
"""Set after a committed change (a webhook, an admin action); the reconciler waits on it."""
STOPPING = web.AppKey("stopping", asyncio.Event)
"""Set once shutdown begins: ``/readyz`` turns 503 and the loops end (``create_app``)."""
STORE = web.AppKey("store", Store)
"""The open store, migrated (``bridge.app.store``, closed last)."""
RULES: web.AppKey[RulesHolder | NoRules] = web.AppKey("rules")
"""The rules in force, or ``NO_RULES`` without a rules path (``bridge.app.rules``)."""
WINDOWS = web.AppKey("windows", WindowSource)
"""Where the reconciler and the admin API get maintenance windows (``bridge.app.rules``)."""
RECONCILER = web.AppKey("reconciler", Reconciler)
"""The reconciler, whose ``last`` pass report ``/api/v1/state`` and ``/metrics`` show."""
LEADING = web.AppKey("leading", asyncio.Event)
"""Set while this replica holds the reconcile lease (always, on SQLite) (``bridge.app.reconcile``)."""
RECONCILE_TASK: web.AppKey[asyncio.Task[Any]] = web.AppKey("reconcile_task")
"""The leader loop around the reconcile loop, for shutdown and tests (``bridge.app.reconcile``)."""
