"""Start-up job 6: the event loop's lag, sampled every ``pacing.LAG_PROBE`` into
``statusbridge_event_loop_lag_seconds``.

Everything of the daemon shares one event loop: a long pass, a big webhook parsed on it, or a
garbage-collector pause delays every acknowledgement and every other pass. A timer due at a known
instant that runs later says by how much; the chart's PrometheusRule alerts when the p99 stays
above 0.1 s (README: runbook "event loop lag").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from bridge import pacing
from bridge.web.resources import METRICS, STOPPING


async def sample_lag(
    observe: Callable[[float], None],
    stopping: asyncio.Event,
    *,
    interval: float = pacing.LAG_PROBE,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Until ``stopping`` is set: sleep ``interval``, then ``observe`` how much later than that it
    woke (seconds, never negative). ``clock`` and ``sleep`` are the loop's unless injected."""
    now = clock or asyncio.get_running_loop().time
    while not stopping.is_set():
        due = now() + interval
        await sleep(interval)
        observe(max(0.0, now() - due))


async def lag_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs the sampler until shutdown."""
    task = asyncio.create_task(sample_lag(app[METRICS].loop_lag.observe, app[STOPPING]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
