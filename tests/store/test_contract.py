"""The store contract: every backend passes the same suite (SQLite files here; PostgreSQL joins
``BACKENDS`` with the HA work)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from bridge.domain import (
    ActionRecord,
    AlertStatus,
    ComponentStatus,
    GroupSettings,
    IncidentStatus,
    NotifyPolicy,
    PublishedGroup,
    Timings,
)
from bridge.store import Store, StoreError, open_store, store_identity
from bridge.store.base import STORE_IDENTITY, group_from_json, group_to_json
from bridge.store.postgres import PostgresStore
from bridge.store.sqlite import SQLiteStore, migrations
from tests.conftest import PG_URL
from tests.store.conftest import T0, StoreFactory, alert


async def test_upsert_is_idempotent_and_reports_changes(store: Store) -> None:
    first = await store.upsert_alerts([alert()])
    assert (first.received, first.changed) == (1, 1)
    again = await store.upsert_alerts([alert(received=T0 + timedelta(minutes=1))])
    assert again.changed == 0
    (stored,) = await store.list_alerts()
    assert stored.receive_count == 2
    assert stored.last_received_at == T0 + timedelta(minutes=1)
    resolved = await store.upsert_alerts([alert(status=AlertStatus.RESOLVED)])
    assert resolved.changed == 1


async def test_resolved_is_terminal_for_an_instance(store: Store) -> None:
    await store.upsert_alerts([alert(status=AlertStatus.RESOLVED)])
    await store.upsert_alerts([alert(status=AlertStatus.FIRING)])
    (stored,) = await store.list_alerts()
    assert stored.alert.status is AlertStatus.RESOLVED
    assert stored.alert.ends_at is not None


async def test_active_alerts_latest_instance_and_ttl(store: Store) -> None:
    await store.upsert_alerts([alert("a", starts=T0), alert("a", starts=T0 + timedelta(hours=1)), alert("b")])
    await store.upsert_alerts([alert("c", received=T0 - timedelta(hours=9))])
    active = await store.active_alerts(now=T0, ttl=timedelta(hours=8))
    assert sorted((a.fingerprint, a.starts_at) for a in active) == [("a", T0 + timedelta(hours=1)), ("b", T0)]
    await store.upsert_alerts([alert("a", AlertStatus.RESOLVED, starts=T0 + timedelta(hours=1))])
    active = await store.active_alerts(now=T0, ttl=timedelta(hours=8))
    assert [a.fingerprint for a in active] == ["b"], "the older instance of a does not come back"


async def test_zero_start_time_round_trips(store: Store) -> None:
    from bridge.domain import ZERO_TIME

    await store.upsert_alerts([alert(starts=ZERO_TIME)])
    (stored,) = await store.list_alerts()
    assert stored.alert.starts_at == ZERO_TIME


async def test_concurrent_upserts(store: Store) -> None:
    batches = [[alert(f"f{i}-{j}") for j in range(20)] for i in range(25)]
    results = await asyncio.gather(*(store.upsert_alerts(b) for b in batches))
    assert sum(r.changed for r in results) == 500
    assert len(await store.list_alerts(limit=10_000)) == 500


async def test_groups_and_action_log_survive_reopen(store_factory: StoreFactory) -> None:
    store = await store_factory()
    group = PublishedGroup(
        key='api{service="x"}',
        episode=2,
        status_page_id="p",
        incident_id="i",
        incident_status=IncidentStatus.MONITORING,
        components={"c": ComponentStatus.OPERATIONAL},
        name="API",
        update_count=3,
        monitoring_since=T0,
        last_published_at=T0,
    )
    await store.save_group(group, action=ActionRecord(group.key, "update", "ok", T0, "i", "", 0))
    await store.save_group(replace(group, update_count=4))
    await store.upsert_alerts([alert()])
    await store.close()
    reopened = await store_factory()
    groups = await reopened.load_groups()
    assert groups == {group.key: replace(group, update_count=4)}
    (record,) = await reopened.action_log()
    assert record.outcome == "ok"
    assert record.at == T0
    assert len(await reopened.list_alerts()) == 1


async def test_how_alerts_ended_and_suppression(store_factory: StoreFactory) -> None:
    """The evidence the guard judges by, and suppression as a state of a firing instance."""
    store = await store_factory()
    await store.upsert_alerts([alert("a"), alert("b"), alert("c"), alert("d")])
    await store.upsert_alerts(
        [
            alert("a", AlertStatus.RESOLVED),  # a webhook resolve
            replace(alert("b", AlertStatus.RESOLVED), ended_by="gone"),  # the pull stopped seeing it
            replace(alert("c"), suppressed_by="silence-1"),
        ]
    )
    endings = await store.alert_endings(
        ["alertmanager:a", "alertmanager:b", "alertmanager:c", "alertmanager:d", "alertmanager:zz"]
    )
    assert endings == {
        "alertmanager:a": "resolved",
        "alertmanager:b": "gone",
        "alertmanager:c": "suppressed",
        "alertmanager:d": "firing",
    }
    # A suppressed instance is not on the page's side, but the pull still sees it.
    _, for_page = await store.scan_active(now=T0, ttl=timedelta(hours=1))
    assert sorted(x.fingerprint for x in for_page) == ["d"]
    assert sorted(x.fingerprint for x in await store.active_alerts(now=T0, ttl=timedelta(hours=1))) == [
        "c",
        "d",
    ]
    # The silence ends: the same instance fires again (a change worth waking the reconciler for).
    assert (await store.upsert_alerts([alert("c")])).changed == 1
    assert (await store.alert_endings(["alertmanager:c"]))["alertmanager:c"] == "firing"
    # Resolved stays terminal, whatever a later delivery of the instance says.
    await store.upsert_alerts([replace(alert("a"), suppressed_by="silence-2")])
    assert (await store.alert_endings(["alertmanager:a"]))["alertmanager:a"] == "resolved"


async def test_rule_settings_are_kept_with_the_group(store_factory: StoreFactory) -> None:
    """What a quiet group winds down with: the rule's settings, recorded with the published group."""
    store = await store_factory()
    settings = GroupSettings(
        timings=Timings(resolve_after=timedelta(seconds=20), downgrade_after=timedelta(minutes=2)),
        notify=NotifyPolicy.OPEN_AND_RESOLVE,
        resolved_message="The API is working normally again.",
    )
    group = PublishedGroup(key="api", episode=1, status_page_id="p", settings=settings)
    await store.save_group(group)
    await store.close()
    reopened = await store_factory()
    assert (await reopened.load_groups())["api"].settings == settings


