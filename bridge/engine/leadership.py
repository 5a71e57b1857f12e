"""Leader election: every replica ingests; the one holding the store's lease reconciles.

Like controller-runtime's leader election, this is its own small loop around a lease the store
provides (:class:`bridge.store.base.Lease`). A replica without the lease asks for it every
``retry`` seconds, so one takes over within seconds of the leader's death (on PostgreSQL the
lease is a session lock, which ends with the session). A leader that loses its lease stops its
term at once; the store's epoch fence covers whatever write was already in flight. On SQLite the
lease is always held, so the same loop runs one term for the life of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from bridge import pacing
from bridge.observability import get_logger
from bridge.store.base import Lease, StoreError

log = get_logger(__name__)

Term = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""One term of leadership: runs until the event it is given is set (then returns promptly)."""


async def lead(
    lease: Lease,
    lost: asyncio.Event,
    term: Term,
    stopping: asyncio.Event,
    *,
    on_elected: Callable[[], None] = lambda: None,
    on_deposed: Callable[[], None] = lambda: None,
    retry: float = pacing.LEASE_RETRY,
) -> None:
    """Hold terms of leadership until ``stopping`` is set. ``lost`` is the event the lease sets
    when it is lost (its ``on_lost``); ``on_elected`` and ``on_deposed`` hear every change (for the state API)."""
    running: asyncio.Task[None] | None = None
    term_stop = asyncio.Event()
    try:
        while not stopping.is_set():
            if running is None:
                try:
                    epoch = await lease.try_acquire()
                except StoreError as exc:
                    log.warning("lease attempt failed", error=str(exc))
                    epoch = None
                if epoch is not None:
                    on_elected()
                    lost.clear()
                    term_stop = asyncio.Event()
                    log.info("reconcile lease acquired", epoch=epoch)
                    running = asyncio.create_task(term(term_stop))
            if lost.is_set() and running is not None:
                on_deposed()
                log.warning("reconcile lease lost; stopped publishing")
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                running = None
                lost.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stopping, lost), timeout=retry)
    finally:
        if running is not None:
            # A clean stop: the term finishes what it is doing (its stop event), not cancelled.
            term_stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        on_deposed()
        await lease.release()


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
