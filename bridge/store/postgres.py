"""The shared store for several replicas: PostgreSQL through asyncpg.

Same protocol and the same contract tests as the SQLite store. Migrations are applied under a
transaction-scoped advisory lock so that replicas starting together apply each one exactly once.
A ``?schema=NAME`` query parameter puts the tables in that schema (tests give each test its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from bridge import pacing
from bridge.domain import ActionRecord, Alert, PublishedGroup
from bridge.store.base import (
    ALERT_COLUMNS,
    ALERT_WIDTH,
    ENDINGS_SQL,
    SCAN_CHUNK,
    StoredAlert,
    StoreError,
    UpsertResult,
    action_from_row,
    active_alerts_sql,
    alert_from_row,
    alert_row,
    ending,
    group_from_json,
    group_to_json,
    parse_ts,
    refuse_newer_schema,
    ts,
)

ALERT_LOCK_CLASS = 0x5342_4141  # "SBAA": per-instance locks of concurrent upserts
MIGRATION_LOCK = 0x5354_4252  # "STBR": serialises migrations across replicas

UPSERT = f"""
INSERT INTO alerts AS a ({ALERT_COLUMNS}, first_received_at, last_received_at, receive_count)
SELECT * , 1 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
ON CONFLICT (source, fingerprint, starts_at) DO UPDATE SET
    status = CASE WHEN a.status = 'resolved' THEN 'resolved' ELSE excluded.status END,
    ends_at = CASE WHEN a.status = 'resolved' THEN a.ends_at ELSE excluded.ends_at END,
    ended_by = CASE WHEN a.status = 'resolved' THEN a.ended_by ELSE excluded.ended_by END,
    suppressed_by = CASE WHEN a.status = 'resolved' THEN a.suppressed_by ELSE excluded.suppressed_by END,
    labels = excluded.labels,
    annotations = excluded.annotations,
    generator_url = excluded.generator_url,
    received_at = excluded.received_at,
    last_received_at = excluded.last_received_at,
    receive_count = a.receive_count + 1