def test_a_group_written_before_settings_were_kept_loads_without_them() -> None:
    # The JSON a store of the previous release holds for an open incident (no "settings" key).
    old = (
        '{"components": {"c": "partial_outage"}, "create_attempted": false, "episode": 1, '
        '"force_resolve": false, "incident_id": "i", "incident_status": "investigating", "key": "api", '
        '"last_published_at": "2026-11-01T00:00:00.000000Z", "left_open_incident": null, '
        '"monitoring_since": null, "name": "API", "opened_at": "2026-11-01T00:00:00.000000Z", '
        '"outcome_unknown": false, "pending_digest": null, "pending_since": null, "status_page_id": "p", '
        '"taken_over": false, "taken_over_reason": null, "update_count": 1}'
    )
    group = group_from_json(old)
    assert group.settings is None
    assert group.open and group.incident_id == "i"
    assert group_from_json(group_to_json(group)) == group


async def test_maintenance_windows(store_factory: StoreFactory) -> None:
    store = await store_factory()
    await store.save_window("w1", {"name": "DB upgrade", "start_at": "2026-11-24T02:00:00Z"})
    await store.save_window("w1", {"name": "DB upgrade v2", "start_at": "2026-11-24T02:00:00Z"})
    await store.save_window("w2", {"name": "Other"})
    assert await store.delete_window("w2") is True
    assert await store.delete_window("w2") is False
    await store.close()
    reopened = await store_factory()
    assert await reopened.load_windows() == {
        "w1": {"name": "DB upgrade v2", "start_at": "2026-11-24T02:00:00Z"}
    }


async def test_published_maintenances(store_factory: StoreFactory) -> None:
    store = await store_factory()
    await store.save_published_maintenance(
        "w1:one-off", {"maintenance_id": "m1", "status": "maintenance_scheduled"}
    )
    await store.save_published_maintenance(
        "w1:one-off", {"maintenance_id": "m1", "status": "maintenance_in_progress"}
    )
    await store.close()
    reopened = await store_factory()
    assert await reopened.load_published_maintenances() == {
        "w1:one-off": {"maintenance_id": "m1", "status": "maintenance_in_progress"}
    }


async def test_control_switches(store: Store) -> None:
    assert await store.get_control("paused") is None
    await store.set_control("paused", {"by": "admin", "at": "2026-11-23T12:00:00Z"})
    await store.set_control("paused", {"by": "other"})
    assert await store.get_control("paused") == {"by": "other"}
    await store.set_control("paused", None)
    assert await store.get_control("paused") is None


async def test_a_store_has_its_own_identity(store_factory: StoreFactory, tmp_path: Path) -> None:
    """Incident idempotency keys mix it in: a store made afresh (a lost one replaced) must not
    replay its predecessor's creates, while a reopened one (a restart, a replica) keeps its keys."""
    store = await store_factory()
    identity = await store_identity(store)
    assert len(identity) == 32 and int(identity, 16) >= 0
    await store.close()
    assert await store_identity(await store_factory()) == identity
    other = await open_store(f"sqlite:///{tmp_path / 'another.db'}")
    try:
        assert await store_identity(other) not in ("", identity)
    finally:
        await other.close()


