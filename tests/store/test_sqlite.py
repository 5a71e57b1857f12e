"""What only the SQLite backend has to get right: opening files, WAL, migrations bookkeeping, and
keeping its two connections apart (a read never sees the inside of a write transaction)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.domain import Alert, AlertStatus, Source
from bridge.store import StoreError, open_store
from bridge.store.base import ts
from bridge.store.sqlite import SQLiteStore, migrations, statements

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T = ts(T0)


def alert(fp: str, **labels: str) -> Alert:
    return Alert(
        source=Source.ALERTMANAGER,
        fingerprint=fp,
        labels={"alertname": fp, **labels},
        annotations={},
        status=AlertStatus.FIRING,
        starts_at=T0,
        ends_at=None,
        generator_url="",
        received_at=T0,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = await SQLiteStore.open(str(tmp_path / "s.db"))
    yield s
    await s.close()


async def test_a_failing_batch_leaves_nothing_and_the_store_usable(store: SQLiteStore) -> None:
    # Ingest refuses lone surrogates; the store must still be all-or-nothing if one slips through.
    with pytest.raises(UnicodeEncodeError):
        await store.upsert_alerts([alert("ok"), alert("bad-\ud800")])
    assert await store.list_alerts() == []
    assert (await store.upsert_alerts([alert("ok")])).changed == 1


async def test_reads_never_see_a_transaction_in_flight(store: SQLiteStore) -> None:
    async with store._transaction() as db:
        await db.execute(
            "INSERT INTO alerts (source, fingerprint, starts_at, status, ends_at, labels, annotations, "
            "generator_url, received_at, first_received_at, last_received_at, receive_count) "
            "VALUES ('alertmanager', 'f', ?, 'firing', NULL, '{}', '{}', '', ?, ?, ?, 1)",
            (T, T, T, T),
        )
        assert await store.list_alerts() == [], "a read saw an uncommitted row"
    assert len(await store.list_alerts()) == 1

    class Boom(Exception):
        pass

    async def insert_then_fail() -> None:
        async with store._transaction() as db:
            await db.execute(
                "INSERT INTO alerts (source, fingerprint, starts_at, status, ends_at, labels, annotations, "
                "generator_url, received_at, first_received_at, last_received_at, receive_count) "
                "VALUES ('grafana', 'g', ?, 'firing', NULL, '{}', '{}', '', ?, ?, ?, 1)",
                (T, T, T, T),
            )
            raise Boom

    with pytest.raises(Boom):
        await insert_then_fail()
    assert [s.alert.fingerprint for s in await store.list_alerts()] == ["f"]


async def test_wal_is_on_and_persists_in_the_file(tmp_path: Path) -> None:
    s = await open_store(f"sqlite:///{tmp_path / 'w.db'}?synchronous=full")
    await s.close()
    with sqlite3.connect(tmp_path / "w.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_statements_split_like_sqlite_reads_them() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (a TEXT DEFAULT 'x;y');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        UPDATE t SET a = 'z;' WHERE a = new.a;
    END;
    -- trailing comment
    """
    parts = statements(script)
    assert len(parts) == 2
    assert parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END;")
    with pytest.raises(StoreError, match="incomplete statement"):
        statements("CREATE TABLE u (a TEXT)")


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    versions = [v for v, _ in migrations()]
    assert versions == list(range(1, len(versions) + 1))
    for _, sql in migrations():
        assert statements(sql)


async def test_a_newer_or_edited_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    first = await SQLiteStore.open(str(path))
    await first.close()
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 'later')")
    with pytest.raises(StoreError, match="schema version 9999, newer than this statusbridge"):
        await SQLiteStore.open(str(path))
    with sqlite3.connect(path) as raw:
        raw.execute("DELETE FROM schema_migrations WHERE version = 9999")
        raw.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(StoreError, match="migration 0001 changed after it was applied"):
        await SQLiteStore.open(str(path))


async def test_bookkeeping_without_checksums_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    first = await SQLiteStore.open(str(path))
    await first.upsert_alerts([alert("kept")])
    await first.close()
    with sqlite3.connect(path) as raw:  # the layout written before checksums were recorded
        raw.execute("ALTER TABLE schema_migrations DROP COLUMN checksum")
    again = await SQLiteStore.open(str(path))
    try:
        assert await again.migrate() == []
        assert [s.alert.fingerprint for s in await again.list_alerts()] == ["kept"]
    finally:
        await again.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sqlite:///:memory:", "in-memory database"),
        ("sqlite://host/x.db", "no host"),
        ("sqlite:///x.db?journal=off", "unknown sqlite option(s) journal"),
        ("sqlite:///x.db?synchronous=off", "synchronous must be"),
        ("sqlite://", "name a file"),
        ("redis://localhost", "unsupported scheme"),
    ],
)
async def test_bad_urls_are_refused_with_the_reason(url: str, words: str) -> None:
    with pytest.raises(StoreError) as info:
        await open_store(url)
    assert words in str(info.value)


async def test_unusable_paths_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        await open_store(f"sqlite:///{tmp_path}")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open SQLite database .*garbage.db"):
        await open_store(f"sqlite:///{garbage}")
    with pytest.raises(StoreError, match="does not exist"):
        await open_store(f"sqlite:///{tmp_path}/missing/x.db")


async def test_group_commit_keeps_each_deliverys_answer_and_order(store: SQLiteStore) -> None:
    """Concurrent deliveries share one transaction but keep their own counts, in arrival order."""
    resolved = replace(alert("a"), status=AlertStatus.RESOLVED, ends_at=T0)
    results = await asyncio.gather(
        store.upsert_alerts([alert("a")]),
        store.upsert_alerts([alert("a"), alert("b")]),
        store.upsert_alerts([resolved]),
        store.upsert_alerts([alert("a")]),
    )
    assert [(r.received, r.changed) for r in results] == [(1, 1), (2, 1), (1, 1), (1, 0)]
    stored = {s.alert.fingerprint: s for s in await store.list_alerts()}
    assert stored["a"].alert.status is AlertStatus.RESOLVED, "resolved stays terminal within a round"
    assert stored["a"].receive_count == 4


async def test_one_bad_delivery_fails_alone_in_its_round(store: SQLiteStore) -> None:
    outcomes = await asyncio.gather(
        store.upsert_alerts([alert("ok-1")]),
        store.upsert_alerts([alert("bad-\ud800")]),
        store.upsert_alerts([alert("ok-2")]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], UnicodeEncodeError)
    assert [o.changed for o in (outcomes[0], outcomes[2])] == [1, 1]  # type: ignore[union-attr]
    assert sorted(s.alert.fingerprint for s in await store.list_alerts()) == ["ok-1", "ok-2"]
