"""More of the store contract for alerts, run on every backend of ``conftest.BACKENDS``: the
orders in which Alertmanager's retries, repeats and replicas really deliver, the TTL boundary, and
concurrent deliveries of the same instances."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from bridge.domain import AlertStatus, Source
from bridge.store import Store
from tests.store.conftest import T0, StoreFactory, alert

MIN = timedelta(minutes=1)
TTL = timedelta(hours=8)


async def test_a_resolve_delivered_before_its_firing_stays_resolved(store: Store) -> None:
    resolved = alert("x", AlertStatus.RESOLVED, received=T0)
    assert (await store.upsert_alerts([resolved])).changed == 1
    late_firing = await store.upsert_alerts([alert("x", received=T0 + MIN)])
    assert late_firing.changed == 0
    (stored,) = await store.list_alerts()
    assert stored.alert.status is AlertStatus.RESOLVED
    assert stored.alert.ends_at == resolved.ends_at
    assert (stored.first_received_at, stored.last_received_at) == (T0, T0 + MIN)
    assert stored.receive_count == 2
    assert await store.active_alerts(now=T0 + MIN, ttl=TTL) == []


async def test_an_older_firing_instance_never_shadows_a_resolved_newer_one(store: Store) -> None:
    """The latest instance of a series decides; an older instance whose resolve was lost is over."""
    await store.upsert_alerts([alert("x", starts=T0)])
    await store.upsert_alerts([alert("x", AlertStatus.RESOLVED, starts=T0 + 10 * MIN)])
    assert await store.active_alerts(now=T0 + 11 * MIN, ttl=TTL) == []
    # ...and the late resolve of the old instance changes nothing for the series either.
    await store.upsert_alerts([alert("x", AlertStatus.RESOLVED, starts=T0)])
    statuses = sorted((s.alert.starts_at, s.alert.status) for s in await store.list_alerts())
    assert statuses == [(T0, AlertStatus.RESOLVED), (T0 + 10 * MIN, AlertStatus.RESOLVED)]


async def test_refires_are_instances_of_one_series(store: Store) -> None:
    for i in range(3):
        starts = T0 + 30 * i * timedelta(seconds=1)
        await store.upsert_alerts([alert("flip", starts=starts, received=starts)])
        if i < 2:
            await store.upsert_alerts([alert("flip", AlertStatus.RESOLVED, starts=starts, received=starts)])
    stored = await store.list_alerts()
    assert len(stored) == 3
    assert {s.alert.fingerprint for s in stored} == {"flip"}
    (active,) = await store.active_alerts(now=T0 + MIN, ttl=TTL)
    assert active.starts_at == T0 + timedelta(seconds=60)


async def test_ttl_counts_from_the_last_receipt_inclusively(store: Store) -> None:
    await store.upsert_alerts([alert("x", received=T0)])
    assert len(await store.active_alerts(now=T0 + TTL, ttl=TTL)) == 1
    later = T0 + TTL + timedelta(microseconds=1)
    assert await store.active_alerts(now=later, ttl=TTL) == []
    # A repeat of the same notification makes it current again, received_at moving with it.
    await store.upsert_alerts([alert("x", received=later)])
    (again,) = await store.active_alerts(now=later + TTL, ttl=TTL)
    assert again.received_at == later


async def test_sources_do_not_share_instances(store: Store) -> None:
    am = alert("same")
    grafana = replace(am, source=Source.GRAFANA)
    result = await store.upsert_alerts([am, grafana])
    assert result.changed == 2
    await store.upsert_alerts([replace(grafana, status=AlertStatus.RESOLVED, ends_at=T0 + MIN)])
    (active,) = await store.active_alerts(now=T0, ttl=TTL)
    assert active.source is Source.ALERTMANAGER


async def test_concurrent_duplicate_deliveries_count_every_receipt(store: Store) -> None:
    """Alertmanager replicas and retries deliver the same body at once: one instance per alert,
    every receipt counted, and exactly one delivery reports each instance as new."""
    batch = [alert(f"a{i}") for i in range(30)]
    results = await asyncio.gather(*(store.upsert_alerts(batch) for _ in range(12)))
    assert sum(r.changed for r in results) == 30
    stored = await store.list_alerts(limit=1000)
    assert len(stored) == 30
    assert {s.receive_count for s in stored} == {12}


async def test_listing_filters_resolved_and_limits_newest_first(store: Store) -> None:
    for i in range(5):
        await store.upsert_alerts([alert(f"a{i}", received=T0 + i * MIN)])
    await store.upsert_alerts([alert("a4", AlertStatus.RESOLVED, received=T0 + 9 * MIN)])
    firing = await store.list_alerts(include_resolved=False)
    assert [s.alert.fingerprint for s in firing] == ["a3", "a2", "a1", "a0"]
    newest = await store.list_alerts(limit=2)
    assert [s.alert.fingerprint for s in newest] == ["a4", "a3"]


async def test_an_acknowledged_upsert_is_there_after_reopen(store_factory: StoreFactory) -> None:
    first = await store_factory()
    await first.upsert_alerts([alert("durable")])
    await first.close()
    again = await store_factory()
    (stored,) = await again.list_alerts()
    assert stored.alert == alert("durable")
