"""Storm benchmark: an alert storm during which the status page provider rate-limits.

10,000 alerts as 1,000 Alertmanager webhooks of 10 (a third distinct, each delivered by 3
"replicas"; firing and resolved interleaved; realistic labels) over 60 components in 20 incident
groups, against the sandbox with incident.io's rate limit on (bucket 1200, 20/s). Prints API calls
made, the minimum needed (one create per group plus one update per published change — counted on
the page, so every update the bridge made is taken as needed), their ratio, 429s received, and the
time from the last webhook to a correct page.

    python bench/storm.py [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import yaml
from common import Process, env_without_statusbridge, free_port, load, statusbridge_argv, wait_http

PAGE = "01HSTORMPAGE00000000000000"
SEVERITY = {"critical": "full_outage", "warning": "degraded_performance"}
RANK = {"operational": 0, "degraded_performance": 1, "partial_outage": 2, "full_outage": 3}


def seed(components: int) -> dict:
    comps = [{"id": f"COMP{i:03d}", "name": f"Component {i}"} for i in range(components)]
    return {
        "api_keys": [{"token": "storm-writer", "scopes": ["status_pages.publish_updates"]}],
        "rate_limit": {"capacity": 1200, "refill_per_second": 20},
        "status_pages": [{"id": PAGE, "name": "Storm", "structure": [{"component": c} for c in comps]}],
    }


def rules(groups: int, per_group: int) -> dict:
    return {
        "status_page": "Storm",
        "defaults": {"resolve_after": "2s"},
        "rules": [
            {
                "name": f"svc-{g}",
                "matchers": [f'service = "svc-{g}"'],
                "components": [f"Component {g * per_group + k}" for k in range(per_group)],
                "status": {"from_label": "severity", "map": SEVERITY, "default": "partial_outage"},
                "incident": {"name": f"Service {g} degraded"},
            }
            for g in range(groups)
        ],
    }


def storm(
    alerts: int, groups: int, batch: int, replicas: int, rng: random.Random
) -> tuple[list[bytes], dict[str, dict]]:
    """Webhook bodies (each distinct one repeated ``replicas`` times, shuffled a little) and the
    final state of every alert series."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    series = max(1, alerts // (batch * replicas) * batch // 3)
    final: dict[str, dict] = {}
    bodies: list[bytes] = []
    distinct = alerts // (batch * replicas)
    for n in range(distinct):
        items = []
        for _ in range(batch):
            i = rng.randrange(series)
            labels = {
                "alertname": "HighErrorRate",
                "service": f"svc-{i % groups}",
                "instance": f"10.0.{i // 250}.{i % 250}:9100",
                "job": "api",
                "severity": "critical" if i % 4 == 0 else "warning",
                "cluster": "prod-eu-1",
            }
            firing = rng.random() < 0.7 or n < distinct // 4
            key = json.dumps(labels, sort_keys=True)
            alert = {
                "status": "firing" if firing else "resolved",
                "labels": labels,
                "annotations": {"summary": "errors"},
                "startsAt": start.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z" if firing else datetime.now(UTC).isoformat(),
            }
            items.append(alert)
            final[key] = alert
        body = json.dumps({"version": "4", "status": "firing", "receiver": "storm", "alerts": items}).encode()
        bodies.extend([body] * replicas)
    # Replicas deliver at slightly different moments.
    for i in range(len(bodies) - 1):
        if rng.random() < 0.3:
            bodies[i], bodies[i + 1] = bodies[i + 1], bodies[i]
    # the last delivery of each series decides; replay order is delivery order
    ordered: dict[str, dict] = {}
    for body in bodies:
        for a in json.loads(body)["alerts"]:
            ordered[json.dumps(a["labels"], sort_keys=True)] = a
    return bodies, ordered


