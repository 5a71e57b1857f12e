"""Reading an incident back from the page: pure reconciliation of what we think with what it shows.

Two situations call for it: an update whose outcome is unknown (a 5xx, a timeout or a crash after the
request left), and the periodic drift check of every open incident. The rule is the same: the page is
the truth. If what it shows is explained by the bridge's own writes (the state we recorded, or one
more update that may have landed), we adopt it and let the planner send whatever is still missing.
Anything else — more updates than the bridge posted, a status, components or a name it did not
set, a resolve it did not send — is a human at work: the episode is marked taken over and never touched
again (ARCHITECTURE.md: respected, not fought).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime

from bridge.domain import ComponentStatus, IncidentStatus, PublishedGroup


@dataclass(frozen=True, slots=True)
class IncidentView:
    """The part of a page incident the bridge compares with its own record."""

    id: str
    name: str
    incident_status: IncidentStatus | None
    """``None`` for a status value this version does not know (the API may add enum values)."""
    components: Mapping[str, ComponentStatus]
    """Component statuses the page shows: the latest update's (operational included), except that
    a component whose impact has ended since (a maintenance completion) is operational."""
    update_count: int
    impacted: frozenset[str] = frozenset()
    """Components with an ongoing impact period on the page (what a maintenance completion can erase)."""
    digests: tuple[str, ...] = ()
    """Content digest of each update, newest first (``update_digest``)."""
    ended: frozenset[str] = frozenset()
    """Components the latest update impacts whose impact has ended since. Impacts are derived from
    the update history, so only something that posts no update ends one: a maintenance completing
    (incident.io resets its components), known to the bridge or not (a window a lost store forgot)."""


def _erased(published: PublishedGroup, page: IncidentView, reset: AbstractSet[str]) -> set[str]:
    """Components the bridge published as impacted that a maintenance completion (``reset``, or
    one the page shows in ``ended``) has set operational: the completion's doing, not a human's."""
    return {
        c
        for c, s in published.components.items()
        if s is not ComponentStatus.OPERATIONAL
        and c in reset | page.ended
        and page.components.get(c, ComponentStatus.OPERATIONAL) is ComponentStatus.OPERATIONAL
    }


def _differs(published: PublishedGroup, page: IncidentView, reset: AbstractSet[str]) -> str | None:
    if page.incident_status != published.incident_status:
        return f"status is {page.incident_status} on the page, {published.incident_status} published"
    erased = _erased(published, page, reset)
    mine = {
        c: s
        for c, s in published.components.items()
        if s is not ComponentStatus.OPERATIONAL and c not in erased
    }
    theirs = {c: s for c, s in page.components.items() if s is not ComponentStatus.OPERATIONAL}
    if mine != theirs:
        return "components differ from what the bridge published"
    return None


def after_read_back(
    published: PublishedGroup,
    page: IncidentView,
    now: datetime,
    *,
    late_until: datetime | None = None,
    reset: AbstractSet[str] = frozenset(),
) -> PublishedGroup:
    """The published record after comparing it with the page.

    ``late_until``: until then the write of unknown outcome may still land (a request already on the
    wire): an unchanged page proves nothing yet, so the record stays unknown and asks to be read
    again then, instead of letting the planner re-send.

    ``reset``: components a maintenance completion has just set operational on the page; shown
    operational there, they are the completion's doing, not a human's, as are those of
    ``page.ended``. Either way the record then shows them operational, so that the planner
    re-asserts what still fires."""
    if (
        published.outcome_unknown
        and late_until is not None
        and now < late_until
        and page.update_count == published.update_count
    ):
        return replace(published, recheck_at=late_until)
    one_more_is_ours = page.update_count == published.update_count + 1 and (
        not page.digests or page.digests[0] in published.sent
    )
    if published.outcome_unknown and (page.update_count == published.update_count or one_more_is_ours):
        # Our last update did or did not land; either way the page now says what was published.
        # One update more is ours only with our content: a person may have posted instead, while
        # ours was refused (a 429, a 5xx before processing) or before it was sent.
        status = page.incident_status or published.incident_status
        monitoring_since = (
            (published.monitoring_since or now) if status is IncidentStatus.MONITORING else None
        )
        return replace(
            published,
            name=page.name,
            incident_status=status,
            components=dict(page.components) or dict(published.components),
            update_count=page.update_count,
            last_published_at=now
            if page.update_count > published.update_count
            else published.last_published_at,
            monitoring_since=monitoring_since,
            outcome_unknown=False,
            unknown_since=None,
            recheck_at=None,
        )
    extra = page.update_count - published.update_count
    if extra > 0 and page.digests and all(d in published.sent for d in page.digests[:extra]):
        # Every update the record lacks has the content of one the bridge sent: its own writes,
        # landed after their outcome was judged (a late request, a dead leader's last write).
        return replace(
            published,
            name=page.name,
            incident_status=page.incident_status or published.incident_status,
            components=dict(page.components) or dict(published.components),
            update_count=page.update_count,
            outcome_unknown=False,
            unknown_since=None,
            recheck_at=None,
        )
    reason: str | None
    reason = f"{extra} update(s) the bridge did not post" if extra > 0 else _differs(published, page, reset)
    if reason is None and page.name != published.name:
        reason = "renamed on the page"
    if reason is None:
        erased = _erased(published, page, reset)
        return replace(
            published,
            components={**published.components, **dict.fromkeys(erased, ComponentStatus.OPERATIONAL)},
            outcome_unknown=False,
            unknown_since=None,
            recheck_at=None,
        )
    return replace(
        published,
        incident_status=page.incident_status or published.incident_status,
        components=dict(page.components),
        update_count=page.update_count,
        outcome_unknown=False,
        taken_over=True,
        taken_over_reason=reason,
    )
