"""Publishing maintenance windows: level-triggered, like incidents.

``bridge.maintenance`` says what the page should show at ``now`` (each occurrence's phase); this
module compares it with what was published and makes the difference: create the occurrence (with an
idempotency key from window and occurrence, written ahead), move it forward (scheduled → in progress
→ complete, never backwards), reschedule it (UpdateStatusPageMaintenance notifies nobody, so a
maintenance update follows when the window notifies subscribers), complete it when its window is
cancelled after it started, delete it when cancelled before. A transition missed while the daemon
was down is simply the difference at the next pass, published once; an update whose outcome is
unknown is read back before anything is re-sent. Windows with ``automate: true`` are created with
``automate_maintenance_status`` and then only watched: when one should have moved on, it is read
back, so that the bridge learns of a completion it did not write.

Planning is pure and yields typed actions (``bridge.engine.model``) with their texts rendered and
their targets resolved; the executor performs them on the same write path as incidents (provider
breaker, back-off, write-ahead records, error mapping), and shadow mode plans without executing.

Completing a window sets its components to operational on the page (the API says so for an update
that sets ``maintenance_complete``; for an automated completion the sandbox emulates the same),
which can erase the impact of an incident still open on them: after a completion, whoever wrote it,
the reconciler reads those incidents back and re-asserts what was lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from bridge.domain import MaintenanceStatus, PageDirectory
from bridge.engine.model import (
    CreateMaintenance,
    DeleteMaintenance,
    MaintenanceAction,
    MaintenanceView,
    MoveMaintenance,
    PublishedMaintenance,
    ReadBackMaintenance,
    RescheduleMaintenance,
)
from bridge.maintenance import (
    AnyWindow,
    DesiredMaintenance,
    MaintenanceConfigError,
    Phase,
    TargetError,
    load_maintenances,
    resolve_targets,
    window_from_json,
)
from bridge.observability import get_logger

log = get_logger(__name__)

RANK = {MaintenanceStatus.SCHEDULED: 0, MaintenanceStatus.IN_PROGRESS: 1, MaintenanceStatus.COMPLETE: 2}
HORIZON = timedelta(days=2)
"""How far back ended occurrences are still looked at: longer than any outage we recover from."""

_env = SandboxedEnvironment()


@dataclass
class MaintenancePlans:
    """What to do so that the page shows the windows, and which occurrences cannot be published."""

    actions: list[MaintenanceAction] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    """Occurrence key -> why it cannot be published (its targets do not resolve)."""


class MaintenanceStore(Protocol):
    """The store calls maintenance publication needs; both may raise the store's errors."""

    async def load_published_maintenances(self) -> dict[str, dict[str, Any]]:
        """What was published per occurrence, by occurrence key (JSON as saved)."""
        ...

    async def save_published_maintenance(self, key: str, data: Mapping[str, Any]) -> None:
        """Commit what was published for one occurrence (fenced by the lease on a shared store)."""
        ...


class WindowStore(Protocol):
    """What ``WindowSource`` needs of the store; it may raise the store's errors."""

    async def load_windows(self) -> dict[str, dict[str, Any]]:
        """The admin API's windows by id, as stored JSON."""
        ...


def occurrence_key(d: DesiredMaintenance) -> str:
    """``window_id:occurrence_key``: one key per occurrence of a window, stable across restarts."""
    return f"{d.window.id}:{d.occurrence.key}"


def _iso(t: datetime) -> str:
    return t.isoformat()


def render(template: str, d: DesiredMaintenance, components: Sequence[str]) -> str:
    """The window's message template rendered with name, start_at, end_at (ISO 8601) and components,
    at most 4096 characters; a template that fails is logged and sent as written, an empty one is the name.
    """
    context = {
        "name": d.window.name,
        "start_at": _iso(d.occurrence.start_at),
        "end_at": _iso(d.occurrence.end_at),
        "components": list(components),
    }
    try:
        text = _env.from_string(template).render(**context).strip()
    except (TemplateError, TypeError, ValueError):
        log.warning("maintenance message template failed; sending it as written", window=d.window.id)
        text = template
    return (text or d.window.name)[:4096]


