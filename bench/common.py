"""Shared pieces of the benchmarks: processes on loopback, the load generator, RSS readings.

Every benchmark measures its baseline in the same run (these machines are noisy) and prints
ratios; none of them is a timed test. ``--short`` runs a tiny version to prove the script works.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import ALERTMANAGER_BIN, Alertmanager, Process, free_port, statusbridge_argv, wait_http  # noqa: E402

__all__ = [
    "ALERTMANAGER_BIN",
    "Alertmanager",
    "Process",
    "free_port",
    "load",
    "rss_mb",
    "statusbridge_argv",
    "wait_http",
    "wait_port",
]


async def load(
    url: str, bodies: Sequence[bytes], *, concurrency: int = 16, headers: dict[str, str] | None = None
) -> tuple[float, list[float], int]:
    """POST every body with ``concurrency`` clients; returns (seconds, latencies, failures)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    failures = 0
    hdrs = {"Content-Type": "application/json", **(headers or {})}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=hdrs) as resp:
                await resp.read()
                if resp.status >= 300:
                    failures += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, failures


async def wait_port(port: int, timeout: float = 20.0) -> None:
    """Until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def rss_mb(pid: int) -> float:
    """Resident set size of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def env_without_statusbridge(**extra: str) -> dict[str, Any]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("STATUSBRIDGE_")}, **extra}
