"""The engine's view of a status page, over the incident.io client.

Turns the client's exception tree into the three outcomes the executor acts on: failed (known not
applied), outcome unknown (read back first), gone (deleted by a human) — for incidents and
maintenance windows alike.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AbstractContextManager
from typing import TypeVar

from bridge.domain import (
    ComponentStatus,
    IncidentStatus,
    PageComponent,
    PageDirectory,
    PageInfo,
    update_digest,
)
from bridge.engine.executor import ActionFailed, IncidentGone, OutcomeUnknown
from bridge.engine.model import (
    CreateIncident,
    CreateMaintenance,
    DeleteMaintenance,
    MaintenanceView,
    MoveMaintenance,
    RenameIncident,
    RescheduleMaintenance,
    UpdateIncident,
)
from bridge.engine.readback import IncidentView
from bridge.incidentio import errors
from bridge.incidentio.client import StatusPageClient
from bridge.incidentio.models import Incident, Maintenance
from bridge.incidentio.models import IncidentStatus as ApiIncidentStatus
from bridge.incidentio.models import MaintenanceStatus as ApiMaintenanceStatus

T = TypeVar("T")


def incident_view(incident: Incident) -> IncidentView:
    """What the page shows of an incident: an unknown status is ``None``, an unknown component status
    is operational, and a component whose impact has ended is operational whatever the update said.
    """
    try:
        status: IncidentStatus | None = IncidentStatus(str(incident.incident_status))
    except ValueError:
        status = None
    impacted = frozenset(i.component_id for i in incident.component_impacts if i.end_at is None)
    components = {}
    ended = set()
    for cid, value in incident.current_components().items():
        try:
            shown = ComponentStatus(value)
        except ValueError:
            shown = ComponentStatus.OPERATIONAL
        # An impact that ended after the latest update (a maintenance completion resets its
        # components) no longer shows on the page, whatever that update said.
        components[cid] = shown if cid in impacted else ComponentStatus.OPERATIONAL
        if shown is not ComponentStatus.OPERATIONAL and cid not in impacted:
            ended.add(cid)
    return IncidentView(
        id=incident.id,
        name=incident.name,
        incident_status=status,
        components=components,
        update_count=len(incident.updates),
        impacted=impacted,
        ended=frozenset(ended),
        digests=tuple(
            update_digest(
                str(u.incident_status),
                {c.component_id: str(c.component_status) for c in u.component_statuses},
                u.message,
            )
            for u in sorted(incident.updates, key=lambda u: u.published_at, reverse=True)
        ),
    )


def maintenance_view(m: Maintenance) -> MaintenanceView:
    """What the page shows of a maintenance window (an unknown status kept as its text)."""
    return MaintenanceView(id=m.id, status=str(m.maintenance_status), name=m.name)


async def _call(request: Awaitable[T]) -> T:
    try:
        return await request
    except errors.NotFound as exc:
        raise IncidentGone(str(exc)) from exc
    except errors.OutcomeUnknown as exc:
        raise OutcomeUnknown(str(exc)) from exc
    except errors.RateLimited as exc:
        raise ActionFailed(str(exc), retry_after=exc.retry_after, unavailable=True) from exc
    except errors.IncidentIOError as exc:
        raise ActionFailed(str(exc), unavailable=isinstance(exc, errors.RetryableError)) from exc


class ClientPageAPI:
    """The PageAPI over the incident.io client: NotFound becomes IncidentGone, the client's
    OutcomeUnknown the engine's, and every other client error ActionFailed (``unavailable`` when retryable).
    """

    def __init__(self, client: StatusPageClient) -> None:
        self._client = client

    def single_attempt(self) -> AbstractContextManager[None]:
        """Calls inside are tried once, whatever the client's retry policy (the breaker's probe)."""
        return self._client.single_attempt()

    async def create(self, action: CreateIncident) -> IncidentView:
        """Create the incident; a page that is not found is ActionFailed (nothing was created)."""
        try:
            return incident_view(await self._create(action))
        except IncidentGone as exc:  # the page itself is unknown: nothing was created
            raise ActionFailed(str(exc)) from exc

    async def _create(self, action: CreateIncident) -> Incident:
        return await _call(
            self._client.create_incident(
                status_page_id=action.status_page_id,
                name=action.name,
                message=action.message,
                idempotency_key=action.idempotency_key,
                notify_subscribers=action.notify_subscribers,
                incident_status=ApiIncidentStatus(action.incident_status.value),
                component_statuses={c: s.value for c, s in action.components.items()} or None,
            )
        )

    async def update(self, action: UpdateIncident) -> None:
        """Post the update; ``components=None`` sends none (the API refuses them on a resolve)."""
        await _call(
            self._client.create_incident_update(
                incident_id=action.incident_id,
                message=action.message,
                notify_subscribers=action.notify_subscribers,
                incident_status=ApiIncidentStatus(action.incident_status.value),
                component_statuses=None
                if action.components is None
                else {c: s.value for c, s in action.components.items()},
            )
        )

    async def rename(self, action: RenameIncident) -> None:
        """Rename the incident; IncidentGone when it was deleted."""
        await _call(self._client.rename_incident(action.incident_id, action.name))

    async def show(self, incident_id: str) -> IncidentView:
        """The incident as the page shows it; IncidentGone when it was deleted."""
        return incident_view(await _call(self._client.show_incident(incident_id)))

    async def open_incidents(self, status_page_id: str) -> list[IncidentView]:
        """The page's ongoing incidents (newest first; the walk stops at the first page with none)."""
        out: list[IncidentView] = []
        try:
            async for incident in self._client.iter_incidents(status_page_id):
                if str(incident.incident_status) != "resolved":
                    out.append(incident_view(incident))
        except errors.OutcomeUnknown as exc:
            raise OutcomeUnknown(str(exc)) from exc
        except errors.IncidentIOError as exc:
            retry_after = exc.retry_after if isinstance(exc, errors.RateLimited) else None
            unavailable = isinstance(exc, errors.RetryableError)
            raise ActionFailed(str(exc), retry_after=retry_after, unavailable=unavailable) from exc
        return out

    async def create_maintenance(self, action: CreateMaintenance) -> MaintenanceView:
        """Create the window (automated status when the window asks for it); a page that is not found is
        ActionFailed.
        """
        ahead = action.ahead
        try:
            m = await _call(
                self._client.create_maintenance(
                    status_page_id=ahead.status_page_id,
                    name=ahead.name,
                    message=action.message,
                    idempotency_key=action.idempotency_key,
                    affected_component_ids=list(ahead.components),
                    start_at=action.start_at,
                    end_at=action.end_at,
                    notify_subscribers=action.notify_subscribers,
                    maintenance_status=ApiMaintenanceStatus(action.status.value),
                    automate_maintenance_status=True if ahead.automate else None,
                )
            )
        except IncidentGone as exc:  # the page itself is unknown: nothing was created
            raise ActionFailed(str(exc)) from exc
        return maintenance_view(m)

    async def move_maintenance(self, action: MoveMaintenance) -> None:
        """Post the window's new status; the record must carry the maintenance id."""
        assert action.published.maintenance_id is not None
        await _call(
            self._client.create_maintenance_update(
                maintenance_id=action.published.maintenance_id,
                message=action.message,
                notify_subscribers=action.notify_subscribers,
                maintenance_status=ApiMaintenanceStatus(action.status.value),
            )
        )

    async def reschedule_maintenance(self, action: RescheduleMaintenance) -> None:
        """Rename and move the window in one PUT; the record must carry the maintenance id."""
        assert action.published.maintenance_id is not None
        await _call(
            self._client.update_maintenance(
                action.published.maintenance_id,
                name=action.name,
                start_at=action.start_at,
                end_at=action.end_at,
            )
        )

    async def announce_reschedule(self, action: RescheduleMaintenance) -> None:
        """Post the reschedule notice, always to subscribers; the action must carry a notice."""
        assert action.published.maintenance_id is not None
        assert action.notice is not None
        await _call(
            self._client.create_maintenance_update(
                maintenance_id=action.published.maintenance_id,
                message=action.notice,
                notify_subscribers=True,
            )
        )

    async def delete_maintenance(self, action: DeleteMaintenance) -> None:
        """Delete the window; IncidentGone when it was already gone, but a retried DELETE that finds it
        gone counts as done.
        """
        assert action.published.maintenance_id is not None
        await _call(self._client.delete_maintenance(action.published.maintenance_id))

    async def show_maintenance(self, maintenance_id: str) -> MaintenanceView:
        """The window as the page shows it; IncidentGone when it was deleted."""
        return maintenance_view(await _call(self._client.show_maintenance(maintenance_id)))


async def page_directory(client: StatusPageClient) -> PageDirectory:
    """Every page the key can see, with its components, for resolving the names rules use; raises
    the client's ``IncidentIOError`` when the pages cannot be read."""
    pages = []
    for page in await client.list_status_pages():
        structure = await client.show_structure(page.id)
        pages.append(
            PageInfo(
                id=page.id,
                name=page.name,
                components=tuple(
                    PageComponent(id=c.id, name=c.name, group=c.group, sub_page=c.sub_page)
                    for c in structure.components
                ),
            )
        )
    return PageDirectory(tuple(pages))