async def test_a_store_that_held_groups_keeps_its_keys(store_factory: StoreFactory) -> None:
    """The migration that adds the identity gives a store with groups the empty one: a create of
    unknown outcome, recorded before the upgrade, replays with the key it was sent with."""
    store = await store_factory()
    await store.save_group(PublishedGroup(key="g", status_page_id="p", episode=1, create_attempted=True))
    # Back to the schema before the migration, holding a group: what an upgrading operator has.
    if isinstance(store, SQLiteStore):
        newest = await store.schema_version()
        async with store._transaction() as db:
            await db.execute("DELETE FROM control WHERE key = ?", (STORE_IDENTITY,))
            await db.execute("DELETE FROM schema_migrations WHERE version = ?", (newest,))
        assert await store.migrate() == [newest]
    else:
        assert isinstance(store, PostgresStore)
        newest = await store.schema_version()
        await store._pool.execute("DELETE FROM control WHERE key = $1", STORE_IDENTITY)
        await store._pool.execute("DELETE FROM schema_migrations WHERE version = $1", newest)
        assert await store.migrate() == [newest]
    assert await store_identity(store) == ""


async def test_a_schema_from_a_newer_release_is_refused(store_factory: StoreFactory) -> None:
    """A rollback without the pre-upgrade backup: the older release refuses the newer schema
    rather than run on one it does not know (CHANGELOG.md: how to roll back)."""
    store = await store_factory()
    if isinstance(store, SQLiteStore):
        async with store._transaction() as db:
            await db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 'later')")
    else:
        assert isinstance(store, PostgresStore)
        await store._pool.execute("INSERT INTO schema_migrations (version) VALUES (9999)")
    with pytest.raises(StoreError, match="version 9999, newer than this statusbridge knows"):
        await store_factory()


async def test_size_counts_the_stores_own_bytes_and_grows_with_alerts(store: Store) -> None:
    before, free = await store.size(), await store.disk_free()
    assert before > 0
    if isinstance(store, SQLiteStore):
        assert free is not None and 0 < free <= 1
    else:
        assert free is None, "PostgreSQL's disk is the server's"
    await store.upsert_alerts([alert(f"fp-{i:05d}") for i in range(3000)])
    assert await store.size() > before


async def test_prune_removes_old_resolved_only(store: Store) -> None:
    await store.upsert_alerts([alert("old", AlertStatus.RESOLVED), alert("live")])
    assert await store.prune_alerts(resolved_before=T0 + timedelta(days=1)) == 1
    assert [a.alert.fingerprint for a in await store.list_alerts()] == ["live"]


async def test_postgres_migrations_once_under_concurrent_starts() -> None:
    from bridge.store.postgres import PostgresStore
    from bridge.store.postgres import migrations as pg_migrations

    schema = f"t_{uuid.uuid4().hex[:12]}"
    stores = await asyncio.gather(*(PostgresStore.open(f"{PG_URL}?schema={schema}") for _ in range(3)))
    try:
        assert {await s.schema_version() for s in stores} == {max(v for v, _ in pg_migrations())}
    finally:
        for s in stores:
            await s.close()
        conn = await asyncpg.connect(PG_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_migrations_are_versioned_and_applied_once(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    first = await SQLiteStore.open(path)
    assert await first.schema_version() == max(v for v, _ in migrations())
    assert await first.migrate() == []
    await first.close()
    second = await SQLiteStore.open(path)
    assert await second.migrate() == []
    await second.close()


async def test_bad_urls_are_clear(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported scheme"):
        await open_store("mysql://x")
    with pytest.raises(StoreError, match="does not exist"):
        await open_store(f"sqlite:///{tmp_path}/missing/dir/x.db")


async def test_scan_active_counts_every_alert_and_keeps_what_is_asked(store: Store) -> None:
    """The pass's read: chunked past SCAN_CHUNK, a count of all active alerts, only the kept ones."""
    await store.upsert_alerts([alert(f"f{i:04d}") for i in range(1203)])
    await store.upsert_alerts([alert("gone", AlertStatus.RESOLVED)])
    count, kept = await store.scan_active(
        now=T0, ttl=timedelta(hours=8), keep=lambda a: int(a.fingerprint[1:]) % 7 == 0
    )
    assert count == 1203
    assert sorted(a.fingerprint for a in kept) == [f"f{i:04d}" for i in range(0, 1203, 7)]
    everything = await store.scan_active(now=T0, ttl=timedelta(hours=8))
    assert everything[0] == len(everything[1]) == 1203
