"""The store contract's fixtures: each test runs once per backend, on a fresh store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from bridge.domain import Alert, AlertStatus, Source
from bridge.store import Store, open_store
from tests.conftest import PG_URL

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BACKENDS = ["sqlite", "postgresql"]

StoreFactory = Callable[[], Awaitable[Store]]


@pytest.fixture(params=BACKENDS)
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    opened: list[Store] = []
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else f"{PG_URL}?schema={schema}"

    async def make() -> Store:
        store = await open_store(url)
        opened.append(store)
        return store

    yield make
    for s in opened:
        await s.close()
    if request.param == "postgresql":
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    return await store_factory()


def alert(
    fp: str = "f1", status: AlertStatus = AlertStatus.FIRING, starts: datetime = T0, received: datetime = T0
) -> Alert:
    return Alert(
        source=Source.ALERTMANAGER,
        fingerprint=fp,
        labels={"alertname": fp},
        annotations={"summary": "s"},
        status=status,
        starts_at=starts,
        ends_at=None if status is AlertStatus.FIRING else starts + timedelta(minutes=1),
        generator_url="",
        received_at=received,
    )
