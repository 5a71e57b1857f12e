"""The embedded store: one SQLite file in WAL mode.

Durability: every webhook's alerts are one transaction, committed before the webhook is answered.
WAL with ``synchronous=NORMAL`` makes a committed transaction survive the *process* dying at any
instant (SIGKILL, OOM): the WAL is written before COMMIT returns, and only an OS crash or power loss
may lose the last transactions (``STATUSBRIDGE_STORE_URL=sqlite:///…?synchronous=full`` closes that
too, at a cost in ingest rate).

Two connections. The writer runs one transaction at a time (an asyncio lock), so transactions never
interleave. Reads go through a second, read-only connection: in WAL mode each read sees the last
committed state, never the inside of a transaction still running on the writer (sharing one
connection would let a read queued between BEGIN and COMMIT see rows that a ROLLBACK then removes).
Every ``sqlite3`` failure leaves this module as a :class:`StoreError`, which ingest answers with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bridge.domain import ActionRecord, Alert, PublishedGroup
from bridge.store.base import (
    ALERT_COLUMNS,
    ALERT_WIDTH,
    ENDINGS_SQL,
    SCAN_CHUNK,
    HeldLease,
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

UPSERT = f"""
INSERT INTO alerts ({ALERT_COLUMNS}, first_received_at, last_received_at, receive_count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (source, fingerprint, starts_at) DO UPDATE SET
    status = CASE WHEN alerts.status = 'resolved' THEN 'resolved' ELSE excluded.status END,
    ends_at = CASE WHEN alerts.status = 'resolved' THEN alerts.ends_at ELSE excluded.ends_at END,
    ended_by = CASE WHEN alerts.status = 'resolved' THEN alerts.ended_by ELSE excluded.ended_by END,
    suppressed_by = CASE WHEN alerts.status = 'resolved' THEN alerts.suppressed_by ELSE excluded.suppressed_by END,
    labels = excluded.labels,
    annotations = excluded.annotations,
    generator_url = excluded.generator_url,
    received_at = excluded.received_at,
    last_received_at = excluded.last_received_at,
    receive_count = alerts.receive_count + 1
"""  # noqa: S608 (a constant column list, no input)


def migrations() -> list[tuple[int, str]]:
    """The versioned migrations shipped with the package: ``NNNN_name.sql``, applied in order."""
    folder = resources.files("bridge.store") / "migrations" / "sqlite"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(script: str) -> list[str]:
    """``script`` split into statements the way SQLite reads them (a ``;`` in a string, a comment or a
    trigger body does not end one)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in current.splitlines()
    ):
        raise StoreError(f"store: migration ends with an incomplete statement: {current.strip()[:80]!r}")
    return out


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


