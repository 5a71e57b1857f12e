"""Typed models of incident.io's Status Page API V2, as the OpenAPI document defines them.

Responses tolerate what the API's compatibility policy allows: unknown fields are ignored and
unknown enum values are kept as plain strings (``Lenient*`` types), so a new status value never
breaks the daemon. Request models dump to exactly the spec's request bodies
(``model_dump(mode="json", exclude_none=True)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class IncidentStatus(StrEnum):
    """The ``incident_status`` enum of StatusPageIncidentV2 and its create/update payloads."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class ComponentStatus(StrEnum):
    """The ``component_status`` enum of StatusPageIncidentAffectedComponentV2."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    FULL_OUTAGE = "full_outage"


class MaintenanceStatus(StrEnum):
    """The ``maintenance_status`` enum of StatusPageMaintenanceV2 and its create/update payloads."""

    SCHEDULED = "maintenance_scheduled"
    IN_PROGRESS = "maintenance_in_progress"
    COMPLETE = "maintenance_complete"


class MaintenanceComponentStatus(StrEnum):
    """The ``component_status`` enum of StatusPageMaintenanceAffectedComponentV2."""

    OPERATIONAL = "operational"
    UNDER_MAINTENANCE = "under_maintenance"


def _lenient(enum: type[StrEnum]) -> Any:
    def convert(value: Any) -> Any:
        try:
            return enum(value)
        except ValueError:
            return str(value)

    return BeforeValidator(convert)


LenientIncidentStatus = Annotated[IncidentStatus | str, _lenient(IncidentStatus)]
LenientComponentStatus = Annotated[ComponentStatus | str, _lenient(ComponentStatus)]
LenientMaintenanceStatus = Annotated[MaintenanceStatus | str, _lenient(MaintenanceStatus)]
LenientMaintenanceComponentStatus = Annotated[
    MaintenanceComponentStatus | str, _lenient(MaintenanceComponentStatus)
]


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# --- errors ----------------------------------------------------------------------------------


class ErrorSource(_Response):
    """Mirrors ErrorSource: the request field (or JSON pointer) an error is about; both optional."""

    field: str | None = None
    pointer: str | None = None


class ErrorSingle(_Response):
    """Mirrors ErrorSingle: one problem of an error answer, with its machine-readable ``code``."""

    code: str
    message: str
    source: ErrorSource | None = None


class ErrorRateLimit(_Response):
    """Mirrors ErrorRateLimit, the ``rate_limit`` of a 429 body (``retry_after`` an RFC 3339 time)."""

    name: str | None = None
    limit: int | None = None
    remaining: int | None = None
    retry_after: str | None = None


class ErrorResponse(_Response):
    """Mirrors ErrorResponse, the body of every error answer (``debug`` is ignored)."""

    type: str
    status: int
    request_id: str = ""
    errors: list[ErrorSingle] = Field(default_factory=list)
    rate_limit: ErrorRateLimit | None = None

    def summary(self) -> str:
        """``code (field): message`` per error, joined with ``; ``; the ``type`` when there is none."""
        parts = []
        for e in self.errors:
            where = f" ({e.source.field})" if e.source and e.source.field else ""
            parts.append(f"{e.code}{where}: {e.message}")
        return "; ".join(parts) or self.type


class PaginationMeta(_Response):
    """Mirrors PaginationMetaResultV2; ``after`` is the cursor of the next page, ``None`` on the last."""

    page_size: int
    after: str | None = None


# --- pages and structure -----------------------------------------------------------------------


class StatusPage(_Response):
    """Mirrors StatusPageV2 (the fields the bridge reads)."""

    id: str
    name: str
    description: str | None = None
    public_url: str | None = None


class StructureComponent(_Response):
    """Mirrors StatusPageStructureComponentV2: a component as placed on the page."""

    component_id: str
    name: str
    hidden: bool = False
    display_uptime: bool = True


class StructureGroup(_Response):
    """Mirrors StatusPageStructureGroupV2: a named group of components."""

    id: str
    name: str
    description: str | None = None
    hidden: bool = False
    components: list[StructureComponent] = Field(default_factory=list)


class StructureSubPageItem(_Response):
    """Mirrors StatusPageStructureSubPageItemV2: a component or a group placed on a sub-page."""

    component: StructureComponent | None = None
    group: StructureGroup | None = None


class StructureSubPage(_Response):
    """Mirrors StatusPageStructureSubPageV2: a sub-page with its own components and groups."""

    id: str
    name: str
    items: list[StructureSubPageItem] = Field(default_factory=list)


class StructureItem(_Response):
    """Mirrors StatusPageStructureItemV2: a component, a group or a sub-page placed on the page."""

    component: StructureComponent | None = None
    group: StructureGroup | None = None
    sub_page: StructureSubPage | None = None


class StructureResponse(_Response):
    """Mirrors StatusPageStructureV2, the ``current_structure`` of ShowStatusPageStructure."""

    items: list[StructureItem] = Field(default_factory=list)


class PageComponentRef(_Response):
    """A component as placed on a page, with where it sits."""

    id: str
    name: str
    group: str | None = None
    sub_page: str | None = None
    hidden: bool = False

    @property
    def path(self) -> str:
        """``SubPage/Group/Name`` without the parts that are absent: the name rules and commands may use."""
        return "/".join(p for p in (self.sub_page, self.group, self.name) if p)


class PageStructure(_Response):
    """ShowStatusPageStructure flattened into lookups by id and by name or path."""

    status_page_id: str
    components: list[PageComponentRef]

    @classmethod
    def from_items(cls, status_page_id: str, items: list[StructureItem]) -> PageStructure:
        """Flatten a StatusPageStructureV2's items, in page order; every component appears once per place."""
        out: list[PageComponentRef] = []

        def group(g: StructureGroup, sub: str | None) -> Iterator[PageComponentRef]:
            for c in g.components:
                yield PageComponentRef(
                    id=c.component_id, name=c.name, group=g.name, sub_page=sub, hidden=c.hidden
                )

        for item in items:
            if item.component is not None:
                c = item.component
                out.append(PageComponentRef(id=c.component_id, name=c.name, hidden=c.hidden))
            elif item.group is not None:
                out.extend(group(item.group, None))
            elif item.sub_page is not None:
                for sub_item in item.sub_page.items:
                    if sub_item.component is not None:
                        c = sub_item.component
                        out.append(
                            PageComponentRef(
                                id=c.component_id, name=c.name, sub_page=item.sub_page.name, hidden=c.hidden
                            )
                        )
                    elif sub_item.group is not None:
                        out.extend(group(sub_item.group, item.sub_page.name))
        return cls(status_page_id=status_page_id, components=out)

    @property
    def by_id(self) -> dict[str, PageComponentRef]:
        """Every component by its id (one entry per id; a component placed twice keeps the last place)."""
        return {c.id: c for c in self.components}

    def matches(self, ref: str) -> list[PageComponentRef]:
        """Components an id, a full path (``Group/Name``), a partial path or a bare name refers to."""
        by_id = [c for c in self.components if c.id == ref]
        if by_id:
            return by_id
        exact = [c for c in self.components if c.path == ref]
        if exact:
            return exact
        return [c for c in self.components if c.path.endswith("/" + ref) or c.name == ref]

    def lookup(self, ref: str) -> PageComponentRef | None:
        """The one component ``ref`` names, or ``None`` when it names none or several."""
        found = self.matches(ref)
        return found[0] if len(found) == 1 else None

    @property
    def ambiguous_names(self) -> set[str]:
        """Bare names that more than one component carries: those must be referred to by path or id."""
        names = [c.name for c in self.components]
        return {n for n in names if names.count(n) > 1}


