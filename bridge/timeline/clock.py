"""Virtual time for a whole process: an asyncio loop whose clock jumps to the next timer when idle.

A timeline runs the real daemon — aiohttp server and client, the SQLite store, APScheduler, the
sandbox — in one process. Every one of them reads time from the event loop (``loop.time()`` behind
``asyncio.sleep``, timeouts and ``call_later``) or from the ``now()`` derived from it here, so one
virtual clock drives them all. The loop advances that clock only when nothing is in flight:

- no callback is ready and no socket is readable (a real ``select`` with no timeout says so);
- no work is running in a thread the loop will hear back from: the default executor (counted
  here) and aiosqlite's connection threads (idle only when blocked on an empty request queue,
  seen twice around a real pause that lets a woken thread take the GIL).

Then it moves straight to the earliest scheduled timer. Real time spent on I/O costs no virtual
time, and no virtual time passes while I/O is under way: a timeline gives the same answer on a
loaded CI machine as on an idle laptop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import selectors
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

_T = TypeVar("_T")

IDLE_CHECK_SECONDS = 0.0001
"""Real pause between the two looks at the worker threads (see the module docstring)."""


def current_frames() -> dict[int, Any]:
    """``sys._current_frames()`` with the garbage collector held off.

    On CPython 3.11 the call holds the runtime's thread-list lock while it allocates its result;
    an allocation that starts a collection runs finalizers that may need that same lock, and the
    process deadlocks inside C, GIL held, where no watchdog or signal can reach it (CPython
    gh-106883: not fixed in 3.11, whose backport of this very remedy was not merged). That is
    what hung CI's model test, about once in a few thousand timelines. Deferring a collection
    for the length of one call costs nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return sys._current_frames()
    finally:
        if enabled:
            gc.enable()


def _aiosqlite_worker() -> tuple[Callable[..., Any] | None, int | None]:
    """aiosqlite's worker function and the line where it blocks for the next request."""
    try:
        from aiosqlite import core  # noqa: PLC0415 (optional: only when the store is SQLite)
    except ImportError:  # pragma: no cover - aiosqlite is a core dependency
        return None, None
    worker = getattr(core, "_connection_worker_thread", None)
    if worker is None:
        raise RuntimeError("virtual time: aiosqlite's worker thread is not where it used to be")
    lines, first = inspect.getsourcelines(worker)
    for offset, line in enumerate(lines):
        if ".get()" in line:
            return worker, first + offset
    raise RuntimeError("virtual time: cannot find where aiosqlite's worker waits for requests")


