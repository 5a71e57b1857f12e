"""The store protocol: what every backend (SQLite now, PostgreSQL for HA) must provide.

The store is the only durable state of the bridge: alerts as received (committed before a webhook is
acknowledged), the published state of every incident group (committed with the outcome of the
action that changed it), and the action log. One contract test suite runs against every backend.

Alert identity: an instance is ``(source, fingerprint, starts_at)``. A series that fires again keeps
its fingerprint and gets a new ``starts_at``, so a late resolve of an old instance can never resolve
the new one. Resolved is terminal for an instance: a late repeat of its firing notification does not
reopen it.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bridge.domain import (
    ENDED_RESOLVED,
    ActionRecord,
    Alert,
    AlertStatus,
    ComponentStatus,
    GroupSettings,
    IncidentStatus,
    NotifyPolicy,
    PublishedGroup,
    Source,
    Timings,
)


class StoreError(Exception):
    """The store cannot be used (bad URL, unreachable, corrupt); the message says which."""


def refuse_newer_schema(applied: Iterable[int], known: Iterable[int], where: str) -> None:
    """Raise StoreError when ``applied`` holds a migration newer than every ``known`` one: the store
    was migrated by a newer statusbridge, and running on a schema this code does not know would
    corrupt it. ``where`` names the store in the message."""
    done, newest = max(applied, default=0), max(known, default=0)
    if done > newest:
        raise StoreError(
            f"store: {where} has schema version {done}, newer than this statusbridge knows "
            f"({newest}); run the newer version or restore a backup"
        )


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as the store holds it, with when it was first and last received and how many times."""

    alert: Alert
    first_received_at: datetime
    last_received_at: datetime
    receive_count: int


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What one delivery did: ``received`` counts the alerts given, duplicates included."""

    received: int
    changed: int
    """Instances that are new or changed status: what is worth waking the reconciler for."""


class Lease(Protocol):
    """Reconcile leadership. The holder of the current epoch is the one replica that publishes;
    the store fences every write of published state by that epoch, which the lease owns."""

    @property
    def epoch(self) -> int | None:
        """The epoch this process holds (``None``: not the leader)."""
        ...

    async def try_acquire(self) -> int | None:
        """Take the lease if it is free: the new epoch, or ``None`` while another holds it. Raises
        :class:`StoreError` when the store cannot be asked (the next attempt may succeed)."""
        ...

    async def release(self) -> None:
        """Give the lease up (on shutdown), so that another replica takes over at once."""
        ...


class HeldLease:
    """The lease of a store that one process owns (SQLite): always held, at epoch 0, never lost."""

    epoch: int | None = None

    async def try_acquire(self) -> int | None:
        """Always epoch 0: no other process can hold a single-process store's lease."""
        self.epoch = 0
        return 0

    async def release(self) -> None:
        """Not the leader until the next ``try_acquire``, which takes it again at once."""
        self.epoch = None


