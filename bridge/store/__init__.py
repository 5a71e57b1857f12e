"""Durable state: alerts, incident groups, published state, the action log.

``open_store(url)`` picks the backend from the URL: ``sqlite:///relative.db``,
``sqlite:////absolute/path.db`` (optionally ``?synchronous=full``), or
``postgresql://user@host/db[?schema=name]`` for several replicas sharing one store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from bridge.store.base import Store, StoredAlert, StoreError, UpsertResult, store_identity
from bridge.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from bridge.store.postgres import PostgresStore


def __getattr__(name: str) -> Any:
    # asyncpg (~3 MB resident) loads only for a postgresql:// store, or when asked for by name.
    if name == "PostgresStore":
        from bridge.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoredAlert",
    "UpsertResult",
    "open_store",
    "store_identity",
]


async def open_store(url: str) -> Store:
    """The opened, migrated store a ``STATUSBRIDGE_STORE_URL`` names (``sqlite:///file.db[?synchronous=…]``
    or ``postgres[ql]://…``); raises StoreError naming what is wrong with the URL or the database.
    """
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise StoreError(
                "STATUSBRIDGE_STORE_URL: sqlite URLs name a file: sqlite:///relative.db or sqlite:////abs.db"
            )
        if parts.netloc:
            raise StoreError(
                f"STATUSBRIDGE_STORE_URL: sqlite URLs have no host ({parts.netloc!r}): "
                "sqlite:///relative.db or sqlite:////abs.db"
            )
        options = parse_qs(parts.query)
        if unknown := sorted(set(options) - {"synchronous"}):
            raise StoreError(f"STATUSBRIDGE_STORE_URL: unknown sqlite option(s) {', '.join(unknown)}")
        sync = options.get("synchronous", ["normal"])[0].upper()
        if sync not in ("NORMAL", "FULL", "EXTRA"):
            raise StoreError("STATUSBRIDGE_STORE_URL: synchronous must be normal, full or extra")
        return await SQLiteStore.open(path, synchronous=sync)
    if parts.scheme in ("postgres", "postgresql"):
        # asyncpg is a core dependency (the image and the chart's replicas need it with no extra);
        # it is imported here, lazily, only so that a SQLite daemon never loads it.
        from bridge.store.postgres import PostgresStore  # noqa: PLC0415

        return await PostgresStore.open(url)
    raise StoreError(f"STATUSBRIDGE_STORE_URL: unsupported scheme {parts.scheme!r} (use sqlite:///path.db)")
