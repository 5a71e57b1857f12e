"""What the drills share: a storm with a known end state, a sender that behaves like Alertmanager
(re-sends until it gets a 2xx), ``statusbridge serve`` processes, and the check of the final page.

The storm runs over the sandbox seed's five components, one incident group each. Its phases open
every group (warnings), escalate some (criticals), then resolve some entirely and calm others; each
distinct webhook is delivered twice (two Alertmanager replicas), late resolves of the series'
earlier instances are mixed in. Every group has one episode, so "at most one incident per group"
(exactly one for the groups still firing) is the duplicate check.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bridge.ingest.payloads import fingerprint
from bridge.sandbox.app import SANDBOX_KEY
from tests.conftest import COMPONENTS, PAGE_ID, SandboxServer
from tests.e2e.harness import Process, free_port, statusbridge_argv, wait_http

SERVICES = {
    "api": "API",
    "dash": "Web/Dashboard",
    "site": "Web/Website",
    "db": "Database",
    "pay": "EU/Payments/Payments API",
}
SEVERITY = {"critical": "full_outage", "warning": "degraded_performance"}
ESCALATED = ("api", "dash", "db")
RESOLVED = ("site", "db")
CALMED = ("dash",)
"""``api`` ends critical, ``dash`` escalates then calms, ``db`` escalates then resolves, ``site``
resolves, ``pay`` stays at warning."""

RULES = "\n".join(
    [
        'status_page: "Acme Status"',
        "defaults:",
        "  open_after: 0s",
        "  resolve_after: 1s",
        "rules:",
        *(
            f"  - name: {svc}\n"
            f"    matchers: ['service = \"{svc}\"']\n"
            f'    components: ["{component}"]\n'
            "    status:\n"
            "      from_label: severity\n"
            "      map: {critical: full_outage, warning: degraded_performance}\n"
            "    incident:\n"
            f'      name: "Service {svc} degraded"'
            for svc, component in SERVICES.items()
        ),
    ]
)
WEBHOOK_TOKEN = "drill-webhook-token"
ADMIN_TOKEN = "drill-admin-token"


def _alert(svc: str, i: int, severity: str, *, firing: bool, start: datetime) -> dict[str, Any]:
    labels = {
        "alertname": "HighErrorRate",
        "service": svc,
        "instance": f"{svc}-{i}:9100",
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


@dataclass
class Storm:
    phases: list[list[bytes]]
    final: dict[str, str]
    """service -> final worst severity, "" when resolved."""
    instances: dict[tuple[str, str], str] = field(default_factory=dict)
    """(fingerprint, startsAt) -> the status its last delivery carried."""

    @property
    def deliveries(self) -> list[bytes]:
        return [b for phase in self.phases for b in phase]

    def expected_components(self) -> dict[str, str]:
        return {
            COMPONENTS[SERVICES[svc]]: SEVERITY[sev] if sev else "operational"
            for svc, sev in self.final.items()
        }


def make_storm(webhooks: int, rng: random.Random, *, batch: int = 10, replicas: int = 2) -> Storm:
    """About ``webhooks`` deliveries in three phases (half, a quarter, a quarter)."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    earlier = start - timedelta(minutes=30)
    distinct = max(3, webhooks // replicas)
    sizes = [distinct // 2, distinct // 4, distinct - distinct // 2 - distinct // 4]
    width = 6
    opening = [(s, i, "warning", True) for s in SERVICES for i in range(width)]
    escalating = opening + [(s, 100 + i, "critical", True) for s in ESCALATED for i in range(2)]
    recovering = [(s, i, "warning", False) for s in RESOLVED for i in range(width)]
    recovering += [(s, 100 + i, "critical", s not in RESOLVED + CALMED) for s in ESCALATED for i in range(2)]
    recovering += [(s, i, "warning", True) for s in SERVICES if s not in RESOLVED for i in range(width)]
    storm = Storm(phases=[], final={})
    for size, entries in zip(sizes, (opening, escalating, recovering), strict=True):
        bodies: list[bytes] = []
        for k in range(max(size, -(-len(entries) // batch))):
            items = []
            for j in range(batch):
                svc, i, sev, firing = entries[(k * batch + j) % len(entries)]
                late = firing and rng.random() < 0.2
                alert = _alert(svc, i, sev, firing=not late and firing, start=earlier if late else start)
                items.append(alert)
                key = (alert["fingerprint"], alert["startsAt"])
                # resolved is terminal for an instance, whatever order its deliveries come in
                storm.instances[key] = (
                    "resolved" if storm.instances.get(key) == "resolved" else alert["status"]
                )
            body = json.dumps({"version": "4", "status": "firing", "receiver": "drill", "alerts": items})
            bodies.extend([body.encode()] * replicas)
        for n in range(len(bodies) - 1):  # replicas deliver at slightly different moments
            if rng.random() < 0.3:
                bodies[n], bodies[n + 1] = bodies[n + 1], bodies[n]
        storm.phases.append(bodies)
    for svc in SERVICES:
        storm.final[svc] = (
            "" if svc in RESOLVED else "critical" if svc in ESCALATED and svc not in CALMED else "warning"
        )
    return storm


class Sender:
    """Delivers webhooks the way Alertmanager does: each one is re-sent until a 2xx answers it."""

    def __init__(self, urls: Callable[[], Sequence[str]], *, concurrency: int = 4) -> None:
        self._urls = urls
        self.concurrency = concurrency
        self.acked = 0
        self.refused: list[tuple[int, str]] = []

    async def deliver(self, bodies: Sequence[bytes], *, deadline: float = 120.0) -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        give_up = time.monotonic() + deadline
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {WEBHOOK_TOKEN}"}

        async def worker(session: aiohttp.ClientSession) -> None:
            while not queue.empty():
                body = queue.get_nowait()
                pending = list(self._urls())
                while pending:
                    if time.monotonic() > give_up:
                        raise AssertionError(f"a webhook was not accepted within {deadline}s")
                    url = pending[0]
                    try:
                        async with session.post(url, data=body, headers=headers) as resp:
                            text = await resp.text()
                            if resp.status < 300:
                                pending.pop(0)
                                continue
                            if resp.status < 500:
                                self.refused.append((resp.status, text))
                                pending.pop(0)
                                continue
                    except (TimeoutError, aiohttp.ClientError, OSError):
                        pass
                    pending = [u for u in pending if u in self._urls()] or pending
                    await asyncio.sleep(0.05)  # Alertmanager's retry back-off, shortened
                self.acked += 1

        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(worker(session) for _ in range(self.concurrency)))


class Daemon:
    """One ``statusbridge serve`` process with the drill's rules, restartable on the same store."""

    def __init__(
        self, tmp: Path, sandbox: SandboxServer, *, store_url: str | None = None, **env: str
    ) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        (tmp / "rules.yaml").write_text(RULES)
        self.env = {
            "STATUSBRIDGE_PORT": str(self.port),
            "STATUSBRIDGE_RULES_PATH": str(tmp / "rules.yaml"),
            "STATUSBRIDGE_STORE_URL": store_url or f"sqlite:///{tmp / 'bridge.db'}",
            "STATUSBRIDGE_INCIDENTIO_API_KEY": sandbox.writer_token,
            "STATUSBRIDGE_INCIDENTIO_BASE_URL": sandbox.url,
            "STATUSBRIDGE_INCIDENTIO_TIMEOUT": "5s",
            "STATUSBRIDGE_WEBHOOK_BEARER_TOKEN": WEBHOOK_TOKEN,
            "STATUSBRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
            "STATUSBRIDGE_COALESCE_WINDOW": "300ms",
            "STATUSBRIDGE_RECONCILE_INTERVAL": "2s",
            "STATUSBRIDGE_LOG_FORMAT": "json",
            **env,
        }
        self.process: Process | None = None

    @property
    def webhook(self) -> str:
        return self.url + "/webhooks/alertmanager"

    async def start(self) -> None:
        self.process = Process(statusbridge_argv("serve"), self.tmp / "bridge.log", env=self.env)
        self.process.start()
        await wait_http(self.url + "/healthz", proc=self.process.proc, timeout=30)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.proc is not None and self.process.proc.poll() is None

    def log(self) -> str:
        return self.process.log() if self.process else ""

    async def state(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s:
            async with s.get(
                self.url + "/api/v1/state", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            ) as r:
                assert r.status == 200, await r.text()
                return dict(await r.json())


def page_problems(sandbox: SandboxServer, storm: Storm) -> list[str]:
    """Why the sandbox's page is not the storm's end state (empty when it is)."""
    sb = sandbox.app[SANDBOX_KEY]
    problems = []
    for component_id, want in storm.expected_components().items():
        shown = sb.state.component_status(PAGE_ID, component_id)
        if shown != want:
            problems.append(f"component {component_id}: {shown}, want {want}")
    by_name: dict[str, list[Any]] = {}
    for inc in sb.state.incidents.values():
        by_name.setdefault(inc.name, []).append(inc)
    for svc, sev in storm.final.items():
        found = by_name.get(f"Service {svc} degraded", [])
        # A group that resolved before the bridge published it (a storm delivered in one go, a
        # takeover) needs no incident at all; otherwise exactly one.
        if len(found) > 1 or (not found and sev):
            problems.append(f"{svc}: {len(found)} incidents, want {'exactly 1' if sev else 'at most 1'}")
            continue
        if not found:
            continue
        resolved = found[0].status == "resolved"
        if resolved != (sev == ""):
            problems.append(f"{svc}: incident {found[0].status}, want {'resolved' if not sev else 'open'}")
    return problems


async def converge(sandbox: SandboxServer, storm: Storm, *, timeout: float, logs: Callable[[], str]) -> float:
    """Seconds until the page shows the storm's end state; fails with the difference after ``timeout``."""
    started = time.monotonic()
    while problems := page_problems(sandbox, storm):
        if time.monotonic() - started > timeout:
            raise AssertionError("page not correct:\n" + "\n".join(problems) + "\n" + logs()[-4000:])
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def count_incidents(sandbox: SandboxServer) -> dict[str, int]:
    counts: dict[str, int] = {}
    for inc in sandbox.app[SANDBOX_KEY].state.incidents.values():
        counts[inc.name] = counts.get(inc.name, 0) + 1
    return counts


async def stored_statuses(store_url: str) -> dict[tuple[str, str], str]:
    """(fingerprint, startsAt as sent) -> stored status, read with the bridge's own store."""
    from bridge.store import open_store

    store = await open_store(store_url)
    try:
        rows = await store.list_alerts(include_resolved=True, limit=1_000_000)
    finally:
        await store.close()
    out = {}
    for row in rows:
        out[(row.alert.fingerprint, row.alert.starts_at.isoformat())] = row.alert.status.value
    return out
