"""Real processes for end-to-end tests: Debian's Alertmanager and ``statusbridge`` itself.

Each process listens on 127.0.0.1 on a free port, logs to a file in the test's tmp dir (printed on
failure), and is stopped (SIGTERM, then SIGKILL) when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bridge.sandbox.app import SANDBOX_KEY
from tests.conftest import COMPONENTS, PAGE_ID, SandboxServer

ALERTMANAGER_BIN = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, *, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 2xx (I/O readiness, not the passing of time)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before {url} was ready")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status < 300:
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready after {timeout}s")
            await asyncio.sleep(0.05)


@dataclass
class Process:
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # The child writes to its own copy of the descriptor; ours closes at once, so no file is
        # left open however the process ends (or is started again).
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 (our own test binaries)
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                # The tests' processes see only the STATUSBRIDGE_* settings the test gives them.
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith("STATUSBRIDGE_")},
                    **self.env,
                },
                cwd=self.cwd,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL: the crash tests' weapon."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Demo:
    """``statusbridge demo`` running, with what it printed: the page URL and the curl that fires."""

    process: Process
    page_url: str
    fire_curl: str

    async def fire(self) -> None:
        """Run the printed curl exactly as a user would paste it."""
        result = await asyncio.to_thread(
            subprocess.run,  # noqa: S603 (the command the demo printed, on loopback)
            shlex.split(self.fire_curl),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert '"received": 1' in result.stdout or '"received":1' in result.stdout, result.stdout

    async def incidents_on_page(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The page's ongoing incidents (Widget JSON), polled until one appears or ``timeout``."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(self.page_url + "/api/v1/summary") as resp:
                    data = await resp.json()
                if data["ongoing_incidents"] or time.monotonic() > deadline:
                    return list(data["ongoing_incidents"])
                await asyncio.sleep(0.05)


async def start_demo(
    statusbridge: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Demo:
    """Start ``statusbridge demo`` on free ports and read what it printed."""
    port, sandbox_port = free_port(), free_port()
    process = Process(
        [*statusbridge, "demo", "--port", str(port), "--sandbox-port", str(sandbox_port)],
        log_path,
        env=env or {},
        cwd=cwd,
    )
    process.start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc=process.proc)
        deadline = time.monotonic() + 10
        while "curl -sS -X POST" not in process.log() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        printed = process.log()
        page = re.search(r"status page:\s+(\S+)", printed)
        assert page is not None, printed
        fire = next(
            line.strip()
            for line in printed.splitlines()
            if line.strip().startswith("curl -sS -X POST") and '"firing"' in line
        )
    except BaseException:
        process.stop()
        raise
    return Demo(process, page.group(1), fire)


class Alertmanager:
    """A real Alertmanager on 127.0.0.1 (clustering off) sending to one webhook receiver."""

    def __init__(
        self,
        tmp: Path,
        webhook_url: str,
        *,
        bearer: str | None = None,
        group_by: Sequence[str] = ("alertname",),
        group_wait: str = "200ms",
        group_interval: str = "500ms",
        repeat_interval: str = "1h",
    ) -> None:
        if ALERTMANAGER_BIN is None:
            raise RuntimeError("prometheus-alertmanager is not installed (make test installs it)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        receiver: dict[str, Any] = {"url": webhook_url, "send_resolved": True}
        if bearer:
            receiver["http_config"] = {"authorization": {"type": "Bearer", "credentials": bearer}}
        config = {
            "route": {
                "receiver": "statusbridge",
                "group_by": list(group_by),
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [{"name": "statusbridge", "webhook_configs": [receiver]}],
        }
        (tmp / "alertmanager.yml").write_text(yaml.safe_dump(config))
        (tmp / "am-data").mkdir(exist_ok=True)
        self.process = Process(
            [
                ALERTMANAGER_BIN,
                f"--config.file={tmp / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",
                "--cluster.listen-address=",
            ],
            tmp / "alertmanager.log",
        )

    async def start(self) -> None:
        self.process.start()
        await wait_http(f"{self.url}/-/ready", proc=self.process.proc)

    def stop(self) -> None:
        self.process.stop()

    async def post(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.url}/api/v2/alerts", json=list(alerts)) as resp:
                body = await resp.text()
                assert resp.status == 200, (resp.status, body)

    async def alerts(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.url}/api/v2/alerts") as resp:
                return list(json.loads(await resp.text()))


def statusbridge_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "bridge.cli", *args]


def serve_process(tmp: Path, db: Path, **env: str) -> tuple[Process, str]:
    """``statusbridge serve`` with open webhooks on a free port and the given SQLite file."""
    port = free_port()
    settings = {
        "STATUSBRIDGE_WEBHOOK_AUTH": "none",
        "STATUSBRIDGE_STORE_URL": f"sqlite:///{db}",
        "STATUSBRIDGE_PORT": str(port),
    }
    return Process(
        statusbridge_argv("serve"), tmp / "serve.log", env={**settings, **env}
    ), f"http://127.0.0.1:{port}"


# --- statusbridge serve against the in-process sandbox (the e2e and HA tests) ----------------------

RULES = """
status_page: "Acme Status"
defaults:
  open_after: 0s
  resolve_after: 1s
