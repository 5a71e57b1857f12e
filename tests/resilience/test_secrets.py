"""No secret ever leaks: four canary secrets go into a real ``statusbridge serve`` (and ``statusbridge
check``), every path that handles them is exercised, and none of them comes back out.

The canaries are the incident.io API key, the webhook bearer token, the Grafana HMAC secret and the
admin token. The daemon logs JSON at debug level to a file. It publishes to the in-process sandbox
with the canary key (seeded as a writer key), is refused by it (injected 401s) and sees it fail
(injected 500s); it receives good webhooks, webhooks and admin calls with wrong credentials (near
misses of the canaries, and each canary in the wrong place), and is scraped (``/metrics``) and
inspected (``/api/v1/state``, ``/readyz``). Then no canary, nor its base64 (at any alignment), nor
its first 9 characters appears in the log, in any status line, header or body the test received, or in
what the daemon sent the page other than the API key in its own Authorization header.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.sandbox.app import SANDBOX_KEY
from bridge.sandbox.seed import WRITE_SCOPE
from tests.conftest import SandboxFactory, SandboxServer, seed
from tests.e2e.harness import Process, free_port, statusbridge_argv, wait_http

pytestmark = [pytest.mark.resilience]

API_KEY = "canary-apikey-7f3a9c"
WEBHOOK_TOKEN = "canary-webhook-2b8d41"
HMAC_SECRET = "canary-hmacsecret-e95f07"
ADMIN_TOKEN = "canary-admintoken-c4a6d2"
CANARIES = {
    "api key": API_KEY,
    "webhook token": WEBHOOK_TOKEN,
    "hmac secret": HMAC_SECRET,
    "admin": ADMIN_TOKEN,
}
PREFIX = 9
"""Leaking more than 8 characters of a secret is a leak (a near-miss token echoed back would be one)."""

RULES = """
status_page: "Acme Status"
defaults:
  open_after: 0s
  resolve_after: 0s
rules:
  - name: api
    matchers: ['alertname = "APIDown"']
    components: ["API"]
    status: full_outage
    incident:
      name: "API problems"
      message: "We are investigating API errors."
  - name: db
    matchers: ['alertname = "DBDown"']
    components: ["Database"]
    status: partial_outage
  - name: web
    matchers: ['alertname = "WebDown"']
    components: ["Web/Dashboard"]
    status: degraded_performance
