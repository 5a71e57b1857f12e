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

from bridge.ingest.payloads import fingerprint

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


Phase = tuple[str, list[bytes]]


def _alert(g: int, i: int, severity: str, *, firing: bool, start: datetime) -> dict:
    labels = {
        "alertname": "HighErrorRate",
        "service": f"svc-{g}",
        "instance": f"10.0.{g}.{i}:9100",
        "job": "api",
        "severity": severity,
        "cluster": "prod-eu-1",
    }
    return {
        "status": "firing" if firing else "resolved",
        "labels": labels,
        "annotations": {"summary": f"error rate above 5% on {labels['instance']}"},
        "startsAt": start.isoformat(),
        "endsAt": "0001-01-01T00:00:00Z" if firing else datetime.now(UTC).isoformat(),
        "fingerprint": fingerprint(labels),
    }


def storm(
    alerts: int, groups: int, batch: int, replicas: int, rng: random.Random
) -> tuple[list[Phase], dict[int, str], list[int]]:
    """Three phases of webhooks, each distinct body delivered ``replicas`` times (partly reordered,
    as from Alertmanager replicas), firing and resolved interleaved within each phase:

    1. open: every group fires warnings (instances flap: some resolve and fire again);
    2. escalate: half the groups get criticals;
    3. recover: a quarter of the groups resolve entirely, a quarter lose their criticals.

    Returns the phases, each group's final worst severity ("" when resolved), and per phase the
    groups whose published state must change."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    distinct = max(3, alerts // (batch * replicas))
    per_phase = [distinct // 2, distinct // 4, distinct - distinct // 2 - distinct // 4]
    escalated = list(range(0, groups, 2))
    resolved_groups = list(range(1, groups, 4)) + list(range(0, groups, 4))[: groups // 8]
    calmed = [g for g in escalated if g not in resolved_groups][: groups // 4]
    final = dict.fromkeys(range(groups), "warning")
    for g in escalated:
        final[g] = "critical"
    for g in calmed:
        final[g] = "warning"
    for g in resolved_groups:
        final[g] = ""
    width = 8  # warning instances per group
    phases: list[Phase] = []

    def bodies(items_for: list[list[dict]]) -> list[bytes]:
        out: list[bytes] = []
        for items in items_for:
            body = json.dumps({"version": "4", "status": "firing", "receiver": "storm", "alerts": items})
            out.extend([body.encode()] * replicas)
        for i in range(len(out) - 1):
            if rng.random() < 0.3:
                out[i], out[i + 1] = out[i + 1], out[i]
        return out

    def webhooks(n: int, make: list[tuple[int, int, str, bool]]) -> list[list[dict]]:
        """``n`` webhooks of ``batch`` alerts drawn in turn from ``make`` (group, instance, severity,
        firing), with late resolves of the same series' previous instances mixed in."""
        hooks: list[list[dict]] = []
        for k in range(n):
            items = []
            for j in range(batch):
                g, i, sev, firing = make[(k * batch + j) % len(make)]
                if not firing or rng.random() < 0.8:
                    items.append(_alert(g, i, sev, firing=firing, start=start))
                else:  # a late resolve of the series' previous instance (an earlier start)
                    items.append(_alert(g, i, sev, firing=False, start=start - timedelta(minutes=30)))
            hooks.append(items)
        return hooks

    # Late resolves of earlier instances must not change what is published.
    opening = [(g, i, "warning", True) for g in range(groups) for i in range(width)]
    phases.append(("open", bodies(webhooks(per_phase[0], opening))))
    escalating = [(g, 100 + i, "critical", True) for g in escalated for i in range(2)]
    escalating += [(g, i, "warning", True) for g in range(groups) for i in range(width)]
    phases.append(("escalate", bodies(webhooks(per_phase[1], escalating))))
    recovering = [(g, i, "warning", False) for g in resolved_groups for i in range(width)]
    recovering += [
        (g, 100 + i, "critical", False)
        for g in set(resolved_groups) | set(calmed)
        if g in escalated
        for i in range(2)
    ]
    recovering += [
        (g, 100 + i, "critical", True)
        for g in escalated
        if g not in resolved_groups and g not in calmed
        for i in range(2)
    ]
    phases.append(("recover", bodies(webhooks(per_phase[2], recovering))))
    changes = [groups, len(escalated), len(calmed) + 2 * len(resolved_groups)]
    return phases, final, changes


def expected(final: dict[int, str], per_group: int) -> dict[str, str]:
    want = {}
    for g, sev in final.items():
        status = SEVERITY[sev] if sev else "operational"
        for k in range(per_group):
            want[f"COMP{g * per_group + k:03d}"] = status
    return want