rules:
  - name: api
    matchers: ['alertname = "APIDown"']
    components: ["API"]
    status:
      from_label: severity
      map: {critical: full_outage, warning: degraded_performance}
    incident:
      name: "API problems"
      message: "We are investigating API errors."
  - name: web
    matchers: ['alertname = "FrontendErrors"']
    components: ["Web/Dashboard"]
    status: partial_outage
"""

BEARER = "e2e-webhook-token"
ADMIN = "e2e-admin-token"


class Bridge:
    def __init__(self, tmp: Path, sandbox: SandboxServer, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (tmp / "rules.yaml").write_text(RULES)
        self.env = {
            "STATUSBRIDGE_PORT": str(self.port),
            "STATUSBRIDGE_RULES_PATH": str(tmp / "rules.yaml"),
            "STATUSBRIDGE_STORE_URL": f"sqlite:///{tmp / 'bridge.db'}",
            "STATUSBRIDGE_INCIDENTIO_API_KEY": sandbox.writer_token,
            "STATUSBRIDGE_INCIDENTIO_BASE_URL": sandbox.url,
            "STATUSBRIDGE_INCIDENTIO_TIMEOUT": "5s",
            "STATUSBRIDGE_WEBHOOK_BEARER_TOKEN": BEARER,
            "STATUSBRIDGE_ADMIN_TOKEN": ADMIN,
            "STATUSBRIDGE_COALESCE_WINDOW": "200ms",
            "STATUSBRIDGE_RECONCILE_INTERVAL": "1s",
            "STATUSBRIDGE_LOG_FORMAT": "json",
            **env,
        }
        self.tmp = tmp
        self.process: Process | None = None

    async def start(self) -> None:
        self.process = Process(statusbridge_argv("serve"), self.tmp / "bridge.log", env=self.env)
        self.process.start()
        await wait_http(self.url + "/healthz", proc=self.process.proc)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> int | None:
        return self.process.stop() if self.process else None

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        body = {"version": "4", "status": "firing", "receiver": "t", "groupKey": "{}:{}", "alerts": alerts}
        async with aiohttp.ClientSession() as s:
            async with s.post(
                self.url + "/webhooks/alertmanager", json=body, headers={"Authorization": f"Bearer {BEARER}"}
            ) as r:
                assert r.status == 200, await r.text()

    async def state(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s:
            async with s.get(self.url + "/api/v1/state", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
                assert r.status == 200
                return dict(await r.json())


def incidents(sb: SandboxServer) -> list[Any]:
    return list(sb.app[SANDBOX_KEY].state.incidents.values())


def component(sb: SandboxServer, name: str) -> str:
    return sb.app[SANDBOX_KEY].state.component_status(PAGE_ID, COMPONENTS[name])


async def until(
    what: str, check: Callable[[], bool], timeout: float = 30.0, logs: Callable[[], str] | None = None
) -> None:
    """Wait for the system under test (real processes) to reach a state."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}\n{logs() if logs else ''}")
        await asyncio.sleep(0.05)


async def fault(sb: SandboxServer, **spec: Any) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(sb.url + "/_sandbox/faults", json=spec) as r:
            assert r.status == 200