def plan_maintenances(
    desired: Sequence[DesiredMaintenance],
    published: Mapping[str, PublishedMaintenance],
    windows: Sequence[AnyWindow],
    directory: PageDirectory | None = None,
) -> MaintenancePlans:
    """What to do so that the page shows ``desired`` (pure). Actions for one occurrence come in the
    order they must run; each is planned on the record as it stands before the first."""
    plans = MaintenancePlans()
    out = plans.actions
    wanted = {occurrence_key(d): d for d in desired}
    for key, d in wanted.items():
        pub = published.get(key)
        if pub is not None and pub.finished:
            continue
        if pub is None or pub.maintenance_id is None:
            if d.phase is Phase.COMPLETE and (pub is None or not pub.create_attempted):
                continue  # never published: nothing to complete
            try:
                out.append(_create(key, d, directory))
            except TargetError as exc:
                plans.problems[key] = f"maintenance {d.window.id!r}: {exc}"
            continue
        if pub.outcome_unknown:
            out.append(ReadBackMaintenance(key, pub, why="the last write's outcome is unknown"))
            continue
        if (pub.name, pub.start_at, pub.end_at) != (
            d.window.name,
            _iso(d.occurrence.start_at),
            _iso(d.occurrence.end_at),
        ):
            # A reschedule may also move the phase (an early completion): both, in this order.
            notice = None
            if d.window.notify_subscribers:
                notice = f"Rescheduled: {_iso(d.occurrence.start_at)} to {_iso(d.occurrence.end_at)}."
            out.append(
                RescheduleMaintenance(
                    key,
                    pub,
                    name=d.window.name,
                    start_at=d.occurrence.start_at,
                    end_at=d.occurrence.end_at,
                    notice=notice,
                    why="name or times changed",
                )
            )
        current = MaintenanceStatus(pub.status) if pub.status else MaintenanceStatus.SCHEDULED
        if RANK[d.status] > RANK[current]:
            if pub.automate:
                # incident.io moves it; the bridge must still learn of it (a completion resets
                # the components of incidents open on them).
                out.append(
                    ReadBackMaintenance(
                        key, pub, why=f"incident.io moves it: {current.value} -> {d.status.value}"
                    )
                )
            else:
                out.append(
                    MoveMaintenance(
                        key,
                        pub,
                        d.status,
                        _status_message(d, d.status, pub),
                        notify_subscribers=d.window.notify_subscribers,
                        why=f"{current.value} -> {d.status.value}",
                    )
                )
    window_ids = {w.id for w in windows}
    for key, pub in published.items():
        if key in wanted or pub.finished or pub.maintenance_id is None:
            continue
        if pub.outcome_unknown:
            out.append(ReadBackMaintenance(key, pub, why="the last write's outcome is unknown"))
        elif pub.window_id not in window_ids and pub.status == MaintenanceStatus.SCHEDULED.value:
            out.append(DeleteMaintenance(key, pub, why="cancelled before it started"))
        elif not pub.automate or pub.window_id not in window_ids:
            out.append(
                MoveMaintenance(
                    key,
                    pub,
                    MaintenanceStatus.COMPLETE,
                    "This maintenance is over.",
                    notify_subscribers=False,
                    why="over or cancelled",
                )
            )
    return plans