def expected(final: dict[str, dict], groups: int, per_group: int) -> dict[str, str]:
    want = {f"COMP{i:03d}": "operational" for i in range(groups * per_group)}
    for alert in final.values():
        if alert["status"] != "firing":
            continue
        g = int(alert["labels"]["service"].split("-")[1])
        status = SEVERITY.get(alert["labels"]["severity"], "partial_outage")
        for k in range(per_group):
            cid = f"COMP{g * per_group + k:03d}"
            if RANK[status] > RANK[want[cid]]:
                want[cid] = status
    return want


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(42)
    tmp = Path(tempfile.mkdtemp(prefix="sb-storm-"))
    per_group = args.components // args.groups
    (tmp / "seed.yaml").write_text(yaml.safe_dump(seed(args.components)))
    (tmp / "rules.yaml").write_text(yaml.safe_dump(rules(args.groups, per_group)))
    sb_port, port = free_port(), free_port()
    sandbox = Process(
        statusbridge_argv("sandbox", "--port", str(sb_port), "--seed", str(tmp / "seed.yaml")),
        tmp / "sandbox.log",
    )
    sandbox.start()
    sb = f"http://127.0.0.1:{sb_port}"
    await wait_http(sb + "/", proc=sandbox.proc)
    env = env_without_statusbridge(
        STATUSBRIDGE_PORT=str(port),
        STATUSBRIDGE_WEBHOOK_AUTH="none",
        STATUSBRIDGE_STORE_URL=f"sqlite:///{tmp / 'storm.db'}",
        STATUSBRIDGE_RULES_PATH=str(tmp / "rules.yaml"),
        STATUSBRIDGE_INCIDENTIO_API_KEY="storm-writer",
        STATUSBRIDGE_INCIDENTIO_BASE_URL=sb,
        STATUSBRIDGE_MAX_NEW_INCIDENTS=str(args.groups),
        STATUSBRIDGE_LOG_LEVEL="warning",
    )
    bridge = Process(statusbridge_argv("serve"), tmp / "serve.log", env=env)
    bridge.start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc=bridge.proc)
        bodies, final = storm(args.alerts, args.groups, args.batch, args.replicas, rng)
        async with aiohttp.ClientSession() as session:
            # start-up calls (pre-flight, page structure) are not the storm's
            before = len(await (await session.get(sb + "/_sandbox/requests")).json())
        secs, _lat, fails = await load(
            f"http://127.0.0.1:{port}/webhooks/alertmanager", bodies, concurrency=8
        )
        assert fails == 0
        last_webhook = time.monotonic()
        want = expected(final, args.groups, per_group)
        async with aiohttp.ClientSession() as session:
            converged = None
            while time.monotonic() - last_webhook < args.timeout:
                state = await (await session.get(sb + "/_sandbox/state")).json()
                shown = state["components"][PAGE]
                if all(shown.get(c) == s for c, s in want.items()):
                    converged = time.monotonic() - last_webhook
                    break
                await asyncio.sleep(0.2)
            requests = await (await session.get(sb + "/_sandbox/requests")).json()
            state = await (await session.get(sb + "/_sandbox/state")).json()
        incidents = state["incidents"]
        per_group_count = {}
        for inc in incidents:
            per_group_count[inc["name"]] = per_group_count.get(inc["name"], 0) + 1
        made = len(requests) - before
        if args.verbose:
            for r in requests[before:]:
                print("   ", r["method"], r["path"], r["status"])
        needed = len(incidents) + sum(len(i["updates"]) - 1 for i in incidents)
        print(
            f"storm: {len(bodies)} webhooks ({args.replicas} replicas each), {args.alerts} alerts, {args.groups} groups, {args.components} components; sent in {secs:.1f}s"
        )
        print(f"  API calls made          {made}")
        print(
            f"  minimum needed          {needed}  (creates {len(incidents)} + updates {needed - len(incidents)})"
        )
        print(f"  ratio                   {made / max(needed, 1):.2f} (target <= 1.1)")
        print(
            f"  429s received           {sum(1 for r in requests[before:] if r['status'] == 429)} (target 0)"
        )
        print(f"  duplicate incidents     {sum(n - 1 for n in per_group_count.values() if n > 1)} (target 0)")
        print(
            f"  last webhook -> correct page: {converged:.1f}s"
            if converged is not None
            else f"  page NOT correct after {args.timeout}s"
        )
        return 0 if converged is not None else 1
    finally:
        bridge.stop()
        sandbox.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--components", type=int, default=60)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--verbose", action="store_true", help="list the API calls made")
    args = parser.parse_args()
    if args.short:
        args.alerts, args.groups, args.components, args.timeout = 600, 4, 12, 60
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
