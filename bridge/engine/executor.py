"""The executor: performs the planner's actions against the page and records their outcome.

Every write is bracketed by store commits so that a crash at any instant leaves a record the planner
can heal from:

- a create is written ahead (``create_attempted``) and carries the episode's idempotency key, so a
  replay after a crash returns the incident the first attempt made instead of a second one;
- an update or rename is written ahead as ``outcome_unknown``; only the commit of its success clears
  it, so after a crash, a 5xx or a timeout the next plan reads the incident back before re-sending
  (updates have no idempotency key in the API);
- the outcome and the new published state are committed together with the action log line.

Maintenance windows take the same path (:meth:`Executor.execute_maintenance`): their records are
written ahead the same way (``create_attempted`` with the occurrence's idempotency key, then
``outcome_unknown`` around every other write), and the breaker and back-off pace them with the
incidents, so an outage sees one probe at a time whatever is waiting to be published.

Failures that are known not to have been applied (a 429 or connection error before sending, a 4xx)
put the group on an exponential back-off so that one broken group cannot hammer the API, while the
other groups carry on. Failures that say the provider itself is unavailable (5xx, 429, timeouts,
unknown outcomes) open the provider-wide :class:`~bridge.engine.breaker.Breaker` instead: one probe
at a time until it answers, then every group at once.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from bridge import pacing
from bridge.domain import ActionRecord, PublishedGroup, update_digest
from bridge.engine.breaker import Breaker
from bridge.engine.model import (
    Action,
    CreateIncident,
    CreateMaintenance,
    DeleteMaintenance,
    MaintenanceAction,
    MaintenanceView,
    MoveMaintenance,
    PublishedMaintenance,
    ReadBack,
    ReadBackMaintenance,
    RenameIncident,
    RescheduleMaintenance,
    UpdateIncident,
)
from bridge.engine.planner import after_create, after_rename, after_update, before_create
from bridge.engine.readback import IncidentView, after_read_back
from bridge.engine.windows import after_maintenance
from bridge.observability import get_logger

log = get_logger(__name__)
T = TypeVar("T")


class ActionFailed(Exception):
    """The page did not apply the action (known): back off and plan again later."""

    def __init__(self, message: str, *, retry_after: float | None = None, unavailable: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.unavailable = unavailable
        """The provider did not handle the request (5xx, 429, timeout, connection): not this group's fault."""


class ProviderUnavailable(ActionFailed):
    """Not tried: the breaker is open and another action is the probe (no request was sent)."""


class OutcomeUnknown(Exception):
    """The action may or may not have been applied: read the incident back before re-sending."""


class IncidentGone(Exception):
    """The incident (or maintenance window) no longer exists on the page (deleted by a human)."""


class PageAPI(Protocol):
    """What the engine needs from a status page; adapters turn client errors into the three above."""

    async def create(self, action: CreateIncident) -> IncidentView:
        """Create the incident (replaying the idempotency key returns the first one); raises ActionFailed
        or OutcomeUnknown.
        """
        ...

    async def update(self, action: UpdateIncident) -> None:
        """Post one incident update; raises ActionFailed, OutcomeUnknown, or IncidentGone (deleted)."""
        ...

    async def rename(self, action: RenameIncident) -> None:
        """Rename the incident; raises ActionFailed, OutcomeUnknown, or IncidentGone when it was deleted."""
        ...

    async def show(self, incident_id: str) -> IncidentView:
        """The incident as the page shows it; raises IncidentGone when it was deleted, else ActionFailed."""
        ...

    async def open_incidents(self, status_page_id: str) -> list[IncidentView]:
        """The page's incidents that are not resolved; raises ActionFailed when the page cannot be read."""
        ...

    async def create_maintenance(self, action: CreateMaintenance) -> MaintenanceView:
        """Create the window (idempotent by its key); raises ActionFailed or OutcomeUnknown."""
        ...

    async def move_maintenance(self, action: MoveMaintenance) -> None:
        """Post a status change of the window; raises ActionFailed, OutcomeUnknown or IncidentGone."""
        ...

    async def reschedule_maintenance(self, action: RescheduleMaintenance) -> None:
        """Rename and move the window in time; raises ActionFailed, OutcomeUnknown or IncidentGone."""
        ...

    async def announce_reschedule(self, action: RescheduleMaintenance) -> None:
        """Post the reschedule notice to subscribers; raises ActionFailed, OutcomeUnknown or IncidentGone."""
        ...

    async def delete_maintenance(self, action: DeleteMaintenance) -> None:
        """Delete the window; IncidentGone when it was already gone (not when a retry of this call found
        its first attempt had deleted it).
        """
        ...

    async def show_maintenance(self, maintenance_id: str) -> MaintenanceView:
        """The window as the page shows it; raises IncidentGone when it was deleted, else ActionFailed."""
        ...

    def single_attempt(self) -> contextlib.AbstractContextManager[None]:
        """Calls inside are tried once (no in-call retries): a probe is one request."""
        ...