def _create(key: str, d: DesiredMaintenance, directory: PageDirectory | None) -> CreateMaintenance:
    if directory is not None:
        targets = resolve_targets(d.window, directory)
        page_id, component_ids = targets.status_page_id, tuple(targets.component_ids)
    else:
        page_id, component_ids = d.window.status_page, tuple(d.window.components)
    ahead = PublishedMaintenance(
        key=key,
        window_id=d.window.id,
        status_page_id=page_id,
        name=d.window.name,
        start_at=_iso(d.occurrence.start_at),
        end_at=_iso(d.occurrence.end_at),
        components=component_ids,
        automate=d.window.automate,
        create_attempted=True,
    )
    status = MaintenanceStatus.COMPLETE if d.phase is Phase.COMPLETE else d.status
    return CreateMaintenance(
        key,
        ahead,
        message=render(d.message, d, list(d.window.components)),
        idempotency_key=d.occurrence.idempotency_key,
        notify_subscribers=d.window.notify_subscribers,
        status=status,
        start_at=d.occurrence.start_at,
        end_at=d.occurrence.end_at,
        why="not on the page yet",
    )


def _status_message(d: DesiredMaintenance, status: MaintenanceStatus, pub: PublishedMaintenance) -> str:
    template = {
        MaintenanceStatus.SCHEDULED: d.window.messages.scheduled,
        MaintenanceStatus.IN_PROGRESS: d.window.messages.started,
        MaintenanceStatus.COMPLETE: d.window.messages.completed,
    }[status]
    return render(template, d, list(d.window.components) or list(pub.components))


def after_maintenance(
    action: MaintenanceAction, record: PublishedMaintenance, view: MaintenanceView | None
) -> tuple[PublishedMaintenance, tuple[str, ...]]:
    """The record once ``action`` succeeded (``view``: what the page answered, for a create or a
    read-back), and the components of a window this completed, whoever completed it."""
    before = record.status
    if isinstance(action, CreateMaintenance):
        assert view is not None
        done = replace(record, maintenance_id=view.id, status=view.status)
    elif isinstance(action, ReadBackMaintenance):
        if view is None:  # gone from the page
            return replace(record, deleted=True, outcome_unknown=False), ()
        done = replace(record, status=view.status, name=view.name, outcome_unknown=False)
    elif isinstance(action, DeleteMaintenance):
        return replace(record, deleted=True, outcome_unknown=False), ()
    elif isinstance(action, RescheduleMaintenance):
        done = replace(
            record,
            name=action.name,
            start_at=_iso(action.start_at),
            end_at=_iso(action.end_at),
            outcome_unknown=False,
        )
    else:
        done = replace(record, status=action.status.value, outcome_unknown=False)
    complete = MaintenanceStatus.COMPLETE.value
    completed = done.components if done.status == complete and before != complete else ()
    return done, completed


async def load_published(store: MaintenanceStore) -> dict[str, PublishedMaintenance]:
    """Every published occurrence from the store, decoded (unknown fields dropped)."""
    return {
        k: PublishedMaintenance.from_json(v) for k, v in (await store.load_published_maintenances()).items()
    }


class WindowSource:
    """Config windows (loaded at start and on rules reload) plus the API's, from the store."""

    def __init__(self, store: WindowStore, rules_path: Path | None, directory: PageDirectory | None) -> None:
        self._store = store
        self._path = rules_path
        self.directory = directory
        self.config: list[AnyWindow] = []
        self.error: str | None = None
        self.reload()

    def reload(self) -> None:
        """Reads the config windows again (rules reload); an invalid file keeps the previous ones and
        sets ``error``."""
        if self._path is None:
            return
        try:
            self.config = list(load_maintenances(self._path, directory=self.directory))
            self.error = None
        except MaintenanceConfigError as exc:
            self.error = str(exc)
            # The message names file, window and field; a traceback would hide it.
            log.error(  # noqa: TRY400
                "maintenance windows in the rules path are invalid; keeping the previous ones",
                error=self.error,
            )

    async def api_windows(self) -> list[AnyWindow]:
        """The windows made through the admin API, from the store."""
        return [window_from_json(json.dumps(data)) for data in (await self._store.load_windows()).values()]

    async def windows(self) -> list[AnyWindow]:
        """Every window: config first, then the admin API's."""
        return [*self.config, *await self.api_windows()]
