"""Leader election (bridge/engine/leadership.py) in-process.

The SQLite cases run on the one fake time (the ``fake_time`` fixture: both ``now()`` and
``sleep()``), against the store's own leases. SQLite's lease is always held. PostgreSQL's is a
session lock on the real server of this machine, one schema per test, taken over for real when
the leader's session is killed. A PostgreSQL round trip is I/O outside the process, which the
virtual clock does not wait for, so the PostgreSQL cases run in real time with a short retry.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bridge import pacing
from bridge.domain import PublishedGroup
from bridge.engine.leadership import lead
from bridge.store import Store, StoreError, open_store
from bridge.store.base import Lease
from bridge.store.postgres import PostgresStore, StaleLeaderError, lease_lock
from tests.conftest import PG_URL, FakeTime


def epoch_of(lease: Lease) -> int | None:
    """The lease's epoch as of now (a call, so that a type checker does not carry an earlier
    assertion about the attribute over to a later read)."""
    return lease.epoch


def fence_of(store: PostgresStore) -> int | None:
    return store.epoch


class Terms:
    """What the loop ran: each term's start and end on the loop's clock."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.ended: list[tuple[float, str]] = []
        self.leading: list[bool] = []

    def lead(self, lease: Lease, lost: asyncio.Event, stopping: asyncio.Event) -> Coroutine[Any, Any, None]:
        """The leader loop on ``lease``, running these terms and noting each election and deposal."""
        return lead(
            lease,
            lost,
            self.term,
            stopping,
            on_elected=lambda: self.leading.append(True),
            on_deposed=lambda: self.leading.append(False),
        )

    async def term(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self.started.append(loop.time())
        try:
            await stop.wait()
            self.ended.append((loop.time(), "stopped"))
        except asyncio.CancelledError:
            self.ended.append((loop.time(), "cancelled"))
            raise


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    await store.close()


async def test_on_sqlite_one_term_lasts_the_whole_run(fake_time: FakeTime, sqlite_store: Store) -> None:
    terms = Terms()
    stopping, lost = asyncio.Event(), asyncio.Event()
    lease = sqlite_store.lease("me", on_lost=lost.set)
    task = asyncio.create_task(terms.lead(lease, lost, stopping))
    await asyncio.sleep(3600)  # an hour of virtual time: no second term, no re-election
    assert epoch_of(lease) == 0
    stopping.set()
    await task
    assert epoch_of(lease) is None
    assert terms.started == [0.0]
    assert terms.ended == [(3600.0, "stopped")]  # a clean stop ends the term, it is not cancelled
    assert terms.leading == [True, False]


async def test_a_lost_lease_ends_the_term_at_once_and_is_sought_again_every_retry(
    fake_time: FakeTime, sqlite_store: Store
) -> None:
    """The lease says it is lost (its ``on_lost``): the term is cancelled at that instant, and
    the loop asks for the lease again ``retry`` seconds later (SQLite's is granted again)."""
    terms = Terms()
    stopping, lost = asyncio.Event(), asyncio.Event()
    lease = sqlite_store.lease("me", on_lost=lost.set)
    task = asyncio.create_task(terms.lead(lease, lost, stopping))
    await asyncio.sleep(100)
    lost.set()
    await asyncio.sleep(pacing.LEASE_RETRY / 2)
    assert terms.ended == [(100.0, "cancelled")], "a deposed leader stops publishing at once"
    assert terms.leading == [True, False]
    await asyncio.sleep(pacing.LEASE_RETRY)
    assert terms.started == [0.0, 100.0 + pacing.LEASE_RETRY], "re-elected at the next retry"
    assert terms.leading == [True, False, True]
    await asyncio.sleep(1000)
    stopping.set()
    await task
    assert fake_time.time() == 1100.0 + pacing.LEASE_RETRY * 1.5, "stopping ends the wait at once"
    assert terms.ended[1:] == [(1100.0 + pacing.LEASE_RETRY * 1.5, "stopped")]
    assert terms.leading == [True, False, True, False]


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{PG_URL}?schema={schema}"
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.mark.real_time(
    "PostgreSQL's lease is a lock in another process: the leader loop retries on real time until it changes hands"
)
async def test_postgres_takeover_moves_the_epoch_and_fences_the_old_leader(pg_url: str) -> None:
    a = await open_store(pg_url)
    b = await open_store(pg_url)
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    terms_a, terms_b = Terms(), Terms()
    stopping = asyncio.Event()
    lost_a, lost_b = asyncio.Event(), asyncio.Event()
    lease_a = a.lease("a", on_lost=lost_a.set)
    lease_b = b.lease("b", on_lost=lost_b.set)
    run_a = asyncio.create_task(lead(lease_a, lost_a, terms_a.term, stopping, retry=0.05))
    for _ in range(200):
        if lease_a.epoch is not None:
            break
        await asyncio.sleep(0.01)
    first = lease_a.epoch
    assert first is not None and a.epoch == first  # the lease owns the store's fence
    run_b = asyncio.create_task(lead(lease_b, lost_b, terms_b.term, stopping, retry=0.05))
    await asyncio.sleep(0.3)
    assert epoch_of(lease_b) is None and not terms_b.started  # one leader at a time

    # The leader's session dies (as when its process does): the lock goes with it.
    admin = await asyncpg.connect(PG_URL)
    try:
        key = lease_lock(a.schema) & 0xFFFF_FFFF_FFFF_FFFF
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND classid = $1 AND objid = $2 AND objsubid = 1",
            key >> 32,
            key & 0xFFFF_FFFF,
        )
        assert killed == 1
    finally:
        await admin.close()
    for _ in range(500):
        if epoch_of(lease_b) is not None:
            break
        await asyncio.sleep(0.01)
    assert epoch_of(lease_b) == first + 1 and b.epoch == first + 1
    assert terms_a.ended and terms_a.ended[0][1] == "cancelled"
    assert a.epoch is None or a.epoch != b.epoch
    # Whatever the old leader still tries to write is refused by the epoch fence.
    a.epoch = first
    group = PublishedGroup(key="g", episode=1, status_page_id="p")
    with pytest.raises(StaleLeaderError):
        await a.save_group(group)
    await b.save_group(group)

    stopping.set()
    await asyncio.gather(run_a, run_b)
    assert epoch_of(lease_b) is None and fence_of(b) is None  # released on stop: the next may take over
    await a.close()
    await b.close()