class GroupStore(Protocol):
    """The writes the executor commits around every action; either may raise the store's errors."""

    async def save_group(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        """Commit a group's published state with its action log line (fenced by the lease)."""
        ...

    async def save_published_maintenance(self, key: str, data: Mapping[str, Any]) -> None:
        """Commit what was published for one maintenance occurrence (fenced by the lease)."""
        ...


@dataclass
class Backoff:
    """Per-group exponential back-off after failed actions (full jitter, capped)."""

    base: float = pacing.ACTION_BACKOFF_BASE
    cap: float = pacing.ACTION_BACKOFF_CAP
    failures: int = 0
    until: datetime | None = None

    def fail(self, now: datetime, retry_after: float | None = None) -> datetime:
        """Count a failure and return the instant before which the group is not tried again: full jitter up
        to ``base``·2ⁿ⁻¹ s (at most ``cap``), never sooner than ``retry_after`` seconds.
        """
        self.failures += 1
        delay = random.uniform(0, min(self.cap, self.base * 2 ** (self.failures - 1)))
        if retry_after is not None:
            delay = max(delay, retry_after)
        self.until = now + timedelta(seconds=delay)
        return self.until


class Executor:
    """Performs planned actions against the page, bracketing each with store commits so that a crash
    leaves a record to heal from; pacing by the per-group back-off and the provider-wide breaker.
    """

    def __init__(
        self,
        api: PageAPI,
        store: GroupStore,
        clock: Callable[[], datetime],
        *,
        epoch: Callable[[], int] = lambda: 0,
        on_drift: Callable[[], None] = lambda: None,
        on_recover: Callable[[], None] = lambda: None,
        breaker: Breaker | None = None,
        late_write_window: timedelta = timedelta(seconds=20),
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        """``on_recover`` is called when the provider answers again after an outage: re-plan now.
        ``late_write_window``: how long after it was sent a write of unknown outcome may still land
        (twice the client's timeout: the server may go on after the client gave up)."""
        self.late_write_window = late_write_window
        self._api = _Watched(api, self)
        self._store = store
        self._clock = clock
        self._epoch = epoch
        self._on_drift = on_drift
        self._on_recover = on_recover
        self.breaker = breaker or Breaker()
        self._new_backoff = backoff
        self.backoff: dict[str, Backoff] = {}

    def blocked_until(self, group_key: str, now: datetime) -> datetime | None:
        """When the group may next be tried (its back-off, or the open breaker's next probe, whichever is
        later); ``None`` when it may go now.
        """
        b = self.backoff.get(group_key)
        mine = b.until if b is not None and b.until is not None and b.until > now else None
        provider = self.breaker.blocked_until(now)
        if mine is None or provider is None:
            return mine or provider
        return max(mine, provider)

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """One action's (or read's) turn at the provider, as the breaker allows."""
        if not self.breaker.admit(self._clock()):
            at = self.breaker.probe_at.isoformat() if self.breaker.probe_at else "soon"
            raise ProviderUnavailable(f"the status page API is unavailable; next probe at {at}")
        probe = self.breaker.probing
        try:
            # A probe is one request: its retries are the breaker's next probes.
            with self._api.single_attempt() if probe else contextlib.nullcontext():
                yield
        finally:
            if probe and self.breaker.probing:
                self.breaker.release()

    def _provider_failed(self, retry_after: float | None) -> None:
        was_open = self.breaker.open
        until = self.breaker.failed(self._clock(), retry_after)
        if not was_open:
            log.warning("status page API unavailable: pausing writes, one probe at a time", next_probe=until)

    def _provider_answered(self) -> None:
        if self.breaker.succeeded():
            log.info("status page API answers again: re-planning every group")
            self._on_recover()

    async def _save(
        self,
        group: PublishedGroup,
        kind: str,
        outcome: str,
        detail: str = "",
    ) -> None:
        record = ActionRecord(
            group_key=group.key,
            action=kind,
            outcome=outcome,
            at=self._clock(),
            incident_id=group.incident_id,
            detail=detail,
            epoch=self._epoch(),
        )
        await self._store.save_group(group, action=record)

    async def execute(self, action: Action, published: PublishedGroup | None) -> PublishedGroup:
        """Perform one action; returns the published state as committed. Raises :class:`ActionFailed`
        when the group should stop for this pass (after recording the failure)."""
        return await self._paced(
            action.group_key, type(action).__name__, lambda: self._execute(action, published)
        )

    async def execute_maintenance(
        self, action: MaintenanceAction
    ) -> tuple[PublishedMaintenance, tuple[str, ...]]:
        """Perform one maintenance action; returns the record as committed and the components of a
        window that is now complete (whoever completed it). Raises :class:`ActionFailed` as
        :meth:`execute` does; back-off is per occurrence, under the key ``maintenance:<key>``."""
        return await self._paced(
            f"maintenance:{action.key}", type(action).__name__, lambda: self._maintenance(action)
        )

    async def _paced(self, key: str, name: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` in its turn at the provider; a failure backs ``key`` off unless the breaker
        paces it (the provider's trouble, not this key's)."""
        try:
            with self._turn():
                result = await work()
        except ActionFailed as exc:
            if isinstance(exc, ProviderUnavailable):
                raise
            retry_at = None
            if not (exc.unavailable or self.breaker.open):
                retry_at = self.backoff.setdefault(key, self._new_backoff()).fail(
                    self._clock(), exc.retry_after
                )
            log.warning(
                "action failed",
                group=key,
                action=name,
                error=str(exc),
                retry_at=retry_at.isoformat() if retry_at else None,
            )
            raise
        self.backoff.pop(key, None)
        return result

    async def _execute(self, action: Action, published: PublishedGroup | None) -> PublishedGroup:
        if isinstance(action, CreateIncident):
            return await self._create(action, published)
        assert published is not None, "only creates start from nothing"
        if isinstance(action, UpdateIncident | RenameIncident):
            # A human may have posted, edited or resolved since the last drift check, and the API
            # has no conditional write: look first, so the bridge never writes over them (the
            # race left is this read's round trip).
            published = await self._read_back(published)
            if published.taken_over or not published.open:
                return published
        if isinstance(action, UpdateIncident):
            # Its content is written ahead with the request: if it lands late, a read-back
            # recognises it as the bridge's own (see readback.after_read_back).
            digest = update_digest(
                action.incident_status.value,
                {c: s.value for c, s in (action.components or {}).items()},
                action.message,
            )
            return await self._write(
                replace(published, sent=(*published.sent, digest)),
                "update",
                lambda: self._api.update(action),
                lambda p: after_update(p, action, self._clock()),
            )
        if isinstance(action, RenameIncident):
            return await self._write(
                published, "rename", lambda: self._api.rename(action), lambda p: after_rename(p, action)
            )
        assert isinstance(action, ReadBack)
        return await self._read_back(published)

    async def _create(self, action: CreateIncident, published: PublishedGroup | None) -> PublishedGroup:
        ahead = before_create(published, action)
        await self._store.save_group(ahead)
        try:
            incident = await self._api.create(action)
        except ActionFailed as exc:
            await self._save(ahead, "create", "failed", str(exc))
            raise
        except OutcomeUnknown as exc:
            # The create carries an idempotency key: the next pass replays it safely.
            await self._save(ahead, "create", "unknown", str(exc))
            raise ActionFailed(str(exc)) from exc
        done = after_create(
            ahead,
            action,
            incident.id,
            self._clock(),
            incident_status=incident.incident_status,
            components=incident.components or None,
            update_count=max(incident.update_count, 1),
        )
        await self._save(done, "create", "ok")
        log.info("incident created", group=action.group_key, incident_id=incident.id, episode=action.episode)
        return done

    async def _write(
        self,
        published: PublishedGroup,
        kind: str,
        send: Callable[[], Awaitable[None]],
        apply: Callable[[PublishedGroup], PublishedGroup],
    ) -> PublishedGroup:
        ahead = replace(published, outcome_unknown=True, unknown_since=self._clock(), recheck_at=None)
        await self._store.save_group(ahead)
        try:
            await send()
        except ActionFailed as exc:
            # Known not applied: a rejection (4xx) may also mean a human changed the incident, so the
            # next pass reads it back (outcome_unknown stays set) before trying anything else.
            await self._save(ahead, kind, "failed", str(exc))
            raise
        except OutcomeUnknown as exc:
            await self._save(ahead, kind, "unknown", str(exc))
            raise ActionFailed(str(exc)) from exc
        except IncidentGone:
            gone = replace(
                ahead, outcome_unknown=False, taken_over=True, taken_over_reason="deleted on the page"
            )
            await self._save(gone, kind, "drift", "incident no longer exists")
            return gone
        done = apply(ahead)
        done = replace(done, outcome_unknown=False)
        await self._save(done, kind, "ok")
        log.info("incident written", kind=kind, group=published.key, incident_id=published.incident_id)
        return done

    async def _maintenance(self, action: MaintenanceAction) -> tuple[PublishedMaintenance, tuple[str, ...]]:
        if isinstance(action, CreateMaintenance):
            await self._save_maintenance(action.ahead)
            try:
                created = await self._api.create_maintenance(action)
            except OutcomeUnknown as exc:
                # The create carries the occurrence's idempotency key: the next pass replays it.
                raise ActionFailed(str(exc)) from exc
            return await self._maintenance_done(action, action.ahead, created)
        pub = action.published
        assert pub.maintenance_id is not None, "only creates start from nothing"
        if isinstance(action, ReadBackMaintenance):
            try:
                view: MaintenanceView | None = await self._api.show_maintenance(pub.maintenance_id)
            except IncidentGone:
                view = None
            except OutcomeUnknown as exc:
                raise ActionFailed(str(exc)) from exc
            return await self._maintenance_done(action, pub, view)
        ahead = replace(pub, outcome_unknown=True)
        await self._save_maintenance(ahead)
        try:
            if isinstance(action, DeleteMaintenance):
                await self._api.delete_maintenance(action)
            elif isinstance(action, RescheduleMaintenance):
                await self._api.reschedule_maintenance(action)
                if action.notice is not None:
                    # the new times are on the page; the notice is still to come (outcome_unknown)
                    moved, _ = after_maintenance(action, ahead, None)
                    await self._save_maintenance(replace(moved, outcome_unknown=True))
                    await self._api.announce_reschedule(action)
            else:
                await self._api.move_maintenance(action)
        except OutcomeUnknown as exc:
            raise ActionFailed(str(exc)) from exc
        except IncidentGone:
            # deleted on the page by a human: nothing more to publish for it
            return await self._maintenance_done(ReadBackMaintenance(action.key, ahead), ahead, None)
        return await self._maintenance_done(action, ahead, None)

    async def _maintenance_done(
        self, action: MaintenanceAction, record: PublishedMaintenance, view: MaintenanceView | None
    ) -> tuple[PublishedMaintenance, tuple[str, ...]]:
        done, completed = after_maintenance(action, record, view)
        await self._save_maintenance(done)
        log.info(
            "maintenance written",
            kind=type(action).__name__,
            key=action.key,
            maintenance_id=done.maintenance_id,
            status=done.status,
        )
        return done, completed

    async def _save_maintenance(self, record: PublishedMaintenance) -> None:
        await self._store.save_published_maintenance(record.key, record.to_json())

    async def show(self, incident_id: str) -> IncidentView:
        """The incident as the page shows it, in a breaker turn; raises ActionFailed for any failure, a gone
        incident included (ProviderUnavailable when the breaker holds the call back).
        """
        try:
            with self._turn():
                return await self._api.show(incident_id)
        except (OutcomeUnknown, IncidentGone) as exc:
            raise ActionFailed(str(exc)) from exc

    async def open_incidents(self, status_page_id: str) -> list[IncidentView]:
        """The page's unresolved incidents, in a breaker turn; raises ProviderUnavailable or ActionFailed."""
        try:
            with self._turn():
                return await self._api.open_incidents(status_page_id)
        except (OutcomeUnknown, IncidentGone) as exc:
            raise ActionFailed(str(exc)) from exc

    async def read_back(self, published: PublishedGroup) -> PublishedGroup:
        """The group's record after reading its incident back, committed: a human's change or deletion becomes
        a takeover. Raises ActionFailed when the page cannot be read.
        """
        with self._turn():
            return (await self._read_back_view(published))[0]

    async def read_back_view(
        self, published: PublishedGroup, *, reset: AbstractSet[str] = frozenset()
    ) -> tuple[PublishedGroup, IncidentView | None]:
        """Read the incident back (a human's change is recorded as a takeover) and return what the
        page showed too (``None``: the incident is gone). ``reset``: components a maintenance
        completion has just set operational (see :func:`after_read_back`)."""
        with self._turn():
            return await self._read_back_view(published, reset)

    async def _read_back(self, published: PublishedGroup) -> PublishedGroup:
        return (await self._read_back_view(published))[0]

    async def _read_back_view(
        self, published: PublishedGroup, reset: AbstractSet[str] = frozenset()
    ) -> tuple[PublishedGroup, IncidentView | None]:
        assert published.incident_id is not None
        try:
            page = await self._api.show(published.incident_id)
        except IncidentGone:
            gone = replace(
                published, outcome_unknown=False, taken_over=True, taken_over_reason="deleted on the page"
            )
            await self._save(gone, "read_back", "drift", "incident no longer exists")
            return gone, None
        except OutcomeUnknown as exc:
            raise ActionFailed(str(exc)) from exc
        late_until = (
            published.unknown_since + self.late_write_window if published.unknown_since is not None else None
        )
        after = after_read_back(published, page, self._clock(), late_until=late_until, reset=reset)
        if after != published:
            outcome = "drift" if after.taken_over and not published.taken_over else "ok"
            await self._save(after, "read_back", outcome, after.taken_over_reason or "")
            if outcome == "drift":
                self._on_drift()
                log.warning(
                    "incident taken over by a human",
                    group=published.key,
                    incident_id=published.incident_id,
                    reason=after.taken_over_reason,
                )
        return after, page


class _Watched:
    """The page API with every call's outcome reported to the executor's breaker."""

    def __init__(self, api: PageAPI, executor: Executor) -> None:
        self._api = api
        self._executor = executor

    async def _watch(self, call: Awaitable[T]) -> T:
        try:
            result = await call
        except ActionFailed as exc:
            if exc.unavailable:
                self._executor._provider_failed(exc.retry_after)
            else:  # a 4xx: the provider is up and answered
                self._executor._provider_answered()
            raise
        except OutcomeUnknown:
            self._executor._provider_failed(None)
            raise
        except IncidentGone:
            self._executor._provider_answered()
            raise
        self._executor._provider_answered()
        return result

    async def create(self, action: CreateIncident) -> IncidentView:
        return await self._watch(self._api.create(action))

    async def update(self, action: UpdateIncident) -> None:
        await self._watch(self._api.update(action))

    async def rename(self, action: RenameIncident) -> None:
        await self._watch(self._api.rename(action))

    async def show(self, incident_id: str) -> IncidentView:
        return await self._watch(self._api.show(incident_id))

    async def open_incidents(self, status_page_id: str) -> list[IncidentView]:
        return await self._watch(self._api.open_incidents(status_page_id))

    async def create_maintenance(self, action: CreateMaintenance) -> MaintenanceView:
        return await self._watch(self._api.create_maintenance(action))

    async def move_maintenance(self, action: MoveMaintenance) -> None:
        await self._watch(self._api.move_maintenance(action))

    async def reschedule_maintenance(self, action: RescheduleMaintenance) -> None:
        await self._watch(self._api.reschedule_maintenance(action))

    async def announce_reschedule(self, action: RescheduleMaintenance) -> None:
        await self._watch(self._api.announce_reschedule(action))

    async def delete_maintenance(self, action: DeleteMaintenance) -> None:
        await self._watch(self._api.delete_maintenance(action))

    async def show_maintenance(self, maintenance_id: str) -> MaintenanceView:
        return await self._watch(self._api.show_maintenance(maintenance_id))

    def single_attempt(self) -> contextlib.AbstractContextManager[None]:
        return self._api.single_attempt()