class _IdleSelector(selectors.BaseSelector):
    """The loop's selector, made to jump the clock instead of sleeping while all is idle."""

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._inner = inner
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Any:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        while True:
            ready = self._inner.select(0)
            if ready or timeout == 0:
                return ready
            if self._loop.busy():
                ready = self._inner.select(IDLE_CHECK_SECONDS)
                if ready:
                    return ready
                continue
            # Idle threads posted their results before going idle: one last look catches them.
            ready = self._inner.select(0)
            if ready:
                return ready
            if self._loop.wake_settled():
                return []
            if timeout is None:
                # Nothing scheduled and nothing in flight: only a thread we do not know of (or a
                # signal) can wake the loop; wait for it in real time.
                return self._inner.select(None)
            self._loop.advance(timeout)
            return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on virtual time (see the module docstring)."""

    def __init__(self, start: datetime) -> None:
        self._offset = 0.0
        self.start = start.astimezone(UTC)
        """The virtual instant at loop time 0."""
        self._settle: list[asyncio.Future[None]] = []
        self._executor_jobs = 0
        self._worker, self._worker_line = _aiosqlite_worker()
        inner = selectors.DefaultSelector()
        super().__init__(selector=_IdleSelector(inner, self))

    def time(self) -> float:
        """Virtual seconds since the loop's start; moves only when the loop is idle (or by advance)."""
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (never back)."""
        self._offset += max(0.0, seconds)

    def now(self) -> datetime:
        """The virtual wall clock: ``start`` plus the virtual seconds elapsed."""
        return self.start + timedelta(seconds=self._offset)

    async def settle(self) -> None:
        """Return once everything due now has run: the loop is idle and would move the clock."""
        future: asyncio.Future[None] = self.create_future()
        self._settle.append(future)
        await future

    def wake_settled(self) -> bool:
        """Wake the :meth:`settle` callers instead of moving the clock; whether there were any."""
        waiting = [f for f in self._settle if not f.done()]
        self._settle.clear()
        for future in waiting:
            future.set_result(None)
        return bool(waiting)

    def run_in_executor(self, executor: Executor | None, func: Callable[..., _T], *args: Any) -> Any:  # type: ignore[override]
        """As asyncio's, and counted: while a thread job is in flight the clock does not move."""
        future = super().run_in_executor(executor, func, *args)
        self._executor_jobs += 1

        def done(_: Any) -> None:
            self._executor_jobs -= 1

        future.add_done_callback(done)
        return future

    def _workers(self) -> Iterator[tuple[threading.Thread, Any, Any]]:
        """Each aiosqlite worker thread, with its request queue and its current frame."""
        worker = self._worker
        if worker is None:
            return
        frames = current_frames()
        for thread in threading.enumerate():
            if getattr(thread, "_target", None) is not worker:
                continue
            args = getattr(thread, "_args", ())
            frame = frames.get(thread.ident) if thread.ident is not None else None
            yield thread, (args[0] if args else None), frame

    def _threads_idle(self) -> bool:
        code = self._worker.__code__ if self._worker is not None else None
        for _, queue, frame in self._workers():
            if queue is None or not queue.empty():
                return False
            if frame is None or frame.f_code is not code or frame.f_lineno != self._worker_line:
                return False
        return True

    def waiting_on(self) -> str:
        """What keeps the clock from moving, in words (for a run that seems stuck)."""
        parts = [f"{self._executor_jobs} executor job(s) in flight"]
        for thread, queue, frame in self._workers():
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"
            pending = "?" if queue is None else ("empty" if queue.empty() else "requests waiting")
            parts.append(f"aiosqlite thread {thread.name} at {where}, queue {pending}")
        # BaseEventLoop's own queues (not typed): how much the loop itself still has to do.
        timers = len(getattr(self, "_scheduled", ()))
        ready = len(getattr(self, "_ready", ()))
        parts.append(f"{timers} timer(s) scheduled, {ready} callback(s) ready")
        return "; ".join(parts)

    def busy(self) -> bool:
        """Whether anything outside the loop's own timers is still working for it."""
        if self._executor_jobs:
            return True
        if not self._threads_idle():
            return True
        # A thread seen idle may have just been handed work: let it take the GIL, look again.
        # (Whatever this pause sees stays readable: the selector is level-triggered.)
        threading.Event().wait(IDLE_CHECK_SECONDS)
        return not self._threads_idle()


class _VirtualDatetime(datetime):
    """``datetime`` whose ``now()`` is the running virtual loop's (for libraries that call it)."""

    loop: VirtualTimeLoop | None = None

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        loop = cls.loop
        if loop is None:
            return datetime.now(tz)
        now = loop.now()
        return now.astimezone(tz) if tz is not None else now.astimezone().replace(tzinfo=None)


@contextlib.contextmanager
def scheduler_on(loop: VirtualTimeLoop) -> Iterator[None]:
    """Make APScheduler read the virtual clock while the context lasts.

    APScheduler 3 takes ``datetime.now()`` when it decides which jobs are due; it has no clock
    parameter, so its module's ``datetime`` is swapped for one that asks ``loop``.
    """
    from apscheduler.schedulers import base  # noqa: PLC0415

    original = base.datetime
    _VirtualDatetime.loop = loop
    base.datetime = _VirtualDatetime
    try:
        yield
    finally:
        base.datetime = original
        _VirtualDatetime.loop = None