class SQLiteStore:
    """The embedded store: one writer connection (deliveries group-committed) and one query-only reader
    on a WAL file. One process only: its lease is a HeldLease.
    """

    def __init__(self, db: aiosqlite.Connection, reader: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self._reader = reader
        self.path = path
        self._write = asyncio.Lock()
        self._pending: list[tuple[list[tuple[Any, ...]], asyncio.Future[UpsertResult]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str, *, synchronous: str = "NORMAL") -> SQLiteStore:
        """Open (creating) and migrate the database file; raises StoreError for ``:memory:``, a path it
        cannot use, or a database it cannot open or migrate.
        """
        if path == ":memory:" or path.startswith("file:"):
            raise StoreError(
                "store: an in-memory database loses every alert on restart; name a file "
                "(sqlite:///relative.db or sqlite:////absolute/path.db)"
            )
        _check_path(Path(path))
        opened: list[aiosqlite.Connection] = []
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
            opened.append(db)
            await _configure_writer(db, path, synchronous)
            store = cls(db, db, path)
            await store.migrate()
            reader = await aiosqlite.connect(path, isolation_level=None)
            opened.append(reader)
            await reader.execute("PRAGMA busy_timeout=5000")
            await reader.execute("PRAGMA query_only=ON")
            store._reader = reader
        except (sqlite3.Error, OSError, StoreError) as exc:
            for conn in opened:
                with contextlib.suppress(sqlite3.Error):
                    await conn.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"store: cannot open SQLite database {path}: {exc}") from exc
        return store

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One writer transaction: committed when the block ends, rolled back if it raises."""
        async with self._write:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    await self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            await self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"store: {self.path}: {exc}") from exc

    async def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            async with self._reader.execute(sql, tuple(params)) as cur:
                return list(await cur.fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"store: {self.path}: {exc}") from exc

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, each in its own transaction; returns their versions.

        An applied migration whose file has changed since, or a database migrated by a newer
        statusbridge, is refused: running on a schema this code does not know would corrupt it.
        """
        applied: list[int] = []
        known = migrations()
        async with self._transaction() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, checksum TEXT)"
            )
            columns = {row[1] for row in await _all(db, "PRAGMA table_info(schema_migrations)")}
            if "checksum" not in columns:  # bookkeeping written before checksums were recorded
                await db.execute("ALTER TABLE schema_migrations ADD COLUMN checksum TEXT")
            done = {
                int(r[0]): r[1] for r in await _all(db, "SELECT version, checksum FROM schema_migrations")
            }
        refuse_newer_schema(done, (v for v, _ in known), str(self.path))
        for version, sql in known:
            checksum = _checksum(sql)
            if version in done:
                if done[version] not in (None, checksum):
                    raise StoreError(
                        f"store: migration {version:04d} changed after it was applied to {self.path}"
                    )
                continue
            async with self._transaction() as db:
                for statement in statements(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, applied_at, checksum) "
                    "VALUES (?, datetime('now'), ?)",
                    (version, checksum),
                )
            applied.append(version)
        return applied

    async def schema_version(self) -> int:
        """The newest migration applied, 0 for none."""
        rows = await self._read("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    # --- alerts --------------------------------------------------------------------------------

    async def upsert_alerts(self, alerts: Sequence[Alert]) -> UpsertResult:
        """Store one delivery; answers once it is committed.

        Group commit: deliveries that arrive while a transaction is running wait for it and are
        then written together, in arrival order, in one transaction. A storm's concurrent
        webhooks cost one commit per round instead of one each, and the event loop parses the
        next requests while SQLite (which releases the GIL) writes the current round.
        """
        if not alerts:
            return UpsertResult(0, 0)
        rows = []
        for a in alerts:
            received = ts(a.received_at)
            rows.append((*alert_row(a), received, received))
        done: asyncio.Future[UpsertResult] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, done))
        if self._flusher is None or self._flusher.done():
            # A task of its own: a caller cancelled mid-write must not strand the others' rows.
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._pending:
            round_, self._pending = self._pending, []
            try:
                results = await self._upsert_rounds([rows for rows, _ in round_])
            except Exception as exc:  # noqa: BLE001 (handed to the callers: the round was rolled back)
                if len(round_) == 1:
                    _settle(round_[0][1], exc)
                    continue
                # One delivery's failure must not fail the others: each is written on its own.
                for rows, done in round_:
                    try:
                        (result,) = await self._upsert_rounds([rows])
                    except Exception as one:  # noqa: BLE001 (handed to its caller)
                        _settle(done, one)
                    else:
                        _settle(done, result)
            else:
                for (_, done), result in zip(round_, results, strict=True):
                    _settle(done, result)

    async def _upsert_rounds(self, deliveries: list[list[tuple[Any, ...]]]) -> list[UpsertResult]:
        keys = [[(r[0], r[1], r[2]) for r in rows] for rows in deliveries]
        async with self._transaction() as db:
            state = await self._statuses([k for ks in keys for k in ks])
            await db.executemany(UPSERT, [r for rows in deliveries for r in rows])
        # What UPSERT leaves is derivable from what was there: resolved is terminal, otherwise the
        # last delivery of the instance wins. No second read on the webhook's hot path.
        results = []
        for rows, ks in zip(deliveries, keys, strict=True):
            before = {k: state.get(k) for k in ks}
            for key, row in zip(ks, rows, strict=True):
                if (state.get(key) or ("",))[0] != "resolved":
                    state[key] = (row[3], row[10])
            changed = sum(1 for k in before if before[k] != state[k])
            results.append(UpsertResult(received=len(rows), changed=changed))
        return results

    async def _statuses(
        self, keys: list[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], tuple[str, str | None]]:
        """(status, suppressed_by) of each instance that exists."""
        out: dict[tuple[str, str, str], tuple[str, str | None]] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 300):
            chunk = unique[i : i + 300]
            where = " OR ".join("(source = ? AND fingerprint = ? AND starts_at = ?)" for _ in chunk)
            params = [p for k in chunk for p in k]
            async with self._db.execute(
                f"SELECT source, fingerprint, starts_at, status, suppressed_by FROM alerts WHERE {where}",  # noqa: S608 (placeholders only)
                params,
            ) as cur:
                for row in await cur.fetchall():
                    out[(row[0], row[1], row[2])] = (row[3], row[4])
        return out

    async def active_alerts(self, *, now: datetime, ttl: timedelta) -> list[Alert]:
        """Firing alerts received within ``ttl`` before ``now``, each series' latest instance."""
        return (await self.scan_active(now=now, ttl=ttl, include_suppressed=True))[1]

    async def scan_active(
        self,
        *,
        now: datetime,
        ttl: timedelta,
        keep: Callable[[Alert], bool] | None = None,
        include_suppressed: bool = False,
    ) -> tuple[int, list[Alert]]:
        """Store.scan_active, on the reader connection, SCAN_CHUNK rows at a time."""
        cutoff = ts(now - ttl)
        count, kept = 0, []
        try:
            async with self._reader.execute(active_alerts_sql("?"), (cutoff,)) as cur:
                while rows := list(await cur.fetchmany(SCAN_CHUNK)):
                    for alert in map(alert_from_row, rows):
                        if alert.suppressed_by and not include_suppressed:
                            continue
                        count += 1
                        if keep is None or keep(alert):
                            kept.append(alert)
        except sqlite3.Error as exc:
            raise StoreError(f"store: {self.path}: {exc}") from exc
        return count, kept

    async def alert_endings(self, series: Sequence[str]) -> dict[str, str]:
        """Store.alert_endings, 300 series per query (SQLite's parameter limit)."""
        out: dict[str, str] = {}
        wanted = list(dict.fromkeys(series))
        for i in range(0, len(wanted), 300):
            chunk = wanted[i : i + 300]
            sql = ENDINGS_SQL.replace("= ANY_PLACEHOLDER", f"IN ({', '.join('?' for _ in chunk)})")
            for row in await _all_params(self._reader, sql, chunk):
                out[f"{row[0]}:{row[1]}"] = ending(row[2], row[3], row[4])
        return out

    async def list_alerts(self, *, include_resolved: bool = True, limit: int = 1000) -> list[StoredAlert]:
        """Store.list_alerts; ties in receive time are ordered by instance, so the order is stable."""
        where = "" if include_resolved else "WHERE status = 'firing'"
        sql = (
            f"SELECT {ALERT_COLUMNS}, first_received_at, last_received_at, receive_count FROM alerts {where} "  # noqa: S608
            "ORDER BY last_received_at DESC, source, fingerprint, starts_at DESC LIMIT ?"
        )
        rows = await self._read(sql, (limit,))
        return [
            StoredAlert(
                alert_from_row(r),
                parse_ts(r[ALERT_WIDTH]),
                parse_ts(r[ALERT_WIDTH + 1]),
                int(r[ALERT_WIDTH + 2]),
            )
            for r in rows
        ]

    async def prune_alerts(self, *, resolved_before: datetime) -> int:
        """Delete resolved instances last received before ``resolved_before``; returns how many."""
        async with self._transaction() as db:
            cur = await db.execute(
                "DELETE FROM alerts WHERE status = 'resolved' AND last_received_at < ?",
                (ts(resolved_before),),
            )
            return cur.rowcount

    # --- groups and the action log -------------------------------------------------------------

    async def load_groups(self) -> dict[str, PublishedGroup]:
        """Every group's published state, by key."""
        rows = await self._read("SELECT data FROM incident_groups")
        return {g.key: g for g in (group_from_json(r[0]) for r in rows)}

    async def save_group(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        """Store.save_group; never fenced: only one process opens the file."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO incident_groups (key, data, updated_at) VALUES (?, ?, datetime('now')) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                (group.key, group_to_json(group)),
            )
            if action is not None:
                await db.execute(
                    "INSERT INTO action_log (group_key, action, outcome, at, incident_id, detail, epoch) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        action.group_key,
                        action.action,
                        action.outcome,
                        ts(action.at),
                        action.incident_id,
                        action.detail,
                        action.epoch,
                    ),
                )

    async def action_log(self, *, group_key: str | None = None, limit: int = 100) -> list[ActionRecord]:
        """At most ``limit`` actions, newest first; only ``group_key``'s when given."""
        sql = "SELECT group_key, action, outcome, at, incident_id, detail, epoch FROM action_log"
        params: list[Any] = []
        if group_key is not None:
            sql += " WHERE group_key = ?"
            params.append(group_key)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [action_from_row(r) for r in await self._read(sql, params)]

    # --- maintenance windows --------------------------------------------------------------------

    async def save_window(self, window_id: str, data: Mapping[str, Any]) -> None:
        """Create or replace a window record by id, in its own transaction."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO maintenance_windows (id, data, updated_at) VALUES (?, ?, datetime('now')) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                (window_id, json.dumps(dict(data), sort_keys=True)),
            )

    async def load_windows(self) -> dict[str, dict[str, Any]]:
        """Store.load_windows, ordered by id."""
        rows = await self._read("SELECT id, data FROM maintenance_windows ORDER BY id")
        return {row[0]: json.loads(row[1]) for row in rows}

    async def delete_window(self, window_id: str) -> bool:
        """Delete a window record; ``False`` when none had that id."""
        async with self._transaction() as db:
            cur = await db.execute("DELETE FROM maintenance_windows WHERE id = ?", (window_id,))
            return cur.rowcount > 0

    async def get_control(self, key: str) -> Any:
        """The JSON value under ``key``; ``None`` when unset."""
        rows = await self._read("SELECT value FROM control WHERE key = ?", (key,))
        return None if not rows else json.loads(rows[0][0])

    async def set_control(self, key: str, value: Any) -> None:
        """Set a control value, JSON-encoded, in its own transaction."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO control (key, value, updated_at) VALUES (?, ?, datetime('now')) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, json.dumps(value)),
            )

    async def save_group_unfenced(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        """An operator's change (admin API): SQLite has one writer, so it is an ordinary save."""
        await self.save_group(group, action=action)

    async def load_published_maintenances(self) -> dict[str, dict[str, Any]]:
        """What was published per maintenance occurrence, by key."""
        rows = await self._read("SELECT key, data FROM published_maintenances")
        return {row[0]: json.loads(row[1]) for row in rows}

    async def save_published_maintenance(self, key: str, data: Mapping[str, Any]) -> None:
        """Store.save_published_maintenance (unfenced, as ``save_group``)."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO published_maintenances (key, data, updated_at) VALUES (?, ?, datetime('now')) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                (key, json.dumps(dict(data), sort_keys=True)),
            )

    def lease(self, holder: str, *, on_lost: Callable[[], None]) -> HeldLease:
        """One process owns a SQLite file (a second opener fails): it always leads."""
        del holder, on_lost  # nobody else can hold it, so it is never lost
        return HeldLease()

    async def ping(self) -> None:
        """Store.ping: one ``SELECT 1`` on the reader."""
        await self._read("SELECT 1")

    async def size(self) -> int:
        """Store.size: the database file, its WAL and shared memory."""
        path = Path(self.path)
        total = 0
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                total += file.stat().st_size
        return total

    async def disk_free(self) -> float | None:
        """Store.disk_free: the free share of the file system holding the database file."""
        usage = shutil.disk_usage(Path(self.path).parent)
        return usage.free / usage.total if usage.total else None

    async def close(self) -> None:
        """Store.close: pending deliveries are written and a transaction in flight ends first."""
        # Deliveries already accepted are written first; then taking the writer lock lets a
        # transaction in flight finish (commit or roll back).
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        async with self._write:
            await self._reader.close()
            await self._db.close()


def _settle(done: asyncio.Future[UpsertResult], outcome: UpsertResult | Exception) -> None:
    if done.done():  # its caller went away (cancelled); the write stands regardless
        return
    if isinstance(outcome, Exception):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def _check_path(file: Path) -> None:
    if not file.parent.is_dir():
        raise StoreError(f"store: directory {file.parent} does not exist")
    if file.is_dir():
        raise StoreError(f"store: {file} is a directory, not a database file")


async def _configure_writer(db: aiosqlite.Connection, path: str, synchronous: str) -> None:
    mode = await _one(db, "PRAGMA journal_mode=WAL")
    if str(mode).lower() != "wal":
        # Without WAL a reader blocks the writer, and the durability argument above does not hold.
        raise StoreError(f"store: {path} cannot use WAL mode (journal_mode={mode})")
    await db.execute(f"PRAGMA synchronous={synchronous}")
    await db.execute("PRAGMA busy_timeout=5000")
    await db.execute("PRAGMA foreign_keys=ON")


async def _all_params(db: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
    async with db.execute(sql, params) as cur:
        return list(await cur.fetchall())


async def _all(db: aiosqlite.Connection, sql: str) -> list[sqlite3.Row]:
    async with db.execute(sql) as cur:
        return list(await cur.fetchall())


async def _one(db: aiosqlite.Connection, sql: str) -> Any:
    rows = await _all(db, sql)
    return rows[0][0] if rows else None
