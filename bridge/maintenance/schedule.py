"""The window math: occurrences, phases and what the page should show, as pure functions of ``now``.

Maintenance is level-triggered like incidents: nothing here remembers a transition. Given the windows
and an instant, these functions say which occurrences exist, where each one stands, which components
are under maintenance and when the next thing happens. The reconciler publishes the difference between
that and the page; APScheduler only wakes it at :func:`next_wakeups`. So a transition missed while the
daemon was down is just the current phase at the next pass, and a restart cannot publish one twice.

Every instant is timezone-aware; results are in UTC. An occurrence's lifetime on the page is
``[announce_at, end_at)`` (``announce_at`` ``None``: since the window exists), and its phase changes at
exactly ``announce_at``, ``start_at`` and ``end_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bridge.domain import MaintenanceStatus, PageDirectory
from bridge.maintenance.models import OneOffWindow, RecurringWindow, announce_lead
from bridge.maintenance.targets import canonical_refs

AnyWindow = OneOffWindow | RecurringWindow

ONE_OFF_KEY = "one-off"
"""The occurrence key of a one-off window. Constant, so that rescheduling a window (new start) updates
the maintenance already on the page instead of creating a second one: an id is never reused."""

_TICK = timedelta(microseconds=1)


class Phase(StrEnum):
    """Where an occurrence of a window stands at an instant, from not yet announced to complete."""

    ABSENT = "absent"
    """Not announced yet: not on the page."""
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"

    @property
    def status(self) -> MaintenanceStatus | None:
        """The page's maintenance status for this phase; ``None`` for :attr:`ABSENT`."""
        return _STATUS.get(self)


_STATUS = {
    Phase.SCHEDULED: MaintenanceStatus.SCHEDULED,
    Phase.IN_PROGRESS: MaintenanceStatus.IN_PROGRESS,
    Phase.COMPLETE: MaintenanceStatus.COMPLETE,
}


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One run of a window: one maintenance on the page."""

    window_id: str
    key: str
    """Stable for the occurrence's life: ``one-off``, or the recurring start in UTC (``…T01:00:00Z``)."""
    start_at: datetime
    end_at: datetime
    announce_at: datetime | None
    """When it goes on the page; ``None``: as soon as the window exists (one-off default)."""

    @property
    def boundaries(self) -> tuple[datetime, ...]:
        """The instants at which its phase changes, in order."""
        return tuple(t for t in (self.announce_at, self.start_at, self.end_at) if t is not None)

    @property
    def idempotency_key(self) -> str:
        """For CreateStatusPageMaintenance: a retried create of this occurrence cannot make a second."""
        return f"statusbridge-maintenance:{self.window_id}:{self.key}"