# --- incidents -------------------------------------------------------------------------------


class AffectedComponent(_Response):
    """Mirrors StatusPageIncidentAffectedComponentV2; an unknown status value is kept as a string."""

    component_id: str
    component_status: LenientComponentStatus


class ComponentImpact(_Response):
    """Mirrors StatusPageIncidentComponentImpactV2; ``end_at`` is ``None`` while the impact lasts."""

    component_id: str
    component_status: LenientComponentStatus
    start_at: datetime
    end_at: datetime | None = None


class IncidentUpdate(_Response):
    """Mirrors StatusPageIncidentUpdateV2: one published update and the statuses it set."""

    id: str
    status_page_incident_id: str
    published_at: datetime
    message: str
    incident_status: LenientIncidentStatus
    component_statuses: list[AffectedComponent] = Field(default_factory=list)


class Incident(_Response):
    """Mirrors StatusPageIncidentV2, with its updates in the API's (undocumented) order."""

    id: str
    status_page_id: str
    name: str
    published_at: datetime
    incident_status: LenientIncidentStatus
    updates: list[IncidentUpdate] = Field(default_factory=list)
    component_impacts: list[ComponentImpact] = Field(default_factory=list)

    def latest_update(self) -> IncidentUpdate | None:
        """The most recent update (the API does not document the order of ``updates``)."""
        return max(self.updates, key=lambda u: u.published_at, default=None)

    def current_components(self) -> dict[str, str]:
        """Component statuses as of the latest update (operational included)."""
        latest = self.latest_update()
        if latest is None:
            return {}
        return {c.component_id: str(c.component_status) for c in latest.component_statuses}