class Store(Protocol):
    """What every backend provides; ``StoreError`` (or, from PostgreSQL, asyncpg's own errors) when the
    database fails. Every write is committed when the call returns.
    """

    def lease(self, holder: str, *, on_lost: Callable[[], None]) -> Lease:
        """The reconcile lease; ``on_lost`` is called when a held lease is lost."""
        ...

    async def upsert_alerts(self, alerts: Sequence[Alert]) -> UpsertResult:
        """Record one delivery, committed before it returns. Resolved is terminal for an instance; an
        instance given twice keeps its last occurrence.
        """
        ...

    async def active_alerts(self, *, now: datetime, ttl: timedelta) -> list[Alert]:
        """Firing alerts received within ``ttl`` before ``now``, each series' latest instance only,
        suppressed ones included.
        """
        ...

    async def scan_active(
        self,
        *,
        now: datetime,
        ttl: timedelta,
        keep: Callable[[Alert], bool] | None = None,
        include_suppressed: bool = False,
    ) -> tuple[int, list[Alert]]:
        """How many alerts are active, and those of them ``keep`` wants (all without it). Rows are
        decoded a chunk at a time, so alerts no rule looks at never pile up in memory. Suppressed
        instances are active for the pull (``include_suppressed``), not for the page."""
        ...

    async def alert_endings(self, series: Sequence[str]) -> dict[str, str]:
        """``source:fingerprint`` -> how the series' latest instance stands: ``firing``,
        ``suppressed``, or how it ended (``resolved``, ``gone``); unknown series are left out."""
        ...

    async def list_alerts(self, *, include_resolved: bool = True, limit: int = 1000) -> list[StoredAlert]:
        """At most ``limit`` stored instances, most recently received first; only firing ones (suppressed
        included) without ``include_resolved``.
        """
        ...

    async def prune_alerts(self, *, resolved_before: datetime) -> int:
        """Delete resolved instances last received before ``resolved_before``; returns how many."""
        ...

    async def load_groups(self) -> dict[str, PublishedGroup]:
        """Every incident group's published state, by group key."""
        ...

    async def save_group(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        """Write a group's published state, and ``action`` in the same transaction. A store shared by
        replicas refuses it with StaleLeaderError once this process's lease epoch is no longer current.
        """
        ...

    async def action_log(self, *, group_key: str | None = None, limit: int = 100) -> list[ActionRecord]:
        """At most ``limit`` actions, newest first; only ``group_key``'s when given."""
        ...

    async def save_window(self, window_id: str, data: Mapping[str, Any]) -> None:
        """Create or replace a maintenance window's JSON-serializable record by id."""
        ...

    async def load_windows(self) -> dict[str, dict[str, Any]]:
        """Every maintenance window record, by id."""
        ...

    async def delete_window(self, window_id: str) -> bool:
        """Delete a maintenance window; ``False`` when there was none by that id."""
        ...

    async def save_group_unfenced(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        """``save_group`` without the lease check: an operator's change through any replica's admin API."""
        ...

    async def get_control(self, key: str) -> Any:
        """The JSON value last set under ``key``; ``None`` when never set (or set to ``None``)."""
        ...

    async def set_control(self, key: str, value: Any) -> None:
        """Set a JSON-serializable control value (pause, guard release), shared by every replica."""
        ...

    async def load_published_maintenances(self) -> dict[str, dict[str, Any]]:
        """What was published for each maintenance occurrence, by key."""
        ...

    async def save_published_maintenance(self, key: str, data: Mapping[str, Any]) -> None:
        """Create or replace what was published for one occurrence; fenced by the lease like
        ``save_group`` on a shared store.
        """
        ...

    async def ping(self) -> None:
        """Returns when the database answers; raises when it does not (readiness)."""
        ...

    async def size(self) -> int:
        """The bytes the store takes (SQLite: the file, its WAL and shared memory; PostgreSQL: the
        tables and indexes of its schema), for ``statusbridge_store_bytes``."""
        ...

    async def disk_free(self) -> float | None:
        """Free share (0 to 1) of the file system under the store, for ``/readyz``; ``None`` when the
        database is another machine's (PostgreSQL: watch its own disk), at no cost then."""
        ...

    async def close(self) -> None:
        """Close every connection, once deliveries already accepted are committed; unusable after."""
        ...


STORE_IDENTITY = "store_identity"
"""The ``control`` key of the store's random name (its migration says why it exists)."""


async def store_identity(store: Store) -> str:
    """This store's name for incident idempotency keys: random for a store created since the
    migration that added it, empty for one that held groups before (its keys stay as they were)."""
    value = await store.get_control(STORE_IDENTITY)
    return value if isinstance(value, str) else ""


# --- encoding shared by the backends -----------------------------------------------------------


# Alerts of one webhook share their receive time and mostly their start times, and a pass decodes
# the same few instants thousands of times: both conversions are memoized (bounded, pure).
@functools.lru_cache(maxsize=4096)
def ts(value: datetime) -> str:
    """Fixed-width UTC text: sorts like the instant it encodes."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@functools.lru_cache(maxsize=4096)
def parse_ts(value: str) -> datetime:
    """The aware UTC instant of a :func:`ts` text (any ISO 8601 with offset); ValueError for other text."""
    return datetime.fromisoformat(value).astimezone(UTC)


ALERT_COLUMNS = (
    "source, fingerprint, starts_at, status, ends_at, labels, annotations, generator_url, received_at, "
    "ended_by, suppressed_by"
)
ALERT_WIDTH = 11
"""How many of a row's leading columns :data:`ALERT_COLUMNS` names (the received counters follow)."""
"""The columns :func:`alert_row` fills and :func:`alert_from_row` reads, in that order."""


def active_alerts_sql(cutoff: str) -> str:
    """Firing alerts received since ``cutoff`` (a placeholder: ``?`` or ``$1``), each series' latest
    instance only: the read of every reconcile pass, the same on every backend."""
    return f"""
        SELECT {ALERT_COLUMNS} FROM alerts AS a
        WHERE a.status = 'firing' AND a.last_received_at >= {cutoff}
          AND a.starts_at = (SELECT MAX(b.starts_at) FROM alerts AS b
                             WHERE b.source = a.source AND b.fingerprint = a.fingerprint)
    """  # noqa: S608 (constants and a placeholder only)


SCAN_CHUNK = 500
"""Rows decoded at a time by :meth:`Store.scan_active`."""

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
"""One encoder for every row: ``json.dumps`` with options builds a new encoder per call."""


def alert_row(alert: Alert) -> tuple[Any, ...]:
    """The values of :data:`ALERT_COLUMNS` for ``alert``; a resolve without ``ended_by`` ends as resolved."""
    return (
        alert.source.value,
        alert.fingerprint,
        ts(alert.starts_at),
        alert.status.value,
        ts(alert.ends_at) if alert.ends_at else None,
        _CANONICAL.encode(dict(alert.labels)),
        _CANONICAL.encode(dict(alert.annotations)),
        alert.generator_url,
        ts(alert.received_at),
        alert.ended_by or (ENDED_RESOLVED if alert.status is AlertStatus.RESOLVED else None),
        alert.suppressed_by or None,
    )


ENDINGS_SQL = """
    SELECT source, fingerprint, status, ended_by, suppressed_by FROM alerts AS a
    WHERE a.source || ':' || a.fingerprint = ANY_PLACEHOLDER
      AND a.starts_at = (SELECT MAX(b.starts_at) FROM alerts AS b
                         WHERE b.source = a.source AND b.fingerprint = a.fingerprint)
"""


def ending(status: str, ended_by: str | None, suppressed_by: str | None) -> str:
    """How a series' latest instance stands, from its row: ``firing``, ``suppressed`` or how it ended."""
    if status == AlertStatus.FIRING.value:
        return "suppressed" if suppressed_by else "firing"
    # A row the previous release resolved carries no ending: it was a resolve it received.
    return ended_by or ENDED_RESOLVED


def _decode_map(text: str) -> dict[str, str]:
    # Label and annotation names are few and repeat in every alert: one copy of each (interned)
    # instead of one per alert. Values are left alone (instances, summaries: unbounded).
    return {sys.intern(k): v for k, v in json.loads(text).items()}


def alert_from_row(row: Sequence[Any]) -> Alert:
    """The alert of a row whose first :data:`ALERT_WIDTH` columns are :data:`ALERT_COLUMNS`."""
    source, fingerprint, starts_at, status, ends_at, labels, annotations, url, received = row[:9]
    ended_by, suppressed_by = row[9], row[10]
    return Alert(
        source=Source(source),
        fingerprint=fingerprint,
        labels=_decode_map(labels),
        annotations=_decode_map(annotations),
        status=AlertStatus(status),
        starts_at=parse_ts(starts_at),
        ends_at=parse_ts(ends_at) if ends_at else None,
        generator_url=url,
        received_at=parse_ts(received),
        ended_by=ended_by,
        suppressed_by=suppressed_by or "",
    )


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def settings_to_json(settings: GroupSettings | None) -> dict[str, Any] | None:
    """A group's rule settings as JSON (durations in seconds); ``None`` for none."""
    if settings is None:
        return None
    t = settings.timings
    return {
        "open_after": t.open_after.total_seconds(),
        "resolve_after": t.resolve_after.total_seconds(),
        "change_after": t.change_after.total_seconds(),
        "downgrade_after": _seconds(t.downgrade_after),
        "flap_threshold": t.flap_threshold,
        "flap_window": t.flap_window.total_seconds(),
        "notify": settings.notify.value,
        "resolved_message": settings.resolved_message,
        "intermittent_message": settings.intermittent_message,
    }


def settings_from_json(data: Mapping[str, Any] | None) -> GroupSettings | None:
    """The inverse of :func:`settings_to_json`: a missing key takes its default, no data is ``None``."""
    if not data:
        return None
    down = data.get("downgrade_after")
    return GroupSettings(
        timings=Timings(
            open_after=timedelta(seconds=data.get("open_after", 0)),
            resolve_after=timedelta(seconds=data.get("resolve_after", 300)),
            change_after=timedelta(seconds=data.get("change_after", 0)),
            downgrade_after=None if down is None else timedelta(seconds=down),
            flap_threshold=int(data.get("flap_threshold", 4)),
            flap_window=timedelta(seconds=data.get("flap_window", 600)),
        ),
        notify=NotifyPolicy(data.get("notify", NotifyPolicy.NEVER.value)),
        resolved_message=str(data.get("resolved_message", "")),
        intermittent_message=str(data.get("intermittent_message", "")),
    )


def group_to_json(group: PublishedGroup) -> str:
    """A group's published state as JSON text with sorted keys (times as :func:`ts` texts)."""
    # Field by field, not ``asdict``: its deep copy of every tuple cost more than the write itself
    # (every field is a scalar, a datetime, an enum or a tuple of them, converted below).
    data: dict[str, Any] = {f.name: getattr(group, f.name) for f in fields(group)}
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = ts(value)
    data["components"] = {k: v.value for k, v in group.components.items()}
    data["incident_status"] = group.incident_status.value if group.incident_status else None
    data["settings"] = settings_to_json(group.settings)
    data["flips"] = [ts(t) for t in group.flips]
    return json.dumps(data, sort_keys=True)


def group_from_json(text: str) -> PublishedGroup:
    """The inverse of :func:`group_to_json`: fields a newer release wrote are dropped, missing ones default."""
    data: dict[str, Any] = json.loads(text)
    for key in (
        "opened_at",
        "last_published_at",
        "monitoring_since",
        "pending_since",
        "flapping_since",
        "unknown_since",
        "recheck_at",
    ):
        if data.get(key):
            data[key] = parse_ts(data[key])
    data["components"] = {k: ComponentStatus(v) for k, v in (data.get("components") or {}).items()}
    if data.get("incident_status"):
        data["incident_status"] = IncidentStatus(data["incident_status"])
    # A record written before settings were kept has none: the built-in defaults apply to it.
    data["settings"] = settings_from_json(data.get("settings"))
    data["alerts"] = tuple(data.get("alerts") or ())
    data["flips"] = tuple(parse_ts(t) for t in data.get("flips") or ())
    data["sent"] = tuple(data.get("sent") or ())
    known = PublishedGroup.__dataclass_fields__
    return PublishedGroup(**{k: v for k, v in data.items() if k in known})


def action_from_row(row: Mapping[str, Any] | Sequence[Any]) -> ActionRecord:
    """The action of a row of ``group_key, action, outcome, at, incident_id, detail, epoch``."""
    group_key, action, outcome, at, incident_id, detail, epoch = tuple(row)
    return ActionRecord(
        group_key=group_key,
        action=action,
        outcome=outcome,
        at=parse_ts(at),
        incident_id=incident_id,
        detail=detail,
        epoch=epoch,
    )