@dataclass(frozen=True, slots=True)
class DesiredMaintenance:
    """An occurrence that should be on the page now, and with which status."""

    window: AnyWindow
    occurrence: Occurrence
    phase: Phase

    @property
    def status(self) -> MaintenanceStatus:
        """The page's maintenance status for the occurrence's phase (never absent here)."""
        status = self.phase.status
        assert status is not None  # desired() never yields ABSENT
        return status

    @property
    def message(self) -> str:
        """The window's message template for this status (rendered by the publisher)."""
        messages = self.window.messages
        return {
            Phase.SCHEDULED: messages.scheduled,
            Phase.IN_PROGRESS: messages.started,
            Phase.COMPLETE: messages.completed,
        }[self.phase]


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two occurrences covering the same components of a page at the same time (allowed; worth a warning)."""

    status_page: str
    components: frozenset[str]
    first: Occurrence
    second: Occurrence
    start_at: datetime
    end_at: datetime

    def __str__(self) -> str:
        names = ", ".join(sorted(self.components))
        return (
            f"maintenance {self.first.window_id!r} ({self.first.key}) and {self.second.window_id!r} "
            f"({self.second.key}) both cover {names} on {self.status_page!r} "
            f"from {_iso(self.start_at)} to {_iso(self.end_at)}"
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)


def _occurrence(window: AnyWindow, start_at: datetime, end_at: datetime, key: str) -> Occurrence:
    lead = announce_lead(window)
    return Occurrence(
        window_id=window.id,
        key=key,
        start_at=start_at,
        end_at=end_at,
        announce_at=None if lead is None else start_at - lead,
    )


def _ending_after(window: AnyWindow, since: datetime) -> Iterator[Occurrence]:
    """Occurrences with ``end_at > since``, in start order; unbounded for recurring windows.

    Because a window's lead and duration are constant, announce and end instants rise with the start:
    callers may stop at the first occurrence that begins past what they need.
    """
    if isinstance(window, OneOffWindow):
        if window.end_at > since:
            yield _occurrence(window, window.start_at, window.end_at, ONE_OFF_KEY)
        return
    for start_at in window.schedule.starts(since - window.duration):
        end_at = start_at + window.duration  # elapsed time, across any DST change
        if end_at > since:
            yield _occurrence(window, start_at, end_at, _iso(start_at))


def occurrences(window: AnyWindow, start: datetime, end: datetime) -> list[Occurrence]:
    """The occurrences whose lifetime ``[announce_at, end_at)`` intersects ``[start, end)``."""
    start, end = _aware("start", start), _aware("end", end)
    found: list[Occurrence] = []
    if end <= start:
        return found
    for occurrence in _ending_after(window, start):
        if occurrence.announce_at is not None and occurrence.announce_at >= end:
            break
        found.append(occurrence)
    return found


def phase(occurrence: Occurrence, now: datetime) -> Phase:
    """Where ``occurrence`` stands at ``now``; each boundary belongs to the phase it starts."""
    now = _aware("now", now)
    if occurrence.announce_at is not None and now < occurrence.announce_at:
        return Phase.ABSENT
    if now < occurrence.start_at:
        return Phase.SCHEDULED
    if now < occurrence.end_at:
        return Phase.IN_PROGRESS
    return Phase.COMPLETE


def desired(windows: Iterable[AnyWindow], now: datetime, *, horizon: timedelta) -> list[DesiredMaintenance]:
    """What the page should show at ``now``: every announced occurrence not yet over, plus those that
    ended within ``horizon`` before ``now`` (status complete).

    A complete entry means "if you published this occurrence and it is not complete on the page,
    complete it"; one that was never published needs nothing. The caller knows what it published, so
    ``horizon`` only bounds how far back it looks: make it at least the longest outage to recover
    from. Sorted by start, then window id.
    """
    now = _aware("now", now)
    if horizon < timedelta(0):
        raise ValueError("horizon must not be negative")
    found = [
        DesiredMaintenance(window, occurrence, phase(occurrence, now))
        for window in windows
        for occurrence in occurrences(window, now - horizon, now + _TICK)
    ]
    return sorted(found, key=lambda d: (d.occurrence.start_at, d.occurrence.window_id))


def next_wakeups(windows: Iterable[AnyWindow], now: datetime, limit: int) -> list[datetime]:
    """The first ``limit`` instants strictly after ``now`` at which any occurrence changes phase.

    One DateTrigger each wakes the reconciler; an instant equal to ``now`` is the current pass's.
    """
    now = _aware("now", now)
    if limit <= 0:
        return []
    found: set[datetime] = set()
    for window in windows:
        # One window's instants can coincide (an occurrence's start is the next one's announce):
        # count distinct instants, or the window would stop short of ``limit``.
        mine: list[datetime] = []
        for occurrence in _ending_after(window, now):
            first = occurrence.announce_at or occurrence.start_at
            if len(mine) >= limit and first > mine[limit - 1]:
                break
            mine = sorted({*mine, *(b for b in occurrence.boundaries if b > now)})
        found.update(mine[:limit])
    return sorted(found)[:limit]


def under_maintenance(
    windows: Iterable[AnyWindow], now: datetime, *, directory: PageDirectory | None = None
) -> dict[str, set[str]]:
    """Status page → components under an in-progress occurrence at ``now``.

    References are as the windows wrote them, or IDs where ``directory`` resolves them (which is how
    rules name components in impacts, so suppression can compare like with like).
    """
    now = _aware("now", now)
    result: dict[str, set[str]] = {}
    for window in windows:
        for occurrence in _ending_after(window, now):
            if occurrence.start_at > now:
                break
            page, components = canonical_refs(window, directory)
            result.setdefault(page, set()).update(components)
    return result


def overlaps(
    windows: Sequence[AnyWindow],
    start: datetime,
    end: datetime,
    *,
    directory: PageDirectory | None = None,
) -> list[Overlap]:
    """Pairs of occurrences running in ``[start, end)`` at the same time on a shared component.

    Overlap is allowed (two teams may both have work to do); ``check`` reports it as a warning. An
    occurrence may overlap another of its own recurring window when the duration exceeds the period.
    """
    start, end = _aware("start", start), _aware("end", end)
    running: list[tuple[Occurrence, str, frozenset[str]]] = []
    for window in windows:
        page, components = canonical_refs(window, directory)
        for occurrence in _ending_after(window, start):
            if occurrence.start_at >= end:
                break
            running.append((occurrence, page, components))
    running.sort(key=lambda item: (item[0].start_at, item[0].window_id, item[0].key))
    found: list[Overlap] = []
    for index, (a, page_a, components_a) in enumerate(running):
        for b, page_b, components_b in running[index + 1 :]:
            if b.start_at >= a.end_at:
                break  # sorted by start: no later occurrence can meet ``a`` either
            shared = components_a & components_b
            if page_a == page_b and shared:
                found.append(Overlap(page_a, shared, a, b, b.start_at, min(a.end_at, b.end_at)))
    return found
