"""Scale benchmark (issue 16): how a reconcile pass, the event loop, webhook acks, escalations and
memory grow with the number of active alerts.

For each size N in ``--sizes`` and each rules variant — rules matching every alert (20 groups of
3 components) and rules matching 1 % of them — a fresh ``statusbridge serve`` (SQLite in a temp
dir, publishing to the rate-limited sandbox, admin token set) is loaded with N firing alerts by
webhook (batches of 100), and the page is awaited: every group the alerts open shows. Then:

1. **Pass cost, idle.** Three times, one webhook with a new alert that no rule matches triggers a
   pass with nothing else going on (a webhook re-sending stored alerts unchanged triggers none). The daemon has no pass-duration metric; ``/metrics`` has
   ``statusbridge_reconcile_runs_total`` (counted as a pass ends) and
   ``statusbridge_reconcile_lag_seconds`` (now minus the start of the last completed pass). Polled
   every 20 ms, the first scrape that shows the triggered pass has lag = its wall time (start to
   end: reading the store, evaluating, planning, any API call) plus at most one poll interval; the
   figure is the middle of [lag - interval, lag]. It is wall time on a loaded 2-core machine, not
   CPU time; the polls themselves cost the daemon a little.
2. **Steady load**, for ``--seconds``: 20 webhooks/s of 10 stored alerts, open loop, re-sent
   unchanged as Alertmanager repeats them (so N stays N, and they trigger no pass), plus an
   escalation every 2 s (one new critical alert of a group, in turn; a group's second turn
   resolves it again, so each turn changes the page). The passes under load are the escalations'
   (and the 60 s reconcile interval's). Measured:
   - webhook ack p50/p99/max, and the same load against the bare aiohttp app (``bare.py``)
     earlier in the same run, as the ratio;
   - escalation -> page: from the escalation webhook's 2xx until the sandbox's state shows the
     group's first component at the new status (polled every 20 ms), p50 and max;
   - pass wall time under load, by the same ``/metrics`` reading polled every 100 ms (passes that
     ended alone between two polls; ± 50 ms);
   - the longest event-loop stall, seen from outside: another process GETs ``/healthz`` every
     5 ms (one request at a time) and reports the longest gap between two answers, minus 5 ms.
     That includes the prober's own loop and scheduling on the shared cores; the same probe of
     the bare app under the same load is the floor.
3. **Memory and store.** Idle RSS (ready, empty), RSS and peak RSS (VmHWM) once the first pass
   has read all N alerts, and peak RSS at the end. Memory per held alert = (peak RSS after the
   first pass - idle RSS) / N, the SQLite cache included. A fresh Alertmanager takes the same N
   alerts on its API v2 (endsAt an hour ahead; ``ingest.py``'s ``am_run``): its alerts/s and
   (peak RSS after the last post - idle RSS) / N are the baselines. Peak, not current, RSS for
   both, as in ``ingest.py``: the same reading for both processes. Store size is the SQLite file
   plus its WAL at the end.

One table per variant, sizes as columns; after the smallest size each cell also shows its growth
factor from the smallest (xk). The bare app and Alertmanager run in the same run.

    python bench/scale.py [--short] [--sizes 1000,10000,50000,100000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import yaml
from common import ALERTMANAGER_BIN, Process, free_port, load, pct, peak_rss_mb, rss_mb, wait_http, wait_port
from ingest import am_run, webhook_bodies
from latency import open_loop, shown
from storm import PAGE, rules, seed, start_pair

ROOT = Path(__file__).resolve().parents[1]
GROUPS, PER_GROUP = 20, 3
RATE, ESCALATE_EVERY, PROBE_EVERY = 20.0, 2.0, 0.005
ADMIN = "scale-admin-token"
JSON = {"Content-Type": "application/json"}
VARIANTS = {"all": "rules match all (20 groups)", "1%": "rules match 1 % of the alerts"}


def labels_for(variant: str) -> Callable[[int], dict[str, str]]:
    """Alert ``i``'s labels: a warning of group ``i % 20`` ("all"), or for "1%" only every 100th
    alert is in a group (``i // 100 % 20``) and the others carry a service no rule matches."""

    def labels(i: int) -> dict[str, str]:
        if variant == "all":
            service = f"svc-{i % GROUPS}"
        else:
            service = f"svc-{i // 100 % GROUPS}" if i % 100 == 0 else f"other-{i % GROUPS}"
        return {
            "alertname": f"Bench{i % 50}",
            "instance": f"host-{i}",
            "job": "node",
            "service": service,
            "severity": "warning",
        }

    return labels


def groups_opened(variant: str, n: int) -> list[int]:
    return sorted(
        {i % GROUPS for i in range(n)} if variant == "all" else {i // 100 % GROUPS for i in range(0, n, 100)}
    )


def component(group: int) -> str:
    return f"COMP{group * PER_GROUP:03d}"


_FIRING: dict[int, bytes] = {}


def escalation(group: int, *, firing: bool) -> bytes:
    """One critical alert of ``group``: firing, or that same alert (same start) resolved now."""
    if group not in _FIRING:
        labels = {**labels_for("all")(group), "instance": "escalation", "severity": "critical"}
        _FIRING[group] = webhook_bodies(1, 1, lambda _i: labels)[0][0]
    if firing:
        return _FIRING[group]
    body = json.loads(_FIRING[group])
    for alert in body["alerts"]:
        alert["status"], alert["endsAt"] = "resolved", datetime.now(UTC).isoformat()
    return json.dumps(body).encode()


def trigger(k: int) -> bytes:
    """A new alert no rule matches: a change (so a pass follows) that changes nothing on the page.
    A webhook re-sending stored alerts unchanged triggers no pass."""
    labels = {**labels_for("all")(0), "service": "trigger", "instance": f"trigger-{k}"}
    return webhook_bodies(1, 1, lambda _i: labels)[0][0]


# --- readings of the daemon ------------------------------------------------------------------------


async def scrape(session: aiohttp.ClientSession, base: str) -> tuple[float, float, float]:
    """(passes completed, seconds since the last completed pass started, alerts active) from /metrics."""
    runs = lag = active = 0.0
    async with session.get(base + "/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith('statusbridge_reconcile_runs_total{outcome="ok"}'):
                runs = float(line.split()[-1])
            elif line.startswith("statusbridge_reconcile_lag_seconds "):
                lag = float(line.split()[-1])
            elif line.startswith("statusbridge_alerts_active "):
                active = float(line.split()[-1])
    return runs, lag, active


async def idle_pass(session: aiohttp.ClientSession, base: str, trigger: bytes, every: float = 0.02) -> float:
    """Wall seconds of the pass a webhook triggers (see the module docstring, 1.)."""
    async with session.post(base + "/webhooks/alertmanager", data=trigger, headers=JSON) as resp:
        assert resp.status < 300, await resp.text()
    acked = time.perf_counter()
    previous = acked
    deadline = acked + 120
    while time.perf_counter() < deadline:
        _, lag, _ = await scrape(session, base)
        now = time.perf_counter()
        if lag < now - acked:  # the last completed pass started after the trigger was stored
            return max(0.0, lag - (now - previous) / 2)
        previous = now
        await asyncio.sleep(every)
    raise AssertionError("no pass after the trigger within 120 s")


async def passes_under_load(session: aiohttp.ClientSession, base: str, stop: asyncio.Event) -> list[float]:
    """Wall seconds of the passes that ended alone between two polls 100 ms apart, until ``stop``."""
    out: list[float] = []
    runs, _, _ = await scrape(session, base)
    previous = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.1)
        now_runs, lag, _ = await scrape(session, base)
        now = time.perf_counter()
        if now_runs == runs + 1:
            out.append(max(0.0, lag - (now - previous) / 2))
        runs, previous = now_runs, now
    return out


async def page_ready(session: aiohttp.ClientSession, base: str, sb: str, n: int, groups: list[int]) -> float:
    """Until the first pass has counted all ``n`` alerts and the page shows every opened group."""
    started = time.perf_counter()
    while True:
        _, _, active = await scrape(session, base)
        if active >= n:
            page = (await (await session.get(sb + "/_sandbox/state")).json())["components"][PAGE]
            if all(page.get(component(g)) == "degraded_performance" for g in groups):
                return time.perf_counter() - started
        if time.perf_counter() - started > 120 + n / 500:
            raise AssertionError(f"page not ready with {n} alerts (active {active})")
        await asyncio.sleep(0.1)


async def to_page(
    session: aiohttp.ClientSession, base: str, sb: str, group: int, firing: bool
) -> float | None:
    """Seconds from an escalation webhook's 2xx to the page showing it (None after 60 s)."""
    async with session.post(
        base + "/webhooks/alertmanager", data=escalation(group, firing=firing), headers=JSON
    ) as r:
        assert r.status < 300, await r.text()
    sent = time.perf_counter()
    want = "full_outage" if firing else "degraded_performance"
    while time.perf_counter() - sent < 60:
        if await shown(session, sb, component(group)) == want:
            return time.perf_counter() - sent
        await asyncio.sleep(0.02)
    return None


# --- the /healthz prober (a process of its own) ---------------------------------------------------


async def probe(url: str, seconds: float) -> None:
    """GET ``url`` every 5 ms, one at a time, for ``seconds``; print the longest gap between answers."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        async with session.get(url) as resp:
            await resp.read()
        print("ready", flush=True)
        answers: list[float] = []
        t0 = next_send = time.perf_counter()
        while (now := time.perf_counter()) - t0 < seconds:
            if next_send > now:
                await asyncio.sleep(next_send - now)
            next_send = time.perf_counter() + PROBE_EVERY
            async with session.get(url) as resp:
                await resp.read()
            answers.append(time.perf_counter())
    gaps = [b - a for a, b in itertools.pairwise(answers)]
    print(json.dumps({"answers": len(answers), "max_gap": max(gaps, default=0.0)}), flush=True)


async def start_probe(url: str, seconds: float) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--probe",
        url,
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"ready"
    return proc


async def probe_result(proc: asyncio.subprocess.Process) -> float:
    """The longest stall the prober saw: its longest gap minus the 5 ms period."""
    out, _ = await proc.communicate()
    return max(0.0, json.loads(out.decode().strip().splitlines()[-1])["max_gap"] - PROBE_EVERY)


# --- one run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one size of one variant measured (seconds, MB)."""

    pass_idle: list[float] = field(default_factory=list)
    pass_load: list[float] = field(default_factory=list)
    stall: float = 0.0
    acks: list[float] = field(default_factory=list)
    to_page: list[float | None] = field(default_factory=list)
    idle_rss: float = 0.0
    rss_after_pass: float = 0.0
    peak_after_pass: float = 0.0
    peak_rss: float = 0.0
    store_mb: float = 0.0
    ingest_rate: float = 0.0
    failures: int = 0
    groups_open: int = 0


def steady_bodies(n: int, variant: str, seconds: float) -> list[bytes]:
    """The steady load: webhooks of 10 of the N stored alerts, in turn."""
    hooks, _ = webhook_bodies(min(n, int(RATE * seconds) * 10), 10, labels_for(variant))
    return [hooks[k % len(hooks)] for k in range(int(RATE * seconds))]


async def daemon_run(tmp: Path, variant: str, n: int, args: argparse.Namespace) -> Run:
    work = tmp / f"{variant.strip('%')}-{n}"
    work.mkdir()
    (work / "seed.yaml").write_text(yaml.safe_dump(seed(GROUPS * PER_GROUP)))
    (work / "rules.yaml").write_text(yaml.safe_dump(rules(GROUPS, PER_GROUP)))
    hooks, _ = webhook_bodies(n, 100, labels_for(variant))
    bodies = steady_bodies(n, variant, args.seconds)
    opened = groups_opened(variant, n)
    run = Run()
    sandbox, sb, bridge, port = await start_pair(
        work, "scale", groups=GROUPS, coalesce=args.coalesce, STATUSBRIDGE_ADMIN_TOKEN=ADMIN
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(base + "/healthz", proc=bridge.proc)
        assert bridge.proc is not None
        pid = bridge.proc.pid
        run.idle_rss = rss_mb(pid)
        secs, _, fails = await load(base + "/webhooks/alertmanager", hooks, concurrency=8)
        assert fails == 0, bridge.log()[-2000:]
        run.ingest_rate = n / secs
        async with aiohttp.ClientSession() as session:
            await page_ready(session, base, sb, n, opened)
            run.rss_after_pass, run.peak_after_pass = rss_mb(pid), peak_rss_mb(pid)
            for k in range(3):
                run.pass_idle.append(await idle_pass(session, base, trigger(k)))
            # every group was published a moment ago: let its coalescing window pass, so that the
            # escalations measure the pipeline, not the window
            await asyncio.sleep(args.coalesce)
            prober = await start_probe(base + "/healthz", args.seconds)
            stop = asyncio.Event()
            poller = asyncio.create_task(passes_under_load(session, base, stop))

            async def escalations() -> list[float | None]:
                out = []
                for k in range(int(args.seconds / ESCALATE_EVERY)):
                    started = time.perf_counter()
                    group, turn = opened[k % len(opened)], k // len(opened)
                    out.append(asyncio.create_task(to_page(session, base, sb, group, turn % 2 == 0)))
                    await asyncio.sleep(max(0.0, ESCALATE_EVERY - (time.perf_counter() - started)))
                return list(await asyncio.gather(*out))

            (run.acks, run.failures), run.to_page = await asyncio.gather(
                open_loop(base + "/webhooks/alertmanager", bodies, RATE), escalations()
            )
            stop.set()
            run.pass_load = await poller
            run.stall = await probe_result(prober)
            # the admin API's view: one open incident per group the alerts opened, none else
            async with session.get(
                base + "/api/v1/state", headers={"Authorization": f"Bearer {ADMIN}"}
            ) as resp:
                assert resp.status == 200, await resp.text()
                state = await resp.json()
            run.groups_open = sum(
                1
                for g in state["groups"]
                if (g["published"] or {}).get("incident_status") not in (None, "resolved")
            )
        run.peak_rss = peak_rss_mb(pid)
        run.store_mb = (
            sum(p.stat().st_size for p in work.glob("scale.db*") if not p.name.endswith("-shm")) / 2**20
        )
    finally:
        bridge.stop()
        sandbox.stop()
    return run


async def bare_run(tmp: Path, bodies: list[bytes], seconds: float) -> tuple[list[float], float]:
    """The same steady load against the bare aiohttp app, with the same prober: (acks, stall)."""
    port = free_port()
    bare = Process([sys.executable, str(ROOT / "bench" / "bare.py"), str(port)], tmp / "bare.log")
    bare.start()
    try:
        await wait_port(port)
        prober = await start_probe(f"http://127.0.0.1:{port}/healthz", seconds)
        acks, fails = await open_loop(f"http://127.0.0.1:{port}/hook", bodies, RATE)
        assert fails == 0
        return acks, await probe_result(prober)
    finally:
        bare.stop()


# --- the report ------------------------------------------------------------------------------------


def row(name: str, values: list[float | None], fmt: str, width: int) -> str:
    cells = []
    first = values[0]
    for k, v in enumerate(values):
        if v is None:
            cells.append(f"{'n/a':>{width}s}")
            continue
        text = format(v, fmt)
        if k and first:
            text += f" x{v / first:.1f}"
        cells.append(f"{text:>{width}s}")
    return f"  {name:36s}" + "".join(cells)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def report(
    variant: str,
    sizes: list[int],
    runs: list[Run],
    am: list[tuple[float, float, float] | None],
    bare: tuple[list[float], float],
    args: argparse.Namespace,
) -> None:
    width = 18
    bare_acks, bare_stall = bare
    print(
        f"scale, {VARIANTS[variant]}: N alerts loaded, then {RATE:.0f} webhooks/s of 10 alerts and an "
        f"escalation every {ESCALATE_EVERY:.0f} s for {args.seconds:.0f} s; coalescing window {args.coalesce} s"
    )
    print(f"  {'active alerts':36s}" + "".join(f"{n:>{width},d}" for n in sizes))

    def line(name: str, values: list[float | None], fmt: str) -> None:
        print(row(name, values, fmt, width))

    line("reconcile pass, idle, median (s)", [median(r.pass_idle) for r in runs], ".3f")
    line("reconcile pass, under load, median (s)", [median(r.pass_load) for r in runs], ".2f")
    line("  longest pass under load (s)", [max(r.pass_load, default=None) for r in runs], ".2f")
    line("longest event-loop stall, probe (ms)", [r.stall * 1e3 for r in runs], ".0f")
    line("webhook ack p50 (ms)", [pct(r.acks, 50) * 1e3 for r in runs], ".1f")
    line("webhook ack p99 (ms)", [pct(r.acks, 99) * 1e3 for r in runs], ".1f")
    line("webhook ack max (ms)", [max(r.acks) * 1e3 for r in runs], ".0f")
    line("  ack p99 / bare aiohttp p99", [pct(r.acks, 99) / pct(bare_acks, 99) for r in runs], ".0f")
    line("escalation -> page p50 (s)", [median([t for t in r.to_page if t is not None]) for r in runs], ".2f")
    line(
        "  escalation -> page max (s)",
        [max((t for t in r.to_page if t is not None), default=None) for r in runs],
        ".2f",
    )
    line("peak RSS (MB)", [r.peak_rss for r in runs], ".0f")
    line("  idle RSS (MB)", [r.idle_rss for r in runs], ".0f")
    line("  RSS after the first pass (MB)", [r.rss_after_pass for r in runs], ".0f")
    line("  peak RSS after the first pass (MB)", [r.peak_after_pass for r in runs], ".0f")
    per_alert = [(r.peak_after_pass - r.idle_rss) * 1024 / n for r, n in zip(runs, sizes, strict=True)]
    line("memory per held alert, peak - idle (KB)", list(per_alert), ".2f")
    if any(am):
        per_am = [None if a is None else (a[2] - a[1]) * 1024 / n for a, n in zip(am, sizes, strict=True)]
        line("  Alertmanager, per held alert (KB)", per_am, ".2f")
        line(
            "  ratio ours / Alertmanager",
            [None if not a else ours / a for ours, a in zip(per_alert, per_am, strict=True)],
            ".2f",
        )
    line("store size, SQLite + WAL (MB)", [r.store_mb for r in runs], ".1f")
    line("ingest while loading (alerts/s)", [r.ingest_rate for r in runs], ".0f")
    if any(am):
        line("  Alertmanager API v2 (alerts/s)", [None if a is None else a[0] for a in am], ".0f")
    escalations = sum(len(r.to_page) for r in runs)
    missed = sum(t is None for r in runs for t in r.to_page)
    print(
        f"  bare aiohttp, same load: ack p50 {pct(bare_acks, 50) * 1e3:.1f} ms, p99 {pct(bare_acks, 99) * 1e3:.1f} ms, "
        f"max {max(bare_acks) * 1e3:.0f} ms; longest stall {bare_stall * 1e3:.0f} ms"
    )
    print(
        f"  escalations {escalations}, not on the page within 60 s: {missed}; failed webhooks {sum(r.failures for r in runs)}"
    )
    print(f"  open incidents (admin API) per size: {', '.join(str(r.groups_open) for r in runs)}")


async def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="sb-scale-"))
    started = time.perf_counter()
    bare = await bare_run(tmp, steady_bodies(sizes[0], "all", args.seconds), args.seconds)
    am: list[tuple[float, float, float] | None] = []
    for n in sizes:
        if ALERTMANAGER_BIN:
            _, api = webhook_bodies(n, 100, labels_for("all"))
            am.append(await am_run(tmp, api, n, 8))
        else:
            am.append(None)
    results = {
        variant: [await daemon_run(tmp, variant, n, args) for n in sizes]
        for variant in args.variants.split(",")
    }
    for variant, runs in results.items():
        report(variant, sizes, runs, am, bare, args)
    print(f"scale: done in {time.perf_counter() - started:.0f} s")
    ok = all(r.failures == 0 and None not in r.to_page for runs in results.values() for r in runs)
    if ok:  # the stores of the large sizes are hundreds of MB; a failed run keeps them and the logs
        shutil.rmtree(tmp)
    else:
        print(f"scale: stores and logs kept in {tmp}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", action="store_true", help="a tiny run that proves the script works")
    parser.add_argument("--sizes", default="1000,10000,50000,100000", help="active alerts, comma-separated")
    parser.add_argument("--variants", default="all,1%", help="rules variants: all, 1%%")
    parser.add_argument("--seconds", type=float, default=30.0, help="steady load per size and variant")
    parser.add_argument("--coalesce", type=float, default=2.0, help="the bridge's coalescing window (s)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # internal: run as the /healthz prober
    args = parser.parse_args()
    if args.probe:
        asyncio.run(probe(args.probe, args.seconds))
        return 0
    if args.short:
        args.sizes, args.seconds = "200,1000", 4.0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
