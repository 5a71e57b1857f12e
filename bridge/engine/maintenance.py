"""Publishing maintenance windows: level-triggered, like incidents.

``bridge.maintenance`` says what the page should show at ``now`` (each occurrence's phase); this
module compares it with what was published and makes the difference: create the occurrence (with an
idempotency key from window and occurrence, written ahead), move it forward (scheduled → in progress
→ complete, never backwards), reschedule it (UpdateStatusPageMaintenance notifies nobody, so a
maintenance update follows when the window notifies subscribers), complete it when its window is
cancelled after it started, delete it when cancelled before. A transition missed while the daemon
was down is simply the difference at the next pass, published once; an update whose outcome is
unknown is read back before anything is re-sent. Windows with ``automate: true`` are created with
``automate_maintenance_status`` and then only watched.

Completing a window sets its components to operational on the page (the API says so), which can
erase the impact of an incident still open on them: after a completion, the reconciler reads those
incidents back and re-asserts what was lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from bridge.domain import MaintenanceStatus, PageDirectory
from bridge.engine.executor import ActionFailed
from bridge.incidentio import errors
from bridge.incidentio.client import StatusPageClient
from bridge.incidentio.models import MaintenanceStatus as ApiMaintenanceStatus
from bridge.maintenance import AnyWindow, DesiredMaintenance, Phase, TargetError, resolve_targets
from bridge.observability import get_logger

log = get_logger(__name__)

RANK = {MaintenanceStatus.SCHEDULED: 0, MaintenanceStatus.IN_PROGRESS: 1, MaintenanceStatus.COMPLETE: 2}
HORIZON = timedelta(days=2)
"""How far back ended occurrences are still looked at: longer than any outage we recover from."""

_env = SandboxedEnvironment()


@dataclass(frozen=True)
class PublishedMaintenance:
    key: str
    window_id: str
    status_page_id: str
    maintenance_id: str | None = None
    status: str | None = None
    name: str = ""
    start_at: str = ""
    end_at: str = ""
    components: tuple[str, ...] = ()
    automate: bool = False
    create_attempted: bool = False
    outcome_unknown: bool = False
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublishedMaintenance:
        known = cls.__dataclass_fields__
        values = {k: v for k, v in data.items() if k in known}
        values["components"] = tuple(values.get("components") or ())
        return cls(**values)

    @property
    def finished(self) -> bool:
        return self.deleted or self.status == MaintenanceStatus.COMPLETE.value


@dataclass(frozen=True)
class MaintenancePlan:
    key: str
    kind: str
    """``create``, ``status``, ``reschedule``, ``delete`` or ``read_back``."""
    desired: DesiredMaintenance | None
    published: PublishedMaintenance | None
    status: MaintenanceStatus | None = None
    why: str = ""


class MaintenanceStore(Protocol):
    async def load_published_maintenances(self) -> dict[str, dict[str, Any]]: ...
    async def save_published_maintenance(self, key: str, data: Mapping[str, Any]) -> None: ...


def occurrence_key(d: DesiredMaintenance) -> str:
    return f"{d.window.id}:{d.occurrence.key}"


def _iso(t: datetime) -> str:
    return t.isoformat()


def render(template: str, d: DesiredMaintenance, components: Sequence[str]) -> str:
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
) -> list[MaintenancePlan]:
    """What to do so that the page shows ``desired`` (pure)."""
    plans: list[MaintenancePlan] = []
    wanted = {occurrence_key(d): d for d in desired}
    for key, d in wanted.items():
        pub = published.get(key)
        if pub is not None and pub.finished:
            continue
        if pub is None or pub.maintenance_id is None:
            if d.phase is Phase.COMPLETE and (pub is None or not pub.create_attempted):
                continue  # never published: nothing to complete
            status = MaintenanceStatus.COMPLETE if d.phase is Phase.COMPLETE else d.status
            plans.append(MaintenancePlan(key, "create", d, pub, status, "not on the page yet"))
            continue
        if pub.outcome_unknown:
            plans.append(MaintenancePlan(key, "read_back", d, pub, why="the last write's outcome is unknown"))
            continue
        if (pub.name, pub.start_at, pub.end_at) != (
            d.window.name,
            _iso(d.occurrence.start_at),
            _iso(d.occurrence.end_at),
        ):
            # A reschedule may also move the phase (an early completion): both, in this order.
            plans.append(MaintenancePlan(key, "reschedule", d, pub, why="name or times changed"))
        current = MaintenanceStatus(pub.status) if pub.status else MaintenanceStatus.SCHEDULED
        if not pub.automate and RANK[d.status] > RANK[current]:
            plans.append(
                MaintenancePlan(key, "status", d, pub, d.status, f"{current.value} -> {d.status.value}")
            )
    window_ids = {w.id for w in windows}
    for key, pub in published.items():
        if key in wanted or pub.finished or pub.maintenance_id is None:
            continue
        if pub.outcome_unknown:
            plans.append(
                MaintenancePlan(key, "read_back", None, pub, why="the last write's outcome is unknown")
            )
        elif pub.window_id not in window_ids and pub.status == MaintenanceStatus.SCHEDULED.value:
            plans.append(MaintenancePlan(key, "delete", None, pub, why="cancelled before it started"))
        elif not pub.automate or pub.window_id not in window_ids:
            plans.append(
                MaintenancePlan(key, "status", None, pub, MaintenanceStatus.COMPLETE, "over or cancelled")
            )
    return plans


def _status_message(d: DesiredMaintenance, status: MaintenanceStatus, pub: PublishedMaintenance) -> str:
    template = {
        MaintenanceStatus.SCHEDULED: d.window.messages.scheduled,
        MaintenanceStatus.IN_PROGRESS: d.window.messages.started,
        MaintenanceStatus.COMPLETE: d.window.messages.completed,
    }[status]
    return render(template, d, list(d.window.components) or list(pub.components))


class MaintenancePublisher:
    """Executes maintenance plans against the API and records their outcome (write-ahead first)."""

    def __init__(
        self, client: StatusPageClient, store: MaintenanceStore, directory: PageDirectory | None
    ) -> None:
        self._client = client
        self._store = store
        self.directory = directory

    async def _save(self, pub: PublishedMaintenance) -> None:
        await self._store.save_published_maintenance(pub.key, pub.to_json())

    async def execute(self, plan: MaintenancePlan) -> tuple[PublishedMaintenance | None, tuple[str, ...]]:
        """Perform one plan; returns the new record and the components of a maintenance it completed."""
        try:
            return await self._execute(plan)
        except errors.IncidentIOError as exc:
            raise ActionFailed(str(exc)) from exc

    async def _execute(self, plan: MaintenancePlan) -> tuple[PublishedMaintenance | None, tuple[str, ...]]:
        if plan.kind == "create":
            return await self._create(plan), ()
        pub = plan.published
        assert pub is not None
        assert pub.maintenance_id is not None
        if plan.kind == "read_back":
            try:
                m = await self._client.show_maintenance(pub.maintenance_id)
            except errors.NotFound:
                gone = replace(pub, deleted=True, outcome_unknown=False)
                await self._save(gone)
                return gone, ()
            back = replace(pub, status=str(m.maintenance_status), name=m.name, outcome_unknown=False)
            await self._save(back)
            return back, ()
        await self._save(replace(pub, outcome_unknown=True))
        if plan.kind == "delete":
            await self._client.delete_maintenance(pub.maintenance_id)
            done = replace(pub, deleted=True, outcome_unknown=False)
            await self._save(done)
            log.info("maintenance deleted", window=pub.window_id, maintenance_id=pub.maintenance_id)
            return done, ()
        if plan.kind == "reschedule":
            d = plan.desired
            assert d is not None
            await self._client.update_maintenance(
                pub.maintenance_id,
                name=d.window.name,
                start_at=d.occurrence.start_at,
                end_at=d.occurrence.end_at,
            )
            done = replace(
                pub,
                name=d.window.name,
                start_at=_iso(d.occurrence.start_at),
                end_at=_iso(d.occurrence.end_at),
                outcome_unknown=True,
            )
            await self._save(done)
            if d.window.notify_subscribers:
                # UpdateStatusPageMaintenance notifies nobody: say what changed in an update.
                text = (
                    f"Rescheduled: {d.occurrence.start_at.isoformat()} to {d.occurrence.end_at.isoformat()}."
                )
                await self._client.create_maintenance_update(
                    maintenance_id=pub.maintenance_id, message=text, notify_subscribers=True
                )
            done = replace(done, outcome_unknown=False)
            await self._save(done)
            log.info("maintenance rescheduled", window=pub.window_id, maintenance_id=pub.maintenance_id)
            return done, ()
        assert plan.kind == "status"
        assert plan.status is not None
        d = plan.desired
        message = _status_message(d, plan.status, pub) if d is not None else "This maintenance is over."
        try:
            await self._client.create_maintenance_update(
                maintenance_id=pub.maintenance_id,
                message=message,
                notify_subscribers=bool(d and d.window.notify_subscribers),
                maintenance_status=ApiMaintenanceStatus(plan.status.value),
            )
        except errors.ValidationFailed:
            # Refused (e.g. completed on the page already): the page is the truth, read it back.
            return pub, ()
        done = replace(pub, status=plan.status.value, outcome_unknown=False)
        await self._save(done)
        log.info("maintenance moved", window=pub.window_id, status=plan.status.value)
        completed = pub.components if plan.status is MaintenanceStatus.COMPLETE else ()
        return done, completed

    async def _create(self, plan: MaintenancePlan) -> PublishedMaintenance:
        d = plan.desired
        assert d is not None
        assert plan.status is not None
        if self.directory is not None:
            try:
                targets = resolve_targets(d.window, self.directory)
            except TargetError as exc:
                raise ActionFailed(f"maintenance {d.window.id!r}: {exc}") from exc
            page_id, component_ids = targets.status_page_id, tuple(targets.component_ids)
        else:
            page_id, component_ids = d.window.status_page, tuple(d.window.components)
        ahead = PublishedMaintenance(
            key=plan.key,
            window_id=d.window.id,
            status_page_id=page_id,
            name=d.window.name,
            start_at=_iso(d.occurrence.start_at),
            end_at=_iso(d.occurrence.end_at),
            components=component_ids,
            automate=d.window.automate,
            create_attempted=True,
        )
        await self._save(ahead)
        message = render(d.message, d, list(d.window.components))
        m = await self._client.create_maintenance(
            status_page_id=page_id,
            name=d.window.name,
            message=message,
            idempotency_key=d.occurrence.idempotency_key,
            affected_component_ids=list(component_ids),
            start_at=d.occurrence.start_at,
            end_at=d.occurrence.end_at,
            notify_subscribers=d.window.notify_subscribers,
            maintenance_status=ApiMaintenanceStatus(plan.status.value),
            automate_maintenance_status=True if d.window.automate else None,
        )
        done = replace(ahead, maintenance_id=m.id, status=str(m.maintenance_status))
        await self._save(done)
        log.info("maintenance published", window=d.window.id, occurrence=d.occurrence.key, status=done.status)
        return done


async def load_published(store: MaintenanceStore) -> dict[str, PublishedMaintenance]:
    return {
        k: PublishedMaintenance.from_json(v) for k, v in (await store.load_published_maintenances()).items()
    }