"""


def off_by_one(secret: str) -> str:
    last = secret[-1]
    return secret[:-1] + ("0" if last != "0" else "1")


def forbidden(secret: str) -> set[str]:
    """The secret, its 9-character prefix, and its base64 at each of the three alignments (the middle
    of the encoding, which does not depend on the neighbouring bytes), standard and URL-safe."""
    found = {secret, secret[:PREFIX]}
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + secret.encode()).decode()
            found.add(encoded[4:-4])
    return found


FORBIDDEN = {name: forbidden(secret) for name, secret in CANARIES.items()}


def leaks(text: str) -> list[str]:
    return sorted(
        f"{name} ({needle!r})" for name, needles in FORBIDDEN.items() for needle in needles if needle in text
    )


def test_the_needles_are_distinctive() -> None:
    """Guard against a needle so short or generic that the checks below could never pass or fail."""
    for needles in FORBIDDEN.values():
        assert all(len(n) >= PREFIX for n in needles)
    assert leaks("canary-") == []
    assert leaks(API_KEY) and leaks(base64.b64encode(b"Bearer " + ADMIN_TOKEN.encode()).decode())
    assert leaks(off_by_one(WEBHOOK_TOKEN)) == [f"webhook token ({WEBHOOK_TOKEN[:PREFIX]!r})"]


def hmac_signature(body: bytes, secret: str = HMAC_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Seen:
    """Every answer the test received from the daemon, as text: status line, headers and body."""

    answers: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, status: int, headers: Any, body: bytes) -> None:
        head = "\n".join(f"{k}: {v}" for k, v in headers.items())
        self.answers.append((label, f"{status}\n{head}\n\n{body.decode(errors='replace')}"))

    def leaked(self) -> list[str]:
        return [f"{label}: {', '.join(found)}" for label, text in self.answers if (found := leaks(text))]


class Bridge:
    """``statusbridge serve`` with the four canaries, JSON logs at debug level, against a sandbox."""

    def __init__(self, tmp: Path, sandbox: SandboxServer, name: str = "bridge", **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules = tmp / "rules.yaml"
        rules.write_text(RULES)
        self.process = Process(
            statusbridge_argv("serve"),
            tmp / f"{name}.log",
            env={
                "STATUSBRIDGE_PORT": str(self.port),
                "STATUSBRIDGE_STORE_URL": f"sqlite:///{tmp / f'{name}.db'}",
                "STATUSBRIDGE_RULES_PATH": str(rules),
                "STATUSBRIDGE_INCIDENTIO_API_KEY": API_KEY,
                "STATUSBRIDGE_INCIDENTIO_BASE_URL": sandbox.url,
                "STATUSBRIDGE_INCIDENTIO_TIMEOUT": "2s",
                "STATUSBRIDGE_WEBHOOK_BEARER_TOKEN": WEBHOOK_TOKEN,
                "STATUSBRIDGE_GRAFANA_HMAC_SECRET": HMAC_SECRET,
                "STATUSBRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
                "STATUSBRIDGE_COALESCE_WINDOW": "0s",
                "STATUSBRIDGE_RECONCILE_INTERVAL": "1s",
                "STATUSBRIDGE_LOG_FORMAT": "json",
                "STATUSBRIDGE_LOG_LEVEL": "debug",
                **env,
            },
        )
        self.seen = Seen()

    async def request(
        self,
        label: str,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as s:
            async with s.request(method, self.url + path, data=data, headers=headers or {}) as r:
                body = await r.read()
                self.seen.add(f"{label}: {method} {path} -> {r.status}", r.status, r.headers, body)
                return r.status, body

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
        status, answer = await self.request("admin", method, path, data=data, headers=headers)
        return status, json.loads(answer)

    async def alert(self, name: str, status: str = "firing") -> None:
        body = am_payload(name, status)
        headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
        code, answer = await self.request(
            "webhook", "POST", "/webhooks/alertmanager", data=body, headers=headers
        )
        assert code == 200, answer


def am_payload(name: str, status: str = "firing", version: str = "4") -> bytes:
    alert: dict[str, Any] = {
        "status": status,
        "labels": {"alertname": name, "instance": "i-1"},
        "annotations": {"summary": f"{name} on i-1"},
        "startsAt": "2026-11-23T11:00:00Z",
    }
    if status == "resolved":
        alert["endsAt"] = "2026-11-23T11:30:00Z"
    return json.dumps({"version": version, "status": status, "alerts": [alert]}).encode()


async def until(what: str, check: Callable[[], bool], logs: Callable[[], str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}\n{logs()[-5000:]}")
        await asyncio.sleep(0.05)


async def fault(sandbox: SandboxServer, **spec: Any) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(sandbox.url + "/_sandbox/faults", json=spec) as r:
            assert r.status == 200, await r.text()


def bridge_requests(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return list(sandbox.app[SANDBOX_KEY].requests)


@pytest.fixture
async def keyed_sandbox(sandbox_factory: SandboxFactory) -> SandboxServer:
    """The sandbox with the canary API key as a writer key."""
    data = seed()
    data["api_keys"] = [*data["api_keys"], {"token": API_KEY, "scopes": [WRITE_SCOPE]}]
    return await sandbox_factory(seed_data=data)


@pytest.fixture
async def bridge(tmp_path: Path, keyed_sandbox: SandboxServer) -> AsyncIterator[Bridge]:
    b = Bridge(tmp_path, keyed_sandbox)
    b.process.start()
    try:
        await wait_http(b.url + "/healthz", proc=b.process.proc)
        yield b
    finally:
        b.process.stop()


WRONG_WEBHOOK_CREDENTIALS = [
    {"Authorization": f"Bearer {off_by_one(WEBHOOK_TOKEN)}"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}"},
    {"Authorization": f"Bearer {API_KEY}"},
    {"Authorization": f"Bearer {HMAC_SECRET}"},
    {"Authorization": f"Bearer {WEBHOOK_TOKEN} {WEBHOOK_TOKEN}"},
    {"Authorization": "Basic " + base64.b64encode(f"user:{WEBHOOK_TOKEN}".encode()).decode()},
    {"Authorization": WEBHOOK_TOKEN},
    {"X-Grafana-Alerting-Signature": HMAC_SECRET},
    {"X-Grafana-Alerting-Signature": WEBHOOK_TOKEN},
]
WRONG_ADMIN_CREDENTIALS = [
    {"Authorization": f"Bearer {off_by_one(ADMIN_TOKEN)}"},
    {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    {"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
    {"Authorization": f"Bearer {API_KEY}"},
    {"Authorization": f"Bearer {HMAC_SECRET}"},
    {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_TOKEN}".encode()).decode()},
    {"Authorization": ADMIN_TOKEN},
    {"Authorization": f"Token {ADMIN_TOKEN}"},
]


async def test_no_secret_leaks_from_the_daemon(bridge: Bridge, keyed_sandbox: SandboxServer) -> None:
    sb = keyed_sandbox
    log = bridge.process.log

    # 1. Good webhooks: the daemon publishes with the canary key.
    await bridge.alert("APIDown")
    await until("the incident on the page", lambda: bool(sb.app[SANDBOX_KEY].state.incidents), log)
    grafana = am_payload("DBDown", version="1")
    headers = {"X-Grafana-Alerting-Signature": hmac_signature(grafana), "Content-Type": "application/json"}
    status, _ = await bridge.request("grafana", "POST", "/webhooks/grafana", data=grafana, headers=headers)
    assert status == 200

    # 2. Wrong credentials on both webhooks, and a signature made with a near miss of the secret.
    body = am_payload("WebDown")
    for creds in WRONG_WEBHOOK_CREDENTIALS:
        for path in ("/webhooks/alertmanager", "/webhooks/grafana"):
            headers = {**creds, "Content-Type": "application/json"}
            status, answer = await bridge.request(
                "bad webhook creds", "POST", path, data=body, headers=headers
            )
            assert status == 401, answer
    near = {"X-Grafana-Alerting-Signature": hmac_signature(body, off_by_one(HMAC_SECRET))}
    status, _ = await bridge.request(
        "near-miss signature",
        "POST",
        "/webhooks/grafana",
        data=body,
        headers={**near, "Content-Type": "application/json"},
    )
    assert status == 401

    # 3. Wrong admin credentials on every kind of admin route.
    for creds in WRONG_ADMIN_CREDENTIALS:
        for method, path in (
            ("GET", "/api/v1/state"),
            ("POST", "/api/v1/pause"),
            ("GET", "/api/v1/maintenances"),
        ):
            status, answer = await bridge.request("bad admin creds", method, path, headers=creds)
            assert status == 401, answer

    # 4. The page refuses the key (401s), then fails (500s); the daemon keeps trying, then recovers.
    await bridge.admin(
        "POST",
        "/api/v1/maintenances",
        {
            "name": "Database upgrade",
            "status_page": "Acme Status",
            "components": ["Database"],
            "start_at": "2026-11-24T02:00:00Z",
            "end_at": "2026-11-24T03:00:00Z",
            "message": "We will upgrade the database.",
        },
    )
    for status_code, alert in ((401, "WebDown"), (500, "DBDown")):
        before = len(bridge_requests(sb))
        await fault(sb, path_prefix="/v2/", status=status_code, count=6)
        if alert == "DBDown":
            status, _ = await bridge.request(
                "grafana",
                "POST",
                "/webhooks/grafana",
                data=am_payload(alert, "resolved", "1"),
                headers={
                    "X-Grafana-Alerting-Signature": hmac_signature(am_payload(alert, "resolved", "1")),
                    "Content-Type": "application/json",
                },
            )
            assert status == 200
        else:
            await bridge.alert(alert)
        await until(
            f"the daemon to meet the injected {status_code}s",
            lambda: not sb.app[SANDBOX_KEY].faults,
            log,
        )
        assert any(r["status"] == status_code for r in bridge_requests(sb)[before:])
    await until(
        "the daemon to recover after the faults",
        lambda: any(r["status"] < 300 and r["method"] != "GET" for r in bridge_requests(sb)[-5:]),
        log,
    )

    # 5. What an operator (or a scraper) reads.
    for path in ("/metrics", "/readyz", "/healthz", "/widget", "/api/v1/openapi.json"):
        status, _ = await bridge.request("read", "GET", path)
        assert status in (200, 503)
    status, state = await bridge.admin("GET", "/api/v1/state")
    assert status == 200 and state["alerts"]
    status, _ = await bridge.admin("GET", "/api/v1/maintenances")
    assert status == 200
    _, metrics = await bridge.request("metrics", "GET", "/metrics")
    assert b"statusbridge_" in metrics

    assert bridge.process.stop() == 0, log()[-5000:]
    text = log()
    assert '"level": "debug"' in text, "the daemon did not log at debug level: the check proves less"
    assert not leaks(text), f"secrets in the daemon's log: {leaks(text)}"
    assert not bridge.seen.leaked(), "secrets in answers:\n" + "\n".join(bridge.seen.leaked())

    # 6. What the daemon sent the page: the key in its Authorization header and nowhere else.
    exchanges = sb.exchanges
    assert exchanges
    for ex in exchanges:
        assert ex.request_headers.get("Authorization") == f"Bearer {API_KEY}", ex.request_headers
        others = {k: v for k, v in ex.request_headers.items() if k != "Authorization"}
        sent = f"{ex.path}?{ex.query}\n{others}\n{ex.request_body.decode(errors='replace')}"
        assert not leaks(sent), (ex.method, ex.path, leaks(sent))


@pytest.mark.parametrize("mode", ["live", "shadow"])
async def test_a_refused_key_is_reported_without_the_key(
    tmp_path: Path, sandbox_factory: SandboxFactory, mode: str
) -> None:
    """The page does not know the key: live mode refuses to start, shadow mode warns on /readyz."""
    sandbox = await sandbox_factory()  # the default seed: the canary key is not a key of the page
    bridge = Bridge(tmp_path, sandbox, STATUSBRIDGE_MODE=mode)
    bridge.process.start()
    try:
        if mode == "live":
            assert bridge.process.proc is not None
            code = await asyncio.to_thread(bridge.process.proc.wait, 30)
            assert code == 1, bridge.process.log()
            assert "pre-flight" in bridge.process.log()
        else:
            await wait_http(bridge.url + "/healthz", proc=bridge.process.proc)
            status, body = await bridge.request("readyz", "GET", "/readyz")
            assert status == 200 and b"does not work" in body, body
            for path in ("/metrics", "/api/v1/state"):
                await bridge.request("read", "GET", path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    finally:
        bridge.process.stop()
    assert any(r["status"] == 401 for r in sandbox.app[SANDBOX_KEY].requests)
    text = bridge.process.log()
    assert not leaks(text), f"secrets in the daemon's log: {leaks(text)}\n{text[-3000:]}"
    assert not bridge.seen.leaked(), "secrets in answers:\n" + "\n".join(bridge.seen.leaked())


# --- statusbridge check ------------------------------------------------------------------------


def canary_env(sandbox_url: str) -> dict[str, str]:
    return {
        "STATUSBRIDGE_INCIDENTIO_API_KEY": API_KEY,
        "STATUSBRIDGE_INCIDENTIO_BASE_URL": sandbox_url,
        "STATUSBRIDGE_INCIDENTIO_TIMEOUT": "2s",
        "STATUSBRIDGE_WEBHOOK_BEARER_TOKEN": WEBHOOK_TOKEN,
        "STATUSBRIDGE_GRAFANA_HMAC_SECRET": HMAC_SECRET,
        "STATUSBRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
    }


async def run_check(tmp: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    """``statusbridge check`` as a subprocess that does not block the loop (it may call the sandbox)."""
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("STATUSBRIDGE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        "check",
        *args,
        env={**base, **env},
        cwd=tmp,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return (
        proc.returncode,
        f"stdout:\n{out.decode(errors='replace')}\nstderr:\n{err.decode(errors='replace')}",
    )


BAD_CONFIGS: dict[str, tuple[dict[str, str], str | None, str]] = {
    # name: (extra environment, YAML config file or None, words the message must contain)
    "bad duration": ({"STATUSBRIDGE_COALESCE_WINDOW": "soon"}, None, "STATUSBRIDGE_COALESCE_WINDOW"),
    "key and key file": (
        {"STATUSBRIDGE_INCIDENTIO_API_KEY_FILE": "key.txt"},
        None,
        "not both",
    ),
    "unknown setting in the file": ({}, f"admin_tokn: {ADMIN_TOKEN}\n", "ADMIN_TOKN"),
    "a secret of the wrong type": ({}, f"admin_token: [{ADMIN_TOKEN}]\n", "STATUSBRIDGE_ADMIN_TOKEN"),
    "a secret as a mapping": (
        {},
        f"incidentio_api_key: {{key: {API_KEY}}}\n",
        "STATUSBRIDGE_INCIDENTIO_API_KEY",
    ),
    "basic password without user": (
        {"STATUSBRIDGE_WEBHOOK_BASIC_PASSWORD": WEBHOOK_TOKEN},
        None,
        "go together",
    ),
    "no rules": ({}, None, "no rules given"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
async def test_check_with_a_bad_config_prints_no_secret(
    tmp_path: Path, sandbox_factory: SandboxFactory, case: str
) -> None:
    sandbox = await sandbox_factory()
    env, config, words = BAD_CONFIGS[case]
    (tmp_path / "rules.yaml").write_text(RULES)
    args = ["--rules", "rules.yaml"] if case != "no rules" else []
    base = canary_env(sandbox.url)
    if config is not None:
        (tmp_path / "config.yaml").write_text(config)
        args += ["--config", "config.yaml"]
        # The environment wins over the file: the secret the file holds must come from the file.
        base = {k: v for k, v in base.items() if k.removeprefix("STATUSBRIDGE_").lower() + ":" not in config}
    code, output = await run_check(tmp_path, {**base, **env}, *args)
    assert code == 1, output
    assert words in output, output
    assert "Traceback" not in output, output
    assert not leaks(output), f"{leaks(output)}\n{output}"


async def test_check_against_a_page_that_refuses_the_key_prints_no_secret(
    tmp_path: Path, sandbox_factory: SandboxFactory
) -> None:
    sandbox = await sandbox_factory()  # the default seed: the canary key is refused with 401
    (tmp_path / "rules.yaml").write_text(RULES)
    code, output = await run_check(tmp_path, canary_env(sandbox.url), "--rules", "rules.yaml")
    assert code == 1, output
    assert "cannot read the status pages" in output, output
    assert not leaks(output), f"{leaks(output)}\n{output}"
    assert any(r["status"] == 401 for r in sandbox.app[SANDBOX_KEY].requests)


async def test_check_with_the_key_accepted_prints_no_secret(
    tmp_path: Path, keyed_sandbox: SandboxServer
) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    code, output = await run_check(tmp_path, canary_env(keyed_sandbox.url), "--rules", "rules.yaml")
    assert code == 0, output
    assert "against the live status pages" in output, output
    assert not leaks(output), f"{leaks(output)}\n{output}"


# A config file that is not valid YAML was reported with PyYAML's message, which quotes the
# offending line: the secret on it reached stderr (and, for `serve`, the log).
async def test_check_with_invalid_yaml_config_prints_no_secret(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "config.yaml").write_text(f'admin_token: {ADMIN_TOKEN}\nincidentio_api_key: "{API_KEY}\n')
    code, output = await run_check(tmp_path, {}, "--rules", "rules.yaml", "--config", "config.yaml")
    assert code == 1, output
    assert "not valid YAML" in output, output
    assert "line 2" in output, output
    assert not leaks(output), f"{leaks(output)}\n{output}"
