"""Latency benchmark: webhook acknowledgement at a steady rate, and how fast a change reaches the page.

1. Ack latency: webhooks of 10 alerts sent open-loop at a steady ``--rate`` (100/s) for
   ``--seconds``, to ``statusbridge serve`` (SQLite, rules over 20 groups, publishing to the
   rate-limited sandbox) and, as the baseline in the same run, to a bare aiohttp app. Prints p50,
   p99 and max of both and their ratio.
2. Convergence: after the steady load, one webhook escalates a group (a) that was not published
   within the coalescing window and (b) that was just published, so its update must wait for the
   window. Prints last webhook -> sandbox correct for both, and (b) minus the window.

    python bench/latency.py [--short] [--rate 100] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import yaml
from common import Process, free_port, pct, wait_http, wait_port
from storm import PAGE, rules, seed, start_pair

from bridge.ingest.payloads import fingerprint

ROOT = Path(__file__).resolve().parents[1]
GROUPS, COMPONENTS = 20, 60
JSON = {"Content-Type": "application/json"}


def webhook(n: int, start: datetime, *, service: int | None = None, severity: str = "warning") -> bytes:
    alerts = []
    for j in range(10):
        i = (n * 10 + j) % 400
        labels = {
            "alertname": "HighErrorRate",
            "service": f"svc-{service if service is not None else i % GROUPS}",
            "instance": f"10.0.{i // 250}.{i % 250}:9100",
            "severity": severity if service is not None else "warning",
            "cluster": "prod-eu-1",
        }
        alerts.append(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "errors"},
                "startsAt": start.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": fingerprint(labels),
            }
        )
    return json.dumps({"version": "4", "status": "firing", "receiver": "bench", "alerts": alerts}).encode()


async def steady(url: str, rate: float, seconds: float, start: datetime) -> tuple[list[float], int]:
    """``rate`` webhooks/s for ``seconds``, open loop (see ``open_loop``)."""
    return await open_loop(url, [webhook(n, start) for n in range(int(rate * seconds))], rate)


async def open_loop(url: str, bodies: list[bytes], rate: float) -> tuple[list[float], int]:
    """Open loop: body n leaves at t0 + n/rate whether or not earlier ones were answered;
    returns (latencies, failures)."""
    latencies: list[float] = []
    failures = 0
    headers = {"Content-Type": "application/json"}

    async def one(session: aiohttp.ClientSession, body: bytes) -> None:
        nonlocal failures
        sent = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            failures += resp.status >= 300
        latencies.append(time.perf_counter() - sent)

    tasks = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        t0 = time.perf_counter()
        for n, body in enumerate(bodies):
            delay = t0 + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, body)))
        await asyncio.gather(*tasks)
    return latencies, failures


async def shown(session: aiohttp.ClientSession, sb: str, component: str) -> str:
    state = await (await session.get(sb + "/_sandbox/state")).json()
    return str(state["components"][PAGE].get(component))


async def converge(session: aiohttp.ClientSession, url: str, sb: str, group: int, start: datetime) -> float:
    """Seconds from an escalating webhook for ``group`` to its first component showing full outage."""
    component = f"COMP{group * (COMPONENTS // GROUPS):03d}"
    async with session.post(
        url, data=webhook(0, start, service=group, severity="critical"), headers=JSON
    ) as resp:
        assert resp.status == 200, await resp.text()
    sent = time.perf_counter()
    while await shown(session, sb, component) != "full_outage":
        if time.perf_counter() - sent > 60:
            raise AssertionError(f"group {group} not escalated after 60 s")
        await asyncio.sleep(0.01)
    return time.perf_counter() - sent


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="sb-latency-"))
    start = datetime.now(UTC) - timedelta(minutes=5)
    (tmp / "seed.yaml").write_text(yaml.safe_dump(seed(COMPONENTS)))
    (tmp / "rules.yaml").write_text(yaml.safe_dump(rules(GROUPS, COMPONENTS // GROUPS)))

    bare_port = free_port()
    bare = Process([sys.executable, str(ROOT / "bench" / "bare.py"), str(bare_port)], tmp / "bare.log")
    bare.start()
    await wait_port(bare_port)
    base, base_fail = await steady(f"http://127.0.0.1:{bare_port}/hook", args.rate, args.seconds, start)
    bare.stop()

    sandbox, sb, bridge, port = await start_pair(tmp, "latency", groups=GROUPS, coalesce=args.coalesce)
    url = f"http://127.0.0.1:{port}/webhooks/alertmanager"
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc=bridge.proc)
        ours, fails = await steady(url, args.rate, args.seconds, start)
        async with aiohttp.ClientSession() as session:
            # every group was opened during the load; wait out the coalescing window so that (a)
            # measures the pipeline alone, then (b) escalates a group published a moment ago
            await asyncio.sleep(args.coalesce + 0.5)
            fresh = await converge(session, url, sb, 1, start)
            held = await converge_after_publish(session, url, sb, start)
    finally:
        bridge.stop()
        sandbox.stop()
    print(
        f"latency: {len(ours)} webhooks of 10 alerts at {args.rate:.0f}/s for {args.seconds:.0f}s, open loop; "
        f"coalescing window {args.coalesce}s"
    )
    print(f"  {'':28s} {'p50':>8s} {'p99':>8s} {'max':>8s}  (ms)")
    for name, lat in (("bare aiohttp", base), ("statusbridge (SQLite)", ours)):
        print(f"  {name:28s} {pct(lat, 50) * 1e3:8.2f} {pct(lat, 99) * 1e3:8.2f} {max(lat) * 1e3:8.2f}")
    print(
        f"  ratio p50 {pct(ours, 50) / pct(base, 50):.1f}x, p99 {pct(ours, 99) / pct(base, 99):.1f}x the bare app; "
        f"failures {fails + base_fail}"
    )
    print(f"  convergence, group not published within the window: {fresh * 1e3:.0f} ms")
    print(
        f"  convergence, group published just before: {held * 1e3:.0f} ms "
        f"= window {args.coalesce * 1e3:.0f} ms + {(held - args.coalesce) * 1e3:.0f} ms"
    )
    return 0 if fails == 0 else 1


async def converge_after_publish(session: aiohttp.ClientSession, url: str, sb: str, start: datetime) -> float:
    """Escalate group 3 and, the moment the page shows it, change it again (its criticals resolve,
    an unmapped severity leaves it at partial outage): that update must wait out the coalescing
    window. Returns the second webhook -> page."""
    await converge(session, url, sb, 3, start)
    body = json.loads(webhook(1, start, service=3, severity="unmapped"))
    component = f"COMP{3 * (COMPONENTS // GROUPS):03d}"
    for alert in body["alerts"]:
        alert["labels"]["instance"] += "-b"
        alert["fingerprint"] = fingerprint(alert["labels"])
    crit = json.loads(webhook(0, start, service=3, severity="critical"))
    for alert in crit["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = datetime.now(UTC).isoformat()
    body["alerts"].extend(crit["alerts"])
    async with session.post(url, data=json.dumps(body).encode(), headers=JSON) as resp:
        assert resp.status == 200, await resp.text()
    sent = time.perf_counter()
    while await shown(session, sb, component) != "partial_outage":
        if time.perf_counter() - sent > 60:
            raise AssertionError("group 3 not updated after 60 s")
        await asyncio.sleep(0.01)
    return time.perf_counter() - sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="a tiny run that proves the script works")
    parser.add_argument("--rate", type=float, default=100.0, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--coalesce", type=float, default=2.0, help="the bridge's coalescing window (s)")
    args = parser.parse_args()
    if args.short:
        args.seconds = 2.0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
