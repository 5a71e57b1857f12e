"""The real-time check: how long a test waited for wall-clock time to pass (tests/conftest.py fails
it beyond a tolerance).

A test waits on real time in two ways, both measured here, on the main thread (the test's):

- ``time.sleep``;
- an event loop's ``select()`` that returned because its timeout expired with no I/O event: the
  loop had nothing to do but wait for a timer (``asyncio.sleep``, ``wait_for``'s timeout, a
  ``call_later``).

Waiting for I/O is not waiting on real time: a ``select()`` that returns with an event (a socket
answer from PostgreSQL or a subprocess, a worker thread's result posted through the loop's
self-pipe) costs nothing here, however long it took. Nor does the virtual-time loop's own short
look at its worker threads (:class:`bridge.timeline.clock._IdleSelector`): it waits for work in
flight, not for a timer. A busy loop spinning a fake sleep against a real clock waits in neither
and is not caught here; the rule against it is that clock and sleep come from one fake time.
"""

from __future__ import annotations

import selectors
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from bridge.timeline.clock import _IdleSelector

TOLERANCE_SECONDS = 0.005
"""Real waiting a test may do in all, unnoticed. A loop's ``select`` timeout is rounded up to
epoll's millisecond, and a timer due in under a millisecond (a library's ``call_later`` of a few
microseconds, the loop's clock-resolution slack) becomes a wait of about one: a handful of those
is scheduling, not waiting. Any wait a test means (a poll interval, a timeout, a back-off) is tens
of milliseconds or more, so 5 ms catches each of them and never the scheduling noise. A wait counts
for at most what it asked for (a timeout, a sleep's seconds): a loaded machine that returns late
adds scheduling delay, not waiting, so the check does not flake under load."""


@dataclass
class Waits:
    """The real waiting seen since the last :meth:`reset`."""

    seconds: float = 0.0
    count: int = 0
    longest: float = 0.0
    longest_what: str = ""
    samples: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.seconds, self.count, self.longest, self.longest_what = 0.0, 0, 0.0, ""
        self.samples.clear()

    def add(self, seconds: float, what: Callable[[], str]) -> None:
        self.seconds += seconds
        self.count += 1
        if seconds > self.longest:
            self.longest = seconds
            # Described only when it is the longest so far: a description costs a frame walk.
            self.longest_what = what() if seconds > TOLERANCE_SECONDS / 5 else "short waits"

    def describe(self) -> str:
        return (
            f"waited {self.seconds * 1000:.1f} ms on real time in {self.count} wait(s), the longest "
            f"{self.longest * 1000:.1f} ms: {self.longest_what}"
        )


WAITS = Waits()
_MAIN = threading.main_thread().ident
_IDLE_SELECT = _IdleSelector.select.__code__


def _timer_of(frame: Any) -> str:
    """The earliest timer of the loop that is selecting (the one whose wait expired)."""
    loop = frame.f_locals.get("self") if frame is not None else None
    scheduled = getattr(loop, "_scheduled", None)
    if scheduled:
        return f"an event loop waited for its timer {scheduled[0]!r}"[:400]
    return "an event loop waited for a timer"


def _caller_in_project() -> str:
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name != __file__ and ("/tests/" in name or "/bridge/" in name):
            return f"time.sleep at {name}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "time.sleep"


def install() -> None:
    """Measure real waiting process-wide (idempotent): wrap the selector class asyncio's loops use
    and ``time.sleep``."""
    selector_class: Any = type(selectors.DefaultSelector())
    original_select = selector_class.select
    if getattr(original_select, "measured", False):
        return

    def select(self: Any, timeout: float | None = None) -> Any:
        if timeout is None or timeout <= 0 or threading.get_ident() != _MAIN:
            return original_select(self, timeout)
        caller = sys._getframe(1)
        if caller.f_code is _IDLE_SELECT:
            return original_select(self, timeout)
        started = time.perf_counter()
        ready = original_select(self, timeout)
        if not ready:
            # What the timer asked for, not the scheduling delay of a loaded machine on top.
            WAITS.add(min(time.perf_counter() - started, timeout), lambda: _timer_of(caller))
        return ready

    select.measured = True  # type: ignore[attr-defined]
    selector_class.select = select
    original_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds <= 0 or threading.get_ident() != _MAIN:
            original_sleep(seconds)
            return
        started = time.perf_counter()
        original_sleep(seconds)
        WAITS.add(min(time.perf_counter() - started, seconds), _caller_in_project)

    time.sleep = sleep  # type: ignore[assignment]
