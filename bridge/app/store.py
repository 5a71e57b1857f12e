"""Start-up job 1: the store, opened and migrated first and closed last (``STORE``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bridge.store import open_store
from bridge.web.resources import SETTINGS, STORE


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    """Opens ``STORE_URL``'s store (its migrations run here) and closes it at shutdown."""
    store = app[STORE] = await open_store(app[SETTINGS].store_url)
    yield
    await store.close()
