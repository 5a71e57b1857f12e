"""Run a timeline through the real pipeline, in one process, on virtual time.

The sandbox status page, a scripted Alertmanager API (for the pull) and the daemon itself —
``create_app`` with its ingest, SQLite store file, rules, reconciler, planner, guard, executor and
client — all run on one :class:`~bridge.timeline.clock.VirtualTimeLoop` and talk HTTP on
127.0.0.1. Webhooks go in over HTTP exactly as Alertmanager or Grafana would send them; the
expected page is read back from the sandbox. Nothing is built by hand in between, so what a
timeline proves is what a user sees.

At each event or expectation time the runner first lets everything due at that instant finish
(the loop is idle: no timer is due, no I/O or thread work in flight), then acts or compares.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import tempfile
import threading
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from bridge.app import create_app
from bridge.engine.model import CreateIncident, ReadBack, RenameIncident, UpdateIncident
from bridge.engine.reconciler import PassReport
from bridge.ingest.payloads import fingerprint
from bridge.sandbox.app import create_app as create_sandbox
from bridge.sandbox.seed import WRITE_SCOPE, builtin_seed, load_seed_file
from bridge.settings import Settings
from bridge.timeline.clock import VirtualTimeLoop, current_frames, scheduler_on
from bridge.timeline.model import AlertIn, Event, Expect, Timeline

BRIDGE_KEY = "timeline-bridge"
HUMAN_KEY = "timeline-human"
ADMIN_TOKEN = "timeline-admin"  # noqa: S105
SETTLE_LIMIT = timedelta(hours=48)
"""A timeline longer than this after its last event is a mistake, not a test."""
WALL_LIMIT = 120.0
"""Real seconds a timeline may take. The corpus's longest takes about 3 s on a loaded CI machine;
a run past this is stuck, and is stopped with what it waited on rather than hanging CI."""


@dataclass
class Write:
    """One write the bridge sent the page, at a time since the timeline's start, as the report prints it."""

    at: timedelta
    kind: str
    status: str | None
    detail: str
    notify: bool = False
    incident_id: str | None = None

    def line(self) -> str:
        """The write as one line of the report: time, kind, status, detail, and whether it notifies."""
        status = f" {self.status}" if self.status else ""
        notify = " (notifies)" if self.notify else ""
        return f"{_fmt(self.at):>8}  {self.kind}{status}{self.detail}{notify}"


@dataclass
class TraceLine:
    """One line of the bridge's decision trace for a group, at a time since the timeline's start."""

    at: timedelta
    group: str
    text: str


@dataclass
class Result:
    """The outcome of one timeline: ``failures`` (empty when it passed) and the printable report."""

    name: str
    path: str
    failures: list[str] = field(default_factory=list)
    report: str = ""
    run: TimelineRun | None = None
    """The finished run (its trace, writes and human actions), for callers that look further."""

    @property
    def passed(self) -> bool:
        """Whether every expectation held."""
        return not self.failures


def _iso_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _fmt(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g}s"