class ComponentStatusItem(_Request):
    """Mirrors StatusPageIncidentAffectedComponentV2 as a request item (known statuses only)."""

    component_id: str
    component_status: ComponentStatus


class CreateIncidentRequest(_Request):
    """Mirrors StatusPagesCreateStatusPageIncidentPayloadV2; name at most 200, message 4096 characters."""

    status_page_id: str
    name: str = Field(max_length=200)
    incident_status: IncidentStatus
    message: str = Field(max_length=4096)
    idempotency_key: str
    notify_subscribers: bool
    component_statuses: list[ComponentStatusItem] | None = None


class CreateIncidentUpdateRequest(_Request):
    """Mirrors StatusPagesCreateStatusPageIncidentUpdatePayloadV2; message at most 4096 characters."""

    status_page_incident_id: str
    message: str = Field(max_length=4096)
    notify_subscribers: bool
    incident_status: IncidentStatus | None = None
    component_statuses: list[ComponentStatusItem] | None = None


class RenameIncidentRequest(_Request):
    """Mirrors StatusPagesUpdateStatusPageIncidentPayloadV2: a rename, at most 200 characters."""

    name: str = Field(max_length=200)


# --- maintenances ------------------------------------------------------------------------------


class MaintenanceAffectedComponent(_Response):
    """Mirrors StatusPageMaintenanceAffectedComponentV2; an unknown status value is kept as a string."""

    component_id: str
    component_status: LenientMaintenanceComponentStatus


class MaintenancePeriod(_Response):
    """Mirrors StatusPageMaintenanceComponentMaintenancePeriodV2; ``end_at`` is ``None`` while it lasts."""

    component_id: str
    start_at: datetime
    end_at: datetime | None = None


class MaintenanceUpdate(_Response):
    """Mirrors StatusPageMaintenanceUpdateV2: one published update and the statuses it set."""

    id: str
    status_page_maintenance_id: str
    published_at: datetime
    message: str
    maintenance_status: LenientMaintenanceStatus
    component_statuses: list[MaintenanceAffectedComponent] = Field(default_factory=list)


class Maintenance(_Response):
    """Mirrors StatusPageMaintenanceV2."""

    id: str
    status_page_id: str
    name: str
    published_at: datetime
    maintenance_status: LenientMaintenanceStatus
    automate_maintenance_status: bool = False
    updates: list[MaintenanceUpdate] = Field(default_factory=list)
    component_maintenance_periods: list[MaintenancePeriod] = Field(default_factory=list)


class MaintenanceComponentStatusItem(_Request):
    """Mirrors StatusPageMaintenanceAffectedComponentV2 as a request item (known statuses only)."""

    component_id: str
    component_status: MaintenanceComponentStatus


class CreateMaintenanceRequest(_Request):
    """Mirrors StatusPagesCreateStatusPageMaintenancePayloadV2; name at most 200, message 4096 characters."""

    status_page_id: str
    name: str = Field(max_length=200)
    maintenance_status: MaintenanceStatus
    idempotency_key: str
    affected_component_ids: list[str]
    start_at: datetime
    end_at: datetime
    message: str = Field(max_length=4096)
    notify_subscribers: bool
    automate_maintenance_status: bool | None = None


class UpdateMaintenanceRequest(_Request):
    """Mirrors StatusPagesUpdateStatusPageMaintenancePayloadV2: rename and reschedule in one PUT."""

    name: str = Field(max_length=200)
    start_at: datetime
    end_at: datetime


class CreateMaintenanceUpdateRequest(_Request):
    """Mirrors StatusPagesCreateStatusPageMaintenanceUpdatePayloadV2; message at most 4096 characters."""

    status_page_maintenance_id: str
    message: str = Field(max_length=4096)
    notify_subscribers: bool
    maintenance_status: MaintenanceStatus | None = None
    component_statuses: list[MaintenanceComponentStatusItem] | None = None