RETURNING source, fingerprint, starts_at, status, suppressed_by, (xmax = 0) AS inserted
"""  # noqa: S608 (a constant column list, no input)


def migrations() -> list[tuple[int, str]]:
    """The versioned PostgreSQL migrations shipped with the package (``NNNN_name.sql``), by version."""
    folder = resources.files("bridge.store") / "migrations" / "postgres"
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def _split_schema(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class StaleLeaderError(StoreError):
    """A write under a lease epoch that is no longer current: another replica leads now."""


LEASE_LOCK = 0x5354_4252_4C45  # "STBRLE": the reconcile leadership


def lease_lock(schema: str | None) -> int:
    """The advisory lock key of one installation's lease. Advisory locks are per database, not
    per schema: two installations in two schemas of one database must not share a leader. The
    default schema keeps the key earlier releases used, so their replicas and these agree."""
    if schema is None:
        return LEASE_LOCK
    digest = hashlib.blake2b(f"statusbridge lease:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore:
    """The store shared by replicas (HA). Writes of published state are fenced by the lease epoch in
    :attr:`epoch`; a stale leader's write raises StaleLeaderError.
    """

    def __init__(self, pool: asyncpg.Pool, schema: str | None, dsn: str) -> None:
        self._pool = pool
        self.schema = schema
        self._dsn = dsn
        self.epoch: int | None = None
        """The lease epoch this replica writes published state under (``None``: not the leader).
        Set only by this store's :class:`PostgresLease`, which owns it."""

    def lease(self, holder: str, *, on_lost: Callable[[], None]) -> PostgresLease:
        """A lease on a connection of its own; while held, its epoch fences this store's writes."""
        return PostgresLease(self._dsn, self.schema, holder, on_lost=on_lost, fence=self)

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Connect (creating the URL's ``?schema=`` if missing) and migrate; raises StoreError, whose
        message names the failure but not the URL.
        """
        dsn, schema = _split_schema(url)
        if schema is not None and not schema.replace("_", "").isalnum():
            raise StoreError("STATUSBRIDGE_STORE_URL: schema names are letters, digits and _")

        try:
            if schema is not None:
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                except asyncpg.UniqueViolationError:
                    pass  # another replica created it at the same instant
                finally:
                    await conn.close()
            # A startup parameter, not SET: the pool's RESET ALL between uses would undo a SET.
            settings = {"search_path": schema} if schema is not None else None
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8, server_settings=settings)
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            # from None: the URL holds the database password, and asyncpg's errors may quote it.
            raise StoreError(f"store: cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from None
        store = cls(pool, schema, dsn)
        try:
            await store.migrate()
        except BaseException:
            await store.close()  # a refused or failed migration leaves no connection open
            raise
        return store

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, under an advisory lock so that replicas starting together
        apply each once; returns the versions applied. A schema migrated by a newer statusbridge is
        refused (StoreError), as on SQLite.
        """
        applied = []
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            known = migrations()
            refuse_newer_schema(done, (v for v, _ in known), "the PostgreSQL store")
            for version, sql in known:
                if version in done:
                    continue
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied.append(version)
        return applied

    async def schema_version(self) -> int:
        """The newest migration applied, 0 for none."""
        return int(await self._pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def upsert_alerts(self, alerts: Sequence[Alert]) -> UpsertResult:
        """Store.upsert_alerts in one transaction; concurrent deliveries of the same instances are
        serialized by advisory locks, so each change is counted once.
        """
        if not alerts:
            return UpsertResult(0, 0)
        # One row per instance: a payload that repeats an instance keeps its last occurrence.
        rows = {}
        for a in alerts:
            received = ts(a.received_at)
            row = (*alert_row(a), received, received)
            rows[row[:3]] = row
        columns = list(zip(*rows.values(), strict=True))
        async with self._pool.acquire() as conn, conn.transaction():
            # Replicas and retries deliver the same instances at the same time. Lock the instances
            # (sorted, so two deliveries cannot deadlock) before reading their status, or both would
            # read "absent" and both report the instance as new. The (int, int) key space of these
            # locks never overlaps the bigint one of the lease and migration locks.
            await conn.execute(
                "SELECT pg_advisory_xact_lock($4, k) FROM (SELECT DISTINCT hashtext(s || chr(31) || f "
                "|| chr(31) || t) AS k FROM unnest($1::text[], $2::text[], $3::text[]) AS u(s, f, t)) "
                "AS keys ORDER BY k",
                list(columns[0]),
                list(columns[1]),
                list(columns[2]),
                ALERT_LOCK_CLASS,
            )
            before = {
                (r["source"], r["fingerprint"], r["starts_at"]): (r["status"], r["suppressed_by"])
                for r in await conn.fetch(
                    "SELECT source, fingerprint, starts_at, status, suppressed_by FROM alerts "
                    "WHERE (source, fingerprint, starts_at) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))",
                    list(columns[0]),
                    list(columns[1]),
                    list(columns[2]),
                )
            }
            result = await conn.fetch(UPSERT, *[list(c) for c in columns])
        changed = sum(
            1
            for r in result
            if before.get((r["source"], r["fingerprint"], r["starts_at"]))
            != (r["status"], r["suppressed_by"])
        )
        return UpsertResult(received=len(alerts), changed=changed)

    async def active_alerts(self, *, now: datetime, ttl: timedelta) -> list[Alert]:
        """Firing alerts received within ``ttl`` before ``now``, each series' latest instance."""
        return (await self.scan_active(now=now, ttl=ttl, include_suppressed=True))[1]

    async def alert_endings(self, series: Sequence[str]) -> dict[str, str]:
        """Store.alert_endings, in one query."""
        sql = ENDINGS_SQL.replace("ANY_PLACEHOLDER", "ANY($1::text[])")
        rows = await self._pool.fetch(sql, list(dict.fromkeys(series)))
        return {f"{r[0]}:{r[1]}": ending(r[2], r[3], r[4]) for r in rows}

    async def scan_active(
        self,
        *,
        now: datetime,
        ttl: timedelta,
        keep: Callable[[Alert], bool] | None = None,
        include_suppressed: bool = False,
    ) -> tuple[int, list[Alert]]:
        """Store.scan_active, through a server-side cursor of SCAN_CHUNK rows in one transaction."""
        count, kept = 0, []
        async with self._pool.acquire() as conn, conn.transaction():
            cursor = conn.cursor(
                active_alerts_sql("$1"),
                ts(now - ttl),
                prefetch=SCAN_CHUNK,
            )
            async for record in cursor:
                alert = alert_from_row(tuple(record))
                if alert.suppressed_by and not include_suppressed:
                    continue
                count += 1
                if keep is None or keep(alert):
                    kept.append(alert)
        return count, kept

    async def list_alerts(self, *, include_resolved: bool = True, limit: int = 1000) -> list[StoredAlert]:
        """At most ``limit`` instances, most recently received first (Store.list_alerts)."""
        where = "" if include_resolved else "WHERE status = 'firing'"
        rows = await self._pool.fetch(
            f"SELECT {ALERT_COLUMNS}, first_received_at, last_received_at, receive_count FROM alerts {where} "  # noqa: S608
            "ORDER BY last_received_at DESC LIMIT $1",
            limit,
        )
        return [
            StoredAlert(
                alert_from_row(tuple(r)),
                parse_ts(r[ALERT_WIDTH]),
                parse_ts(r[ALERT_WIDTH + 1]),
                int(r[ALERT_WIDTH + 2]),
            )
            for r in rows
        ]

    async def prune_alerts(self, *, resolved_before: datetime) -> int:
        """Delete resolved instances last received before ``resolved_before``; returns how many."""
        status = await self._pool.execute(
            "DELETE FROM alerts WHERE status = 'resolved' AND last_received_at < $1", ts(resolved_before)
        )
        return int(status.split()[-1])

    async def load_groups(self) -> dict[str, PublishedGroup]:
        """Every group's published state, by key."""
        rows = await self._pool.fetch("SELECT data FROM incident_groups")
        return {g.key: g for g in (group_from_json(r["data"]) for r in rows)}

    async def save_group(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        """Store.save_group; raises StaleLeaderError when :attr:`epoch` is not the current lease epoch."""
        await self._save_group(group, action, fenced=True)

    async def save_group_unfenced(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        """An operator's change through the admin API of any replica (not a publication)."""
        await self._save_group(group, action, fenced=False)

    async def _save_group(self, group: PublishedGroup, action: ActionRecord | None, *, fenced: bool) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if fenced:
                # The epoch row is share-locked for the transaction, so a new leader's bump waits
                # for this write to commit, and every write after the bump sees the new epoch.
                current = await conn.fetchval("SELECT epoch FROM lease WHERE id = 1 FOR SHARE")
                if current is not None and current != self.epoch:
                    raise StaleLeaderError(
                        f"refusing to write group {group.key!r}: lease epoch {self.epoch} is stale (current {current})"
                    )
            await conn.execute(
                "INSERT INTO incident_groups (key, data, updated_at) VALUES ($1, $2, now()) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                group.key,
                group_to_json(group),
            )
            if action is not None:
                await conn.execute(
                    "INSERT INTO action_log (group_key, action, outcome, at, incident_id, detail, epoch) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    action.group_key,
                    action.action,
                    action.outcome,
                    ts(action.at),
                    action.incident_id,
                    action.detail,
                    action.epoch,
                )

    async def action_log(self, *, group_key: str | None = None, limit: int = 100) -> list[ActionRecord]:
        """At most ``limit`` actions, newest first; only ``group_key``'s when given."""
        sql = "SELECT group_key, action, outcome, at, incident_id, detail, epoch FROM action_log"
        args: list[Any] = []
        if group_key is not None:
            sql += " WHERE group_key = $1"
            args.append(group_key)
        sql += f" ORDER BY id DESC LIMIT ${len(args) + 1}"
        args.append(limit)
        return [action_from_row(tuple(r)) for r in await self._pool.fetch(sql, *args)]

    async def save_window(self, window_id: str, data: Mapping[str, Any]) -> None:
        """Store.save_window (not fenced: windows are operators' data, not publications)."""
        await self._pool.execute(
            "INSERT INTO maintenance_windows (id, data, updated_at) VALUES ($1, $2, now()) "
            "ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            window_id,
            json.dumps(dict(data), sort_keys=True),
        )

    async def load_windows(self) -> dict[str, dict[str, Any]]:
        """Store.load_windows, ordered by id."""
        rows = await self._pool.fetch("SELECT id, data FROM maintenance_windows ORDER BY id")
        return {r["id"]: json.loads(r["data"]) for r in rows}

    async def delete_window(self, window_id: str) -> bool:
        """Delete a window record; ``False`` when none had that id."""
        status = await self._pool.execute("DELETE FROM maintenance_windows WHERE id = $1", window_id)
        return bool(int(status.split()[-1]))

    async def get_control(self, key: str) -> Any:
        """The JSON value under ``key``; ``None`` when unset."""
        value = await self._pool.fetchval("SELECT value FROM control WHERE key = $1", key)
        return None if value is None else json.loads(value)

    async def set_control(self, key: str, value: Any) -> None:
        """Set a control value, JSON-encoded, for every replica at once."""
        await self._pool.execute(
            "INSERT INTO control (key, value, updated_at) VALUES ($1, $2, now()) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            key,
            json.dumps(value),
        )

    async def load_published_maintenances(self) -> dict[str, dict[str, Any]]:
        """What was published per maintenance occurrence, by key."""
        rows = await self._pool.fetch("SELECT key, data FROM published_maintenances")
        return {r["key"]: json.loads(r["data"]) for r in rows}

    async def save_published_maintenance(self, key: str, data: Mapping[str, Any]) -> None:
        """Store.save_published_maintenance; raises StaleLeaderError when :attr:`epoch` is stale."""
        async with self._pool.acquire() as conn, conn.transaction():
            current = await conn.fetchval("SELECT epoch FROM lease WHERE id = 1 FOR SHARE")
            if current is not None and current != self.epoch:
                raise StaleLeaderError(
                    f"refusing to write maintenance {key!r}: lease epoch {self.epoch} is stale"
                )
            await conn.execute(
                "INSERT INTO published_maintenances (key, data, updated_at) VALUES ($1, $2, now()) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                key,
                json.dumps(dict(data), sort_keys=True),
            )

    async def lease_epoch(self) -> int | None:
        """The current lease epoch in the database, whoever holds it; ``None`` before any was taken."""
        value = await self._pool.fetchval("SELECT epoch FROM lease WHERE id = 1")
        return None if value is None else int(value)

    async def ping(self) -> None:
        """Store.ping: one ``SELECT 1`` through the pool."""
        await self._pool.fetchval("SELECT 1")

    async def size(self) -> int:
        """Store.size: the tables of the store's schema with their indexes and TOAST."""
        total = await self._pool.fetchval(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        )
        return int(total)

    async def disk_free(self) -> float | None:
        """Store.disk_free: unknown here, the disk is the database server's."""
        return None

    async def close(self) -> None:
        """Close the pool (the lease's own connection is closed by releasing the lease)."""
        await self._pool.close()


class PostgresLease:
    """Reconcile leadership: a session advisory lock held on a dedicated connection.

    The lock lives exactly as long as that connection: when the leader dies or its session is
    terminated, PostgreSQL releases it and another replica's next attempt wins. The holder checks
    its connection every ``check_interval`` and calls ``on_lost`` at the first sign of trouble, so
    it stops writing at once; the epoch check in every write (see ``save_group``) covers the gap.
    """

    def __init__(
        self,
        dsn: str,
        schema: str | None,
        holder: str,
        *,
        on_lost: Callable[[], None],
        check_interval: float = pacing.LEASE_CHECK,
        fence: PostgresStore | None = None,
    ) -> None:
        """``fence``: the store whose writes this lease's epoch fences (set on acquire, cleared
        the moment the lease is lost or released)."""
        self._fence = fence
        self._dsn = dsn
        self._schema = schema
        self.holder = holder
        self._on_lost = on_lost
        self._check_interval = check_interval
        self._conn: asyncpg.Connection | None = None
        self._monitor: asyncio.Task[None] | None = None
        self.epoch: int | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lease now; ``False`` from the moment it is lost or released."""
        return self._conn is not None and self.epoch is not None

    async def try_acquire(self) -> int | None:
        """Take the lease if it is free; returns the new epoch, or ``None`` when another holds it.
        Raises :class:`StoreError` when PostgreSQL cannot be asked."""
        try:
            return await self._try_acquire()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"store: the reconcile lease could not be asked for: {exc}") from exc

    def _set_epoch(self, epoch: int | None) -> None:
        self.epoch = epoch
        if self._fence is not None:
            self._fence.epoch = epoch

    async def _try_acquire(self) -> int | None:
        settings = {"search_path": self._schema} if self._schema is not None else None
        conn = await asyncpg.connect(self._dsn, server_settings=settings)
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lease_lock(self._schema)):
                await conn.close()
                return None
            epoch = await conn.fetchval(
                "INSERT INTO lease (id, epoch, holder) VALUES (1, 1, $1) "
                "ON CONFLICT (id) DO UPDATE SET epoch = lease.epoch + 1, holder = excluded.holder, acquired_at = now() "
                "RETURNING epoch",
                self.holder,
            )
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._set_epoch(int(epoch))
        conn.add_termination_listener(lambda _conn: self._lose("lease connection closed"))
        self._monitor = asyncio.create_task(self._watch())
        return self.epoch

    async def _watch(self) -> None:
        while self._conn is not None:
            await asyncio.sleep(self._check_interval)
            conn = self._conn
            if conn is None:
                return
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=max(1.0, self._check_interval * 2))
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self._lose("lease connection unhealthy")
                return

    def _lose(self, _why: str) -> None:
        if self.epoch is None:
            return
        # Stop writing at once; the epoch check in every write fences what is already in flight.
        self._set_epoch(None)
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()
        self._on_lost()

    async def release(self) -> None:
        """Give the lease up: the epoch is cleared first, then the lock's connection closed, which frees
        the lock for another replica; a connection already dead is not an error.
        """
        monitor, self._monitor = self._monitor, None
        conn, self._conn = self._conn, None
        self._set_epoch(None)
        if monitor is not None:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await conn.close()
