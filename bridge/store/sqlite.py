"""The embedded store: one SQLite file in WAL mode.

Durability: every webhook's alerts are one transaction, committed before the webhook is answered.
WAL with ``synchronous=NORMAL`` makes a committed transaction survive the *process* dying at any
instant (SIGKILL, OOM): the WAL is written before COMMIT returns, and only an OS crash or power loss
may lose the last transactions (``STATUSBRIDGE_STORE_URL=sqlite:///…?synchronous=full`` closes that
too, at a cost in ingest rate).

One connection, one writer at a time (an asyncio lock), so transactions never interleave; reads go
through the same connection, which SQLite serves from a consistent snapshot.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bridge.domain import ActionRecord, Alert, PublishedGroup
from bridge.store.base import (
    StoredAlert,
    StoreError,
    UpsertResult,
    action_from_row,
    alert_from_row,
    alert_row,
    group_from_json,
    group_to_json,
    parse_ts,
    ts,
)

ALERT_COLUMNS = (
    "source, fingerprint, starts_at, status, ends_at, labels, annotations, generator_url, received_at"
)

UPSERT = f"""
INSERT INTO alerts ({ALERT_COLUMNS}, first_received_at, last_received_at, receive_count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (source, fingerprint, starts_at) DO UPDATE SET
    status = CASE WHEN alerts.status = 'resolved' THEN 'resolved' ELSE excluded.status END,
    ends_at = CASE WHEN alerts.status = 'resolved' THEN alerts.ends_at ELSE excluded.ends_at END,
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


class SQLiteStore:
    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self.path = path
        self._write = asyncio.Lock()

    @classmethod
    async def open(cls, path: str, *, synchronous: str = "NORMAL") -> SQLiteStore:
        if path != ":memory:":
            parent = Path(path).parent
            if not parent.is_dir():
                raise StoreError(f"store: directory {parent} does not exist")
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={synchronous}")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"store: cannot open SQLite database {path}: {exc}") from None
        store = cls(db, path)
        await store.migrate()
        return store

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, each in its own transaction; returns their versions."""
        applied: list[int] = []
        async with self._write:
            await self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            async with self._db.execute("SELECT version FROM schema_migrations") as cur:
                done = {row[0] for row in await cur.fetchall()}
            for version, sql in migrations():
                if version in done:
                    continue
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in filter(str.strip, sql.split(";")):
                        await self._db.execute(statement)
                    await self._db.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, datetime('now'))",
                        (version,),
                    )
                    await self._db.execute("COMMIT")
                except Exception:
                    await self._db.execute("ROLLBACK")
                    raise
                applied.append(version)
        return applied

    async def schema_version(self) -> int:
        async with self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # --- alerts --------------------------------------------------------------------------------

    async def upsert_alerts(self, alerts: Sequence[Alert]) -> UpsertResult:
        if not alerts:
            return UpsertResult(0, 0)
        rows = []
        for a in alerts:
            received = ts(a.received_at)
            rows.append((*alert_row(a), received, received))
        keys = [(r[0], r[1], r[2]) for r in rows]
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                before = await self._statuses(keys)
                await self._db.executemany(UPSERT, rows)
                after = await self._statuses(keys)
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
        changed = sum(1 for k in set(keys) if before.get(k) != after.get(k))
        return UpsertResult(received=len(alerts), changed=changed)

    async def _statuses(self, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
        out: dict[tuple[str, str, str], str] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 300):
            chunk = unique[i : i + 300]
            where = " OR ".join("(source = ? AND fingerprint = ? AND starts_at = ?)" for _ in chunk)
            params = [p for k in chunk for p in k]
            async with self._db.execute(
                f"SELECT source, fingerprint, starts_at, status FROM alerts WHERE {where}",  # noqa: S608 (placeholders only)
                params,
            ) as cur:
                for row in await cur.fetchall():
                    out[(row[0], row[1], row[2])] = row[3]
        return out

    async def active_alerts(self, *, now: datetime, ttl: timedelta) -> list[Alert]:
        cutoff = ts(now - ttl)
        sql = f"""
            SELECT {ALERT_COLUMNS} FROM alerts AS a
            WHERE a.status = 'firing' AND a.last_received_at >= ?
              AND a.starts_at = (SELECT MAX(b.starts_at) FROM alerts AS b
                                 WHERE b.source = a.source AND b.fingerprint = a.fingerprint)
        """  # noqa: S608 (constant column list)
        async with self._db.execute(sql, (cutoff,)) as cur:
            return [alert_from_row(row) for row in await cur.fetchall()]

    async def list_alerts(self, *, include_resolved: bool = True, limit: int = 1000) -> list[StoredAlert]:
        where = "" if include_resolved else "WHERE status = 'firing'"
        sql = (
            f"SELECT {ALERT_COLUMNS}, first_received_at, last_received_at, receive_count FROM alerts {where} "  # noqa: S608
            "ORDER BY last_received_at DESC LIMIT ?"
        )
        async with self._db.execute(sql, (limit,)) as cur:
            rows = await cur.fetchall()
        return [StoredAlert(alert_from_row(r), parse_ts(r[9]), parse_ts(r[10]), int(r[11])) for r in rows]

    async def prune_alerts(self, *, resolved_before: datetime) -> int:
        async with self._write:
            cur = await self._db.execute(
                "DELETE FROM alerts WHERE status = 'resolved' AND last_received_at < ?",
                (ts(resolved_before),),
            )
            return cur.rowcount

    # --- groups and the action log -------------------------------------------------------------

    async def load_groups(self) -> dict[str, PublishedGroup]:
        async with self._db.execute("SELECT data FROM incident_groups") as cur:
            return {g.key: g for g in (group_from_json(r[0]) for r in await cur.fetchall())}

    async def save_group(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                await self._db.execute(
                    "INSERT INTO incident_groups (key, data, updated_at) VALUES (?, ?, datetime('now')) "
                    "ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                    (group.key, group_to_json(group)),
                )
                if action is not None:
                    await self._db.execute(
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
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise

    async def action_log(self, *, group_key: str | None = None, limit: int = 100) -> list[ActionRecord]:
        sql = "SELECT group_key, action, outcome, at, incident_id, detail, epoch FROM action_log"
        params: list[Any] = []
        if group_key is not None:
            sql += " WHERE group_key = ?"
            params.append(group_key)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        async with self._db.execute(sql, params) as cur:
            return [action_from_row(r) for r in await cur.fetchall()]

    # --- maintenance windows --------------------------------------------------------------------

    async def save_window(self, window_id: str, data: Mapping[str, Any]) -> None:
        async with self._write:
            await self._db.execute(
                "INSERT INTO maintenance_windows (id, data, updated_at) VALUES (?, ?, datetime('now')) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                (window_id, json.dumps(dict(data), sort_keys=True)),
            )

    async def load_windows(self) -> dict[str, dict[str, Any]]:
        async with self._db.execute("SELECT id, data FROM maintenance_windows ORDER BY id") as cur:
            return {row[0]: json.loads(row[1]) for row in await cur.fetchall()}

    async def delete_window(self, window_id: str) -> bool:
        async with self._write:
            cur = await self._db.execute("DELETE FROM maintenance_windows WHERE id = ?", (window_id,))
            return cur.rowcount > 0

    async def get_control(self, key: str) -> Any:
        async with self._db.execute("SELECT value FROM control WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return None if row is None else json.loads(row[0])

    async def set_control(self, key: str, value: Any) -> None:
        async with self._write:
            await self._db.execute(
                "INSERT INTO control (key, value, updated_at) VALUES (?, ?, datetime('now')) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, json.dumps(value)),
            )

    async def save_group_unfenced(self, group: PublishedGroup, *, action: ActionRecord | None = None) -> None:
        """An operator's change (admin API): SQLite has one writer, so it is an ordinary save."""
        await self.save_group(group, action=action)

    async def ping(self) -> None:
        async with self._db.execute("SELECT 1") as cur:
            await cur.fetchone()

    async def close(self) -> None:
        await self._db.close()