class _AlertmanagerAPI:
    """What a scripted Alertmanager answers on ``GET /api/v2/alerts`` (network-boundary fake)."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_get("/api/v2/alerts", self._list)
        self.app.router.add_get("/-/ready", self._ready)

    async def _list(self, _: web.Request) -> web.Response:
        return web.json_response(self.alerts)

    async def _ready(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")


class TimelineRun:
    """One run of one timeline."""

    def __init__(self, timeline: Timeline, base: Path, loop: VirtualTimeLoop, workdir: Path) -> None:
        self.tl = timeline
        self.base = base
        self.loop = loop
        self.work = workdir
        self.t0 = loop.time()
        self.failures: list[str] = []
        self.snapshots: list[tuple[Expect, list[dict[str, Any]], list[str]]] = []
        self.trace: list[TraceLine] = []
        self._last_plans: dict[str, str] = {}
        self._firing_starts: dict[str, str] = {}
        self._bridge: web.AppRunner | None = None
        self._bridge_url = ""
        self._sandbox: web.AppRunner | None = None
        self._sandbox_url = ""
        self._am: _AlertmanagerAPI | None = None
        self._am_runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._components: dict[str, str] = {}
        self._component_ids: dict[str, str] = {}
        self._page_id = ""
        self._am_url = ""
        self._rules = workdir / "rules"
        self.final_writes: list[Write] = []
        self.last_state: Any = None
        """The page as the run ended (the sandbox's state)."""
        self.request_log: list[dict[str, Any]] = []
        """Every API request the page saw, as the run ended."""
        self._human_writes: list[tuple[str, str, Any]] = []
        self.human_acts: list[tuple[timedelta, str, str]] = []
        """(when, action, incident id) of every human action performed."""
        self.observer: Callable[[TimelineRun], Awaitable[None]] | None = None
        """Called after every step (model-based tests check invariants with it)."""

    # --- time --------------------------------------------------------------------------------

    def elapsed(self) -> timedelta:
        """Virtual time since the timeline's start."""
        return timedelta(seconds=self.loop.time() - self.t0)

    def now(self) -> datetime:
        """The virtual wall-clock instant (aware UTC)."""
        return self.loop.now()

    async def until(self, at: timedelta) -> None:
        """Sleep on virtual time until ``at`` after the start (not at all if past), then let the loop settle."""
        delay = (at - self.elapsed()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        await self.loop.settle()

    # --- set-up ------------------------------------------------------------------------------

    def _seed(self) -> dict[str, Any]:
        if self.tl.seed == "builtin":
            raw = builtin_seed()
        elif isinstance(self.tl.seed, str):
            raw = load_seed_file(self.base / self.tl.seed)
        else:
            raw = dict(self.tl.seed)
        keys = [k for k in raw.get("api_keys") or [] if k.get("token") not in (BRIDGE_KEY, HUMAN_KEY)]
        keys += [
            {"token": BRIDGE_KEY, "scopes": [WRITE_SCOPE]},
            {"token": HUMAN_KEY, "scopes": [WRITE_SCOPE]},
        ]
        return {**raw, "api_keys": keys}

    def _write_rules(self, content: str | Mapping[str, Any]) -> Path:
        target = self.work / "rules"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        if isinstance(content, str):
            source = self.base / content
            if source.is_dir():
                for file in sorted(source.glob("*.yaml")):
                    shutil.copy(file, target / file.name)
            else:
                shutil.copy(source, target / "rules.yaml")
        else:
            (target / "rules.yaml").write_text(yaml.safe_dump(dict(content), sort_keys=False))
        return target

    def _settings(self, rules: Path) -> Settings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "store_url": f"sqlite:///{self.work / 'store.db'}",
            "rules_path": rules,
            "incidentio_api_key": BRIDGE_KEY,
            "incidentio_base_url": self._sandbox_url,
            "webhook_auth": "none",
            "admin_token": ADMIN_TOKEN,
            "log_level": "error",
        }
        if self._am is not None:
            values["alertmanager_url"] = self._am_url
        values.update(self.tl.settings)
        return Settings(**values)

    async def start(self) -> None:
        """Start the sandbox (seeded from the timeline), the fake Alertmanager API if an event needs it, and
        the bridge.
        """
        self._session = aiohttp.ClientSession()
        seed = self._seed()
        sandbox = create_sandbox(seed, clock=self.now)
        self._sandbox = web.AppRunner(sandbox, access_log=None)
        await self._sandbox.setup()
        await web.TCPSite(self._sandbox, "127.0.0.1", 0).start()
        self._sandbox_url = f"http://127.0.0.1:{self._sandbox.addresses[0][1]}"
        pages = seed.get("status_pages") or []
        page = pages[0] if pages else {}
        self._page_id = str(page.get("id", ""))
        await self._learn_components()
        if any(e.alertmanager_api is not None for e in self.tl.events):
            self._am = _AlertmanagerAPI()
            self._am_runner = web.AppRunner(self._am.app, access_log=None)
            await self._am_runner.setup()
            await web.TCPSite(self._am_runner, "127.0.0.1", 0).start()
            self._am_url = f"http://127.0.0.1:{self._am_runner.addresses[0][1]}"
        self._rules = self._write_rules(self.tl.rules)
        await self._start_bridge()

    async def _learn_components(self) -> None:
        data = await self._sandbox_get(f"/v2/status_page_structures/{self._page_id}")
        for item in data.get("current_structure", {}).get("items", []):
            for name, comp_id in _walk_structure(item, ()):
                self._components[comp_id] = name
                self._component_ids[name] = comp_id
                self._component_ids.setdefault(name.rsplit("/", 1)[-1], comp_id)

    async def _start_bridge(self) -> None:
        app = create_app(self._settings(self._rules), clock=self.now, on_pass=self._on_pass)
        self._bridge = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._bridge.setup()
        await web.TCPSite(self._bridge, "127.0.0.1", 0).start()
        self._bridge_url = f"http://127.0.0.1:{self._bridge.addresses[0][1]}"

    async def _stop_bridge(self) -> None:
        if self._bridge is not None:
            await self._bridge.cleanup()
            self._bridge = None

    async def stop(self) -> None:
        """Stop the bridge, then the servers and the session; safe after a failed start."""
        await self._stop_bridge()
        for runner in (self._am_runner, self._sandbox):
            if runner is not None:
                await runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # --- observing the planner ---------------------------------------------------------------

    def _on_pass(self, report: PassReport | None) -> None:
        at = self.elapsed()
        if report is None:
            self.trace.append(TraceLine(at, "*", "pass failed"))
            return
        for key in set(self._last_plans) - set(report.groups):
            del self._last_plans[key]  # out of the pass: its next plan is news, even if the same
        for key, group in report.groups.items():
            actions = ", ".join(_action_text(a) for a in group.plan.actions) or "-"
            text = (
                f"held: {group.plan.held}; actions: {actions}" if group.plan.held else f"actions: {actions}"
            )
            if group.error:
                text += f"; error: {group.error}"
            if self._last_plans.get(key) != text:
                self._last_plans[key] = text
                self.trace.append(TraceLine(at, key, text))

    # --- HTTP helpers ------------------------------------------------------------------------

    async def _sandbox_get(self, path: str) -> Any:
        assert self._session is not None
        async with self._session.get(
            self._sandbox_url + path, headers={"Authorization": f"Bearer {HUMAN_KEY}"}
        ) as resp:
            return await resp.json()

    async def _sandbox_send(self, method: str, path: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        """A human's write: remembered, so that the bridge's writes can be told from it."""
        assert self._session is not None
        self._human_writes.append((method, path, json.loads(json.dumps(body))))
        async with self._session.request(
            method,
            self._sandbox_url + path,
            json=body,
            headers={"Authorization": f"Bearer {HUMAN_KEY}", "X-Sandbox-Dashboard": "1"},
        ) as resp:
            return resp.status, await resp.json()

    async def _bridge_send(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        assert self._session is not None
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if path.startswith("/api/") else {}
        async with self._session.request(method, self._bridge_url + path, json=body, headers=headers) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    # --- events ------------------------------------------------------------------------------

    def _time(self, value: timedelta | datetime | None, default: datetime) -> str:
        if value is None:
            return _iso(default)
        if isinstance(value, datetime):
            return _iso(value)
        return _iso(self.loop.start + value)

    def _alert_json(self, alert: AlertIn, *, grafana: bool) -> dict[str, Any]:
        now = self.now()
        fp = fingerprint(alert.labels)
        if alert.status == "firing":
            starts = self._time(alert.starts_at, now)
            self._firing_starts[fp] = starts
            ends = "0001-01-01T00:00:00Z"
        else:
            starts = (
                self._time(alert.starts_at, now)
                if alert.starts_at is not None
                else self._firing_starts.get(fp, _iso(now))
            )
            ends = self._time(alert.ends_at, now)
        out: dict[str, Any] = {
            "status": alert.status,
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "startsAt": starts,
            "endsAt": ends,
            "generatorURL": "http://prometheus.timeline:9090/graph",
            "fingerprint": fp,
        }
        if grafana:
            out["silenceURL"] = "http://grafana.timeline/alerting/silence/new"
            out["values"] = None
        return out

    async def _deliver(self, source: str, alerts: list[AlertIn]) -> None:
        grafana = source == "grafana"
        body_alerts = [self._alert_json(a, grafana=grafana) for a in alerts]
        status = "firing" if any(a["status"] == "firing" for a in body_alerts) else "resolved"
        common = dict(set.intersection(*(set(a["labels"].items()) for a in body_alerts)))
        body: dict[str, Any] = {
            "receiver": "statusbridge",
            "status": status,
            "alerts": body_alerts,
            "groupLabels": {},
            "commonLabels": common,
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.timeline:9093",
            "version": "4" if not grafana else "1",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
        }
        if grafana:
            body["orgId"] = 1
            body["title"] = f"[{status.upper()}]"
            body["state"] = "alerting" if status == "firing" else "ok"
            body["message"] = ""
        code, answer = await self._bridge_send("POST", f"/webhooks/{source}", body)
        if code >= 300:
            self.failures.append(
                f"at {_fmt(self.elapsed())}: the {source} webhook was refused: {code} {answer}"
            )

    async def _human(self, event: Event) -> None:
        assert event.human is not None
        human = event.human
        state = await self._sandbox_get("/_sandbox/state")
        match = [
            i
            for i in state["incidents"]
            if i["name"] == human.incident and i["incident_status"] != "resolved"
        ]
        if not match:
            if human.required:
                self.failures.append(
                    f"at {_fmt(self.elapsed())}: no ongoing incident named {human.incident!r} to {human.action}"
                )
            return
        self.human_acts.append((self.elapsed(), human.action, match[-1]["id"]))
        incident = match[-1]
        if human.action == "rename":
            await self._sandbox_send(
                "PUT", f"/v2/status_page_incidents/{incident['id']}", {"name": human.name or human.incident}
            )
            return
        latest = incident["updates"][0] if incident["updates"] else {}
        status = {"resolve": "resolved"}.get(human.action) or (
            human.status.value if human.status else incident["incident_status"]
        )
        body: dict[str, Any] = {
            "status_page_incident_id": incident["id"],
            "incident_status": status,
            "message": human.message,
            "notify_subscribers": False,
        }
        if status != "resolved":
            if human.components is not None:
                body["component_statuses"] = [
                    {"component_id": self._component_id(n), "component_status": s.value}
                    for n, s in human.components.items()
                ]
            else:
                body["component_statuses"] = latest.get("component_statuses", [])
        code, answer = await self._sandbox_send("POST", "/v2/status_page_incident_updates", body)
        if code >= 300:
            self.failures.append(
                f"at {_fmt(self.elapsed())}: the human's {human.action} failed: {code} {answer}"
            )

    def _component_id(self, name: str) -> str:
        return self._component_ids.get(name, name)

    async def _event(self, event: Event) -> None:
        kind = event.kind
        if event.alertmanager is not None:
            await self._deliver("alertmanager", event.alertmanager.alerts)
        elif event.grafana is not None:
            await self._deliver("grafana", event.grafana.alerts)
        elif event.alertmanager_api is not None:
            assert self._am is not None
            self._am.alerts = [self._api_alert(a) for a in event.alertmanager_api.alerts]
        elif event.restart:
            await self._stop_bridge()
            await self._start_bridge()
        elif event.store_loss:
            await self._stop_bridge()
            for suffix in ("", "-wal", "-shm"):
                (self.work / f"store.db{suffix}").unlink(missing_ok=True)
            await self._start_bridge()
        elif event.human is not None:
            await self._human(event)
        elif event.fault is not None:
            fault = event.fault.model_dump()
            fault["latency"] = event.fault.latency.total_seconds()
            fault["duration"] = event.fault.duration.total_seconds() if event.fault.duration else None
            assert self._session is not None
            async with self._session.post(self._sandbox_url + "/_sandbox/faults", json=fault) as resp:
                resp.raise_for_status()
        elif event.rules is not None:
            (self._rules / "rules.yaml").write_text(yaml.safe_dump(dict(event.rules), sort_keys=False))
            for other in self._rules.glob("*.yaml"):
                if other.name != "rules.yaml":
                    other.unlink()
        elif event.maintenance is not None:
            # YAML reads an unquoted timestamp as a datetime; the admin API takes it as written.
            window = json.loads(json.dumps(event.maintenance, default=_iso_default))
            code, answer = await self._bridge_send("POST", "/api/v1/maintenances", window)
            if code >= 300:
                self.failures.append(
                    f"at {_fmt(self.elapsed())}: the maintenance was refused: {code} {answer}"
                )
        elif event.admin is not None:
            paths = {
                "pause": "/api/v1/pause",
                "resume": "/api/v1/resume",
                "release_guard": "/api/v1/guard/release",
                "force_resolve": f"/api/v1/groups/{event.admin.group}/resolve",
            }
            code, answer = await self._bridge_send("POST", paths[event.admin.action])
            if code >= 300:
                self.failures.append(
                    f"at {_fmt(self.elapsed())}: admin {event.admin.action}: {code} {answer}"
                )
        else:  # pragma: no cover - the model admits no other kind
            raise AssertionError(kind)

    def _api_alert(self, alert: Any) -> dict[str, Any]:
        fp = fingerprint(alert.labels)
        starts = (
            _iso(self.loop.start + alert.starts_at)
            if alert.starts_at is not None
            else self._firing_starts.get(fp, _iso(self.now()))
        )
        # The API reports times in milliseconds (webhooks carry the nanoseconds).
        return {
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "startsAt": _millis(starts),
            "endsAt": _iso(self.now() + timedelta(minutes=5)),
            "updatedAt": _iso(self.now()),
            "generatorURL": "http://prometheus.timeline:9090/graph",
            "fingerprint": fp,
            "receivers": [{"name": "statusbridge"}],
            "status": {
                "state": alert.state,
                "silencedBy": list(alert.silenced_by),
                "inhibitedBy": list(alert.inhibited_by),
            },
        }

    # --- expectations ------------------------------------------------------------------------

    async def page_state(self) -> Any:
        """The sandbox's whole state (incidents with their updates and impacts, components)."""
        return await self._sandbox_get("/_sandbox/state")

    @property
    def page_id(self) -> str:
        """The id of the seed's first status page, the one the timeline checks."""
        return self._page_id

    def component_id(self, name: str) -> str:
        """The page's id for a component name; the text itself when it names none (an id already)."""
        return self._component_id(name)

    async def _bridge_requests(self) -> list[dict[str, Any]]:
        """The page's request log without the humans' requests."""
        log = await self._sandbox_get("/_sandbox/requests")
        humans = list(self._human_writes)
        out = []
        for entry in log:
            mine = (entry["method"], entry["path"], entry.get("body"))
            if mine in humans:
                humans.remove(mine)
                continue
            out.append(entry)
        return out

    async def writes(self) -> list[Write]:
        """Every write the bridge sent the page so far, in order (no GETs, no human's requests)."""
        out = []
        for entry in await self._bridge_requests():
            write = _write_of(entry, self.loop.start, self._components)
            if write is not None:
                out.append(write)
        return out

    async def attempts(self) -> int:
        """Write requests the bridge sent, whatever the answer (a fault's 503 included)."""
        return sum(1 for entry in await self._bridge_requests() if entry["method"] != "GET")

    async def check(self, expect: Expect) -> None:
        """Compare the page with ``expect`` now, recording the snapshot; mismatches become failures, not
        exceptions.
        """
        state = await self._sandbox_get("/_sandbox/state")
        incidents = sorted(
            (i for i in state["incidents"] if i["status_page_id"] == self._page_id),
            key=lambda i: i["published_at"],
        )
        actual = [self._incident_view(i) for i in incidents]
        problems = self._incident_problems(expect, actual)
        if expect.components is not None:
            public = state["components"].get(self._page_id, {})
            for name, want in expect.components.items():
                have = public.get(self._component_id(name))
                if have != want.value:
                    problems.append(f"component {name}: {have}, expected {want.value}")
        if expect.maintenances is not None:
            shown = {
                m["name"]: str(m["maintenance_status"]).removeprefix("maintenance_")
                for m in state["maintenances"]
            }
            for name, status in expect.maintenances.items():
                if shown.get(name) != status:
                    problems.append(f"maintenance {name!r}: {shown.get(name)}, expected {status}")
        if expect.writes is not None or expect.max_writes is not None:
            problems += _write_problems(expect, await self.writes())
        if expect.max_attempts is not None and (sent := await self.attempts()) > expect.max_attempts:
            problems.append(f"{sent} write requests sent, expected at most {expect.max_attempts}")
        self.snapshots.append((expect, actual, problems))
        self.failures.extend(f"at {_fmt(expect.at)}: {problem}" for problem in problems)

    def _incident_problems(self, expect: Expect, actual: list[dict[str, Any]]) -> list[str]:
        problems: list[str] = []
        if expect.incidents is not None:
            if len(actual) != len(expect.incidents):
                problems.append(f"{len(actual)} incident(s) on the page, expected {len(expect.incidents)}")
            for n, (want, got) in enumerate(zip(expect.incidents, actual, strict=False)):
                for key, value in want.model_dump(exclude_none=True, mode="json").items():
                    wanted = (
                        {self._components.get(self._component_id(c), c): s for c, s in value.items()}
                        if key == "components"
                        else value
                    )
                    if got.get(key) != wanted:
                        problems.append(f"incident {n + 1} {key}: {got.get(key)!r}, expected {wanted!r}")
        if expect.ongoing is not None:
            ongoing = sum(1 for i in actual if i["status"] != "resolved")
            if ongoing != expect.ongoing:
                problems.append(f"{ongoing} ongoing incident(s), expected {expect.ongoing}")
        return problems

    def _incident_view(self, incident: Mapping[str, Any]) -> dict[str, Any]:
        components = {
            self._components.get(p["component_id"], p["component_id"]): p["component_status"]
            for p in incident["component_impacts"]
            if "end_at" not in p
        }
        updates = incident["updates"]
        return {
            "name": incident["name"],
            "status": incident["incident_status"],
            "components": components,
            "message": updates[0]["message"] if updates else "",
            "updates": len(updates),
        }

    # --- the run -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Play every event and check every expectation in time order (events first at a tie), then stop;
        raises ValueError for a step more than SETTLE_LIMIT after the previous one.
        """
        steps: list[tuple[timedelta, int, Any]] = []
        for event in self.tl.events:
            count = event.repeat.count if event.repeat else 1
            every = event.repeat.every if event.repeat else timedelta(0)
            for n in range(count):
                steps.append((event.at + n * every, 0, event))
        for expect in self.tl.expect:
            steps.append((expect.at, 1, expect))
        steps.sort(key=lambda s: (s[0], s[1]))
        await self.start()
        try:
            for at, order, step in steps:
                if at - self.elapsed() > SETTLE_LIMIT:
                    raise ValueError(
                        f"a step at {_fmt(at)} is more than {SETTLE_LIMIT} after the previous one"
                    )
                await self.until(at)
                if order == 0:
                    await self._event(step)
                    await self.loop.settle()
                else:
                    await self.check(step)
                if self.observer is not None:
                    await self.observer(self)
            self.final_writes = await self.writes()
            self.last_state = await self.page_state()
            self.request_log = list(await self._sandbox_get("/_sandbox/requests"))
        finally:
            await self.stop()


def _write_problems(expect: Expect, writes: list[Write]) -> list[str]:
    problems: list[str] = []
    if expect.max_writes is not None and len(writes) > expect.max_writes:
        problems.append(f"{len(writes)} public writes, expected at most {expect.max_writes}")
    if expect.writes is not None:
        if len(writes) != len(expect.writes):
            problems.append(f"{len(writes)} public writes, expected {len(expect.writes)}")
        for n, (got, want) in enumerate(zip(writes, expect.writes, strict=False)):
            for key, value in want.model_dump(exclude_none=True).items():
                if getattr(got, key) != value:
                    problems.append(f"write {n + 1} {key}: {getattr(got, key)!r}, expected {value!r}")
    return problems


def _walk_structure(item: Mapping[str, Any], prefix: tuple[str, ...]) -> list[tuple[str, str]]:
    if "component" in item:
        comp = item["component"]
        return [("/".join((*prefix, comp["name"])), comp["component_id"])]
    if "group" in item:
        group = item["group"]
        return [
            ("/".join((*prefix, group["name"], c["name"])), c["component_id"])
            for c in group.get("components", [])
        ]
    if "sub_page" in item:
        sub = item["sub_page"]
        return [
            pair for child in sub.get("items", []) for pair in _walk_structure(child, (*prefix, sub["name"]))
        ]
    return []


def _write_of(entry: Mapping[str, Any], start: datetime, components: Mapping[str, str]) -> Write | None:
    write = _classify(entry, start, components)
    if write is not None:
        body = entry.get("body") or {}
        write.notify = bool(body.get("notify_subscribers"))
        path = str(entry["path"])
        write.incident_id = body.get("status_page_incident_id") or (
            path.rsplit("/", 1)[-1] if path.startswith("/v2/status_page_incidents/") else None
        )
    return write


def _classify(entry: Mapping[str, Any], start: datetime, components: Mapping[str, str]) -> Write | None:
    method, path, status = entry["method"], entry["path"], entry["status"]
    if method == "GET" or status >= 400:
        return None
    body = entry.get("body") or {}
    at = datetime.fromisoformat(entry["at"]) - start
    comps = body.get("component_statuses")
    detail = ""
    if comps:
        detail = " " + ", ".join(
            f"{components.get(c['component_id'], c['component_id'])}={c['component_status']}" for c in comps
        )
    if path == "/v2/status_page_incidents" and method == "POST":
        return Write(at, "create", body.get("incident_status"), detail + f" {body.get('name', '')!r}")
    if path == "/v2/status_page_incident_updates":
        return Write(at, "update", body.get("incident_status"), detail)
    if path.startswith("/v2/status_page_incidents/") and method == "PUT":
        return Write(at, "rename", None, f" {body.get('name', '')!r}")
    if path == "/v2/status_page_maintenances" and method == "POST":
        return Write(at, "maintenance_create", body.get("maintenance_status"), detail)
    if path.startswith("/v2/status_page_maintenances/") and method == "DELETE":
        return Write(at, "maintenance_delete", None, "")
    if path.startswith("/v2/status_page_maintenance") and method in ("PUT", "POST"):
        return Write(at, "maintenance_update", body.get("maintenance_status"), detail)
    return None


def _action_text(action: Any) -> str:
    if isinstance(action, CreateIncident):
        return f"create {action.incident_status.value}"
    if isinstance(action, UpdateIncident):
        return f"update {action.incident_status.value}"
    if isinstance(action, RenameIncident):
        return f"rename {action.name!r}"
    if isinstance(action, ReadBack):
        return "read back"
    return type(action).__name__


def _incident_line(incident: Mapping[str, Any]) -> str:
    comps = ", ".join(f"{k}={v}" for k, v in sorted(incident["components"].items()))
    return f"{incident['name']!r} {incident['status']} [{comps}]"


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _millis(stamp: str) -> str:
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return _iso(when.replace(microsecond=when.microsecond // 1000 * 1000))


def format_report(run: TimelineRun) -> str:
    """Expected and actual public timelines side by side, and the planner's trace of each group."""
    lines = []
    width = 58
    lines.append(f"{'expected':<{width}} | actual")
    lines.append("-" * width + "-+-" + "-" * width)
    for expect, actual, problems in run.snapshots:
        want = []
        if expect.incidents is not None:
            for inc in expect.incidents:
                fields = inc.model_dump(exclude_none=True, mode="json")
                want.append(" ".join(f"{k}={v}" for k, v in fields.items()))
        if expect.components is not None:
            want.append(", ".join(f"{k}={v.value}" for k, v in expect.components.items()))
        if expect.ongoing is not None:
            want.append(f"ongoing={expect.ongoing}")
        if expect.max_writes is not None:
            want.append(f"at most {expect.max_writes} writes")
        have = [_incident_line(i) for i in actual] or ["(no incidents)"]
        mark = "FAIL" if problems else "ok"
        lines.append(f"at {_fmt(expect.at)} [{mark}]")
        for n in range(max(len(want), len(have))):
            left = want[n] if n < len(want) else ""
            right = have[n] if n < len(have) else ""
            lines.append(f"  {left[: width - 2]:<{width - 2}} | {right}")
        lines.extend(f"  ! {p}" for p in problems)
    lines.append("")
    lines.append("public writes (from the page's request log):")
    lines.extend("  " + w.line() for w in getattr(run, "final_writes", [])) if getattr(
        run, "final_writes", []
    ) else lines.append("  (none)")
    lines.append("")
    lines.append("planner, per pass where a group's plan changed:")
    for entry in run.trace:
        lines.append(f"  {_fmt(entry.at):>8}  {entry.group}: {entry.text}")
    return "\n".join(lines)


async def _run_async(
    tl: Timeline, base: Path, loop: VirtualTimeLoop, observer: Callable[[TimelineRun], Awaitable[None]] | None
) -> TimelineRun:
    with tempfile.TemporaryDirectory(prefix="statusbridge-timeline-") as tmp:
        run = TimelineRun(tl, base, loop, Path(tmp))
        run.observer = observer
        await run.run()
        return run


class TimelineStuck(RuntimeError):
    """A timeline took more real time than :data:`WALL_LIMIT`: the virtual clock is waiting for
    something that does not come. The message says what the loop was waiting on."""


def _stacks(skip: int | None) -> str:
    frames = current_frames()
    out: list[str] = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident) if thread.ident is not None else None
        if frame is None or thread.ident == skip:
            continue
        out.append(f"thread {thread.name}:\n" + "".join(traceback.format_stack(frame)[-8:]))
    return "\n".join(out)


def run_timeline(
    tl: Timeline,
    path: Path,
    observer: Callable[[TimelineRun], Awaitable[None]] | None = None,
    *,
    wall_limit: float = WALL_LIMIT,
) -> Result:
    """Run one timeline on a fresh virtual-time loop (it must not be called from a running loop).
    ``observer`` is awaited after every step, with the run (its page, writes and clock).

    Raises :class:`TimelineStuck` when the run takes more than ``wall_limit`` real seconds."""
    loop = VirtualTimeLoop(tl.start)
    # Back-off jitter and breaker probes draw from ``random``: seeded per timeline (and restored
    # after), a run takes the same path every time.
    saved = random.getstate()
    random.seed(tl.name)
    main = loop.create_task(_run_async(tl, path.parent, loop, observer))
    stuck: list[str] = []

    def expire() -> None:
        # Runs on the watchdog's own thread: the loop may be blocked, so look from outside first.
        stuck.append(f"{loop.waiting_on()}\n{_stacks(threading.get_ident())}")
        loop.call_soon_threadsafe(main.cancel)

    watchdog = threading.Timer(wall_limit, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        with scheduler_on(loop):
            try:
                run = loop.run_until_complete(main)
            except asyncio.CancelledError as exc:
                if not stuck:
                    raise
                raise TimelineStuck(
                    f"{path}: still running after {wall_limit:g} s of real time at virtual "
                    f"{_fmt(timedelta(seconds=loop.time()))}; {stuck[0]}"
                ) from exc
    finally:
        watchdog.cancel()
        random.setstate(saved)
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    result = Result(tl.name, str(path), list(run.failures), format_report(run))
    result.run = run
    return result