async def start_pair(
    tmp: Path, name: str, *, groups: int, coalesce: float, **extra: str
) -> tuple[Process, str, Process, int]:
    """The sandbox (``tmp/seed.yaml``) and ``serve`` publishing to it with ``tmp/rules.yaml`` on a
    fresh SQLite file (``extra``: more ``STATUSBRIDGE_*`` settings): (sandbox, its URL, bridge, its
    port); the bridge is not yet ready."""
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
        STATUSBRIDGE_STORE_URL=f"sqlite:///{tmp / f'{name}.db'}",
        STATUSBRIDGE_RULES_PATH=str(tmp / "rules.yaml"),
        STATUSBRIDGE_INCIDENTIO_API_KEY="storm-writer",
        STATUSBRIDGE_INCIDENTIO_BASE_URL=sb,
        STATUSBRIDGE_MAX_NEW_INCIDENTS=str(groups),
        STATUSBRIDGE_COALESCE_WINDOW=f"{coalesce}s",
        STATUSBRIDGE_LOG_LEVEL="warning",
        **extra,
    )
    bridge = Process(statusbridge_argv("serve"), tmp / "serve.log", env=env)
    bridge.start()
    return sandbox, sb, bridge, port


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(42)
    tmp = Path(tempfile.mkdtemp(prefix="sb-storm-"))
    per_group = args.components // args.groups
    (tmp / "seed.yaml").write_text(yaml.safe_dump(seed(args.components)))
    (tmp / "rules.yaml").write_text(yaml.safe_dump(rules(args.groups, per_group)))
    sandbox, sb, bridge, port = await start_pair(tmp, "storm", groups=args.groups, coalesce=args.coalesce)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc=bridge.proc)
        phases, final, changes = storm(args.alerts, args.groups, args.batch, args.replicas, rng)
        async with aiohttp.ClientSession() as session:
            # start-up calls (pre-flight, page structure) are not the storm's
            before = len(await (await session.get(sb + "/_sandbox/requests")).json())
            sent = 0
            report = []
            for n, (name, bodies) in enumerate(phases):
                secs, _lat, fails = await load(
                    f"http://127.0.0.1:{port}/webhooks/alertmanager", bodies, concurrency=8
                )
                assert fails == 0
                sent += len(bodies)
                last_webhook = time.monotonic()
                if n == 0:
                    want_final = None
                    want = dict.fromkeys(
                        expected(dict.fromkeys(final, "warning"), per_group), "degraded_performance"
                    )
                elif n == 1:
                    esc = {g: ("critical" if g % 2 == 0 else "warning") for g in final}
                    want = expected(esc, per_group)
                else:
                    want = expected(final, per_group)
                    want_final = {g for g, sev in final.items() if not sev}
                converged = await _converge(
                    session, sb, want, want_final if n == 2 else None, last_webhook, args
                )
                report.append((name, len(bodies), secs, converged))
                if converged is None:
                    break
            requests = await (await session.get(sb + "/_sandbox/requests")).json()
            state = await (await session.get(sb + "/_sandbox/state")).json()
        incidents = state["incidents"]
        per_name: dict[str, int] = {}
        for inc in incidents:
            per_name[inc["name"]] = per_name.get(inc["name"], 0) + 1
        made = len(requests) - before
        if args.verbose:
            for r in requests[before:]:
                print("   ", r["method"], r["path"], r["status"])
        needed = sum(changes)
        alerts_sent = sum(len(json.loads(b)["alerts"]) for _, bodies in phases for b in bodies)
        print(
            f"storm: {sent} webhooks ({args.replicas} replicas each), {alerts_sent} alerts, {args.groups} groups, "
            f"{args.components} components, coalescing window {args.coalesce}s, resolve_after 2s"
        )
        for name, count, secs, converged in report:
            shown = f"{converged:.2f}s" if converged is not None else f"NOT correct after {args.timeout}s"
            print(
                f"  phase {name:9s} {count:4d} webhooks sent in {secs:5.2f}s; last webhook -> correct page {shown}"
            )
        print(f"  API calls made          {made}")
        print(
            f"  minimum needed          {needed}  (creates {changes[0]} + escalations {changes[1]} + "
            f"de-escalations and resolves {changes[2]})"
        )
        print(f"  ratio                   {made / max(needed, 1):.2f} (target <= 1.1)")
        print(
            f"  429s received           {sum(1 for r in requests[before:] if r['status'] == 429)} (target 0)"
        )
        print(f"  duplicate incidents     {sum(n - 1 for n in per_name.values() if n > 1)} (target 0)")
        wrong = [
            inc["name"]
            for inc in incidents
            if (inc["incident_status"] == "resolved") != (final[int(inc["name"].split()[1])] == "")
        ]
        print(f"  groups in the wrong final state: {len(wrong)} (target 0)")
        ok = all(c is not None for *_, c in report) and not wrong and len(per_name) == args.groups
        return 0 if ok else 1
    finally:
        bridge.stop()
        sandbox.stop()


async def _converge(
    session: aiohttp.ClientSession,
    sb: str,
    want: dict[str, str],
    resolved: set[int] | None,
    since: float,
    args: argparse.Namespace,
) -> float | None:
    """Seconds from ``since`` until the sandbox shows ``want`` (and, when given, exactly the groups
    ``resolved`` have resolved incidents); ``None`` after the timeout."""
    while time.monotonic() - since < args.timeout:
        state = await (await session.get(sb + "/_sandbox/state")).json()
        shown = state["components"][PAGE]
        ok = all(shown.get(c) == s for c, s in want.items())
        if ok and resolved is not None:
            done = {
                int(i["name"].split()[1]) for i in state["incidents"] if i["incident_status"] == "resolved"
            }
            ok = done == resolved
        if ok:
            return time.monotonic() - since
        await asyncio.sleep(0.05)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--components", type=int, default=60)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--coalesce", type=float, default=2.0, help="the bridge's coalescing window (s)")
    parser.add_argument("--verbose", action="store_true", help="list the API calls made")
    args = parser.parse_args()
    if args.short:
        args.alerts, args.groups, args.components, args.timeout = 600, 8, 24, 60
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