def test_installations_in_two_schemas_have_their_own_lease() -> None:
    assert lease_lock(None) == 0x5354_4252_4C45  # the key earlier releases used, kept
    assert len({lease_lock(None), lease_lock("team_a"), lease_lock("team_b")}) == 3


@pytest.mark.real_time(
    "PostgreSQL's lease is a lock in another process: the leader loop retries on real time until it changes hands"
)
async def test_an_unreachable_store_is_a_store_error_and_is_retried() -> None:
    store = await open_store(PG_URL + f"?schema=t_{uuid.uuid4().hex[:12]}")
    assert isinstance(store, PostgresStore)
    try:
        lease = store.lease("x", on_lost=lambda: None)
        lease._dsn = "postgresql://postgres@127.0.0.1:1/test"  # noqa: SLF001 - nothing listens there
        with pytest.raises(StoreError, match="reconcile lease"):
            await lease.try_acquire()
        terms, stopping, lost = Terms(), asyncio.Event(), asyncio.Event()
        run = asyncio.create_task(lead(lease, lost, terms.term, stopping, retry=0.05))
        await asyncio.sleep(0.3)
        assert not terms.started and not run.done()  # still trying, never crashed
        stopping.set()
        await run
    finally:
        await store.close()
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')
        finally:
            await conn.close()
