"""Ingest benchmark: alerts/s accepted (2xx, durably stored) by ``statusbridge serve`` vs (a) a bare
aiohttp app answering 200 and (b) a real Alertmanager receiving the same alerts on its API v2 —
same load generator, same run. Also on PostgreSQL. Then the memory benchmark: peak RSS of fresh
processes holding ``--memory-alerts`` (10,000) alerts, statusbridge against Alertmanager.

    python bench/ingest.py [--short] [--alerts 30000] [--memory-alerts 10000] [--batch 100] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import yaml
from common import (
    ALERTMANAGER_BIN,
    Alertmanager,
    Process,
    env_without_statusbridge,
    free_port,
    load,
    peak_rss_mb,
    rss_mb,
    statusbridge_argv,
    wait_http,
    wait_port,
)

from bridge.ingest.payloads import fingerprint

ROOT = Path(__file__).resolve().parents[1]


def bench_labels(i: int) -> dict[str, str]:
    """Alert ``i``'s labels: 20 services, a third warnings, the rest critical."""
    return {
        "alertname": f"Bench{(i % 50)}",
        "instance": f"host-{i}",
        "job": "node",
        "service": f"svc-{i % 20}",
        "severity": "critical" if i % 3 else "warning",
    }


def webhook_bodies(
    total: int, batch: int, labels_of: Callable[[int], dict[str, str]] = bench_labels
) -> tuple[list[bytes], list[bytes]]:
    """The same alerts (alert ``i`` labelled ``labels_of(i)``) as Alertmanager webhooks (v4) and as
    API v2 posts."""
    now = datetime.now(UTC)
    hooks, api = [], []
    for start in range(0, total, batch):
        alerts = [
            {
                "labels": (labels := labels_of(i)),
                # Alertmanager's webhooks carry each alert's fingerprint; so do these.
                "fingerprint": fingerprint(labels),
                "annotations": {"summary": f"alert {i}"},
                "startsAt": (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
            }
            for i in range(start, min(total, start + batch))
        ]
        hooks.append(
            json.dumps(
                {
                    "version": "4",
                    "status": "firing",
                    "receiver": "bench",
                    "alerts": [{**a, "status": "firing", "endsAt": "0001-01-01T00:00:00Z"} for a in alerts],
                }
            ).encode()
        )
        api.append(
            json.dumps(
                [
                    {
                        **{k: v for k, v in a.items() if k != "fingerprint"},
                        "endsAt": (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                    }
                    for a in alerts
                ]
            ).encode()
        )
    return hooks, api


async def until_metric(url: str, name: str, value: float, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            text = await (await session.get(url)).text()
            if any(line == f"{name} {float(value)}" for line in text.splitlines()):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{name} never reached {value}")
            await asyncio.sleep(0.1)


async def serve_run(
    tmp: Path, label: str, url: str, hooks: list[bytes], alerts: int, concurrency: int, **extra: str
) -> tuple[float, float, float]:
    """``statusbridge serve`` on ``url`` takes ``hooks``: (alerts/s, idle RSS, peak RSS)."""
    port = free_port()
    env = env_without_statusbridge(
        STATUSBRIDGE_WEBHOOK_AUTH="none",
        STATUSBRIDGE_STORE_URL=url,
        STATUSBRIDGE_PORT=str(port),
        STATUSBRIDGE_LOG_LEVEL="warning",
        **extra,
    )
    serve = Process(statusbridge_argv("serve"), tmp / f"serve-{label}-{uuid.uuid4().hex[:6]}.log", env=env)
    serve.start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc=serve.proc)
        assert serve.proc is not None
        idle = rss_mb(serve.proc.pid)
        secs, _latencies, fails = await load(
            f"http://127.0.0.1:{port}/webhooks/alertmanager", hooks, concurrency=concurrency
        )
        assert fails == 0, (fails, serve.log()[-2000:])
        # Peak RSS counts once a reconcile pass has read (and evaluated) every stored alert.
        await until_metric(f"http://127.0.0.1:{port}/metrics", "statusbridge_alerts_active", alerts)
        return alerts / secs, idle, peak_rss_mb(serve.proc.pid)
    finally:
        serve.stop()


async def am_run(tmp: Path, api: list[bytes], alerts: int, concurrency: int) -> tuple[float, float, float]:
    """A real Alertmanager takes the same alerts on its API v2: (alerts/s, idle RSS, peak RSS)."""
    work = tmp / f"am-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    am = Alertmanager(work, f"http://127.0.0.1:{free_port()}/nowhere")
    await am.start()
    try:
        assert am.process.proc is not None
        idle = rss_mb(am.process.proc.pid)
        secs, _, fails = await load(f"{am.url}/api/v2/alerts", api, concurrency=concurrency)
        assert fails == 0
        return alerts / secs, idle, peak_rss_mb(am.process.proc.pid)
    finally:
        am.stop()


async def run(args: argparse.Namespace) -> int:
    hooks, api = webhook_bodies(args.alerts, args.batch)
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    results: dict[str, float] = {}

    bare_port = free_port()
    bare = Process([sys.executable, str(ROOT / "bench" / "bare.py"), str(bare_port)], tmp / "bare.log")
    bare.start()
    await wait_port(bare_port)
    secs, _, fails = await load(f"http://127.0.0.1:{bare_port}/hook", hooks, concurrency=args.concurrency)
    assert fails == 0
    results["bare aiohttp"] = args.alerts / secs
    bare.stop()

    stores = [("SQLite", f"sqlite:///{tmp / 'bench.db'}")]
    if args.postgres:
        stores.append(("PostgreSQL", f"{args.postgres}?schema=bench_{uuid.uuid4().hex[:8]}"))
    for label, url in stores:
        results[f"statusbridge ({label})"], _, _ = await serve_run(
            tmp, label, url, hooks, args.alerts, args.concurrency
        )
    if ALERTMANAGER_BIN:
        results["Alertmanager API v2"], _, _ = await am_run(tmp, api, args.alerts, args.concurrency)

    print(f"ingest: {args.alerts} alerts in webhooks of {args.batch}, {args.concurrency} clients")
    for name, rate in results.items():
        print(f"  {name:28s} {rate:10.0f} alerts/s")
    base = results["bare aiohttp"]
    for name, rate in results.items():
        if name.startswith("statusbridge"):
            line = f"  ratio {name} / bare aiohttp = {rate / base:.2f} (target >= 0.5)"
            if "Alertmanager API v2" in results:
                line += f"; / Alertmanager = {rate / results['Alertmanager API v2']:.2f} (target >= 0.5)"
            print(line)

    # Memory: fresh processes, each holding the same ``--memory-alerts`` alerts. The daemon runs
    # twice: with rules that match every alert (each is kept, evaluated and planned in every pass:
    # the worst case) and with rules that match none (alerts only stored and counted).
    hooks, api = webhook_bodies(args.memory_alerts, args.batch)
    rules = {
        "status_page": "Bench",
        "rules": [
            {"name": f"svc-{g}", "matchers": [f'service = "svc-{g}"'], "components": [f"Component {g}"]}
            for g in range(20)
        ],
    }
    (tmp / "all.yaml").write_text(yaml.safe_dump(rules))
    (tmp / "none.yaml").write_text(
        yaml.safe_dump({**rules, "rules": [{**rules["rules"][0], "matchers": ['service = "none"']}]})
    )
    if ALERTMANAGER_BIN:
        _, am_idle, am_peak = await am_run(tmp, api, args.memory_alerts, args.concurrency)
    print(f"memory: peak RSS holding {args.memory_alerts} alerts (idle in brackets), MB")
    for which in ("all", "none"):
        _, idle, peak = await serve_run(
            tmp,
            f"memory-{which}",
            f"sqlite:///{tmp / f'memory-{which}.db'}",
            hooks,
            args.memory_alerts,
            args.concurrency,
            STATUSBRIDGE_RULES_PATH=str(tmp / f"{which}.yaml"),
        )
        print(f"  statusbridge, rules match {which:4s} {peak:8.1f} ({idle:.1f})")
        if ALERTMANAGER_BIN:
            print(
                f"    ratio to Alertmanager {peak / am_peak:.2f} (target <= 1.0); what the alerts cost "
                f"(peak - idle): {peak - idle:.1f} MB vs {am_peak - am_idle:.1f} MB, "
                f"ratio {(peak - idle) / (am_peak - am_idle):.2f}"
            )
    if ALERTMANAGER_BIN:
        print(f"  Alertmanager                 {am_peak:8.1f} ({am_idle:.1f})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="a tiny run that proves the script works")
    parser.add_argument("--alerts", type=int, default=30_000, help="alerts for the ingest rates")
    parser.add_argument("--memory-alerts", type=int, default=10_000, help="alerts held for the memory figure")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres", default=None, help="also measure on this PostgreSQL URL")
    args = parser.parse_args()
    if args.short:
        args.alerts, args.memory_alerts, args.batch, args.concurrency = 400, 400, 100, 4
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
