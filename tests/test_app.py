"""The serve app: health, readiness, the admin API and its OpenAPI document, start-up refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bridge.app import check_startup
from bridge.settings import Settings, SettingsError
from bridge.store import open_store
from bridge.web.admin import OPENAPI
from bridge.web.resources import RULES, STOPPING
from tests.conftest import FIXTURES, ServerFactory, metric
from tests.e2e.harness import free_port, serve_process, wait_http


async def test_health_and_readiness(server_factory: ServerFactory) -> None:
    server = await server_factory()
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/healthz") as r:
            assert r.status == 200
        async with s.get(server.url + "/readyz") as r:
            body = await r.json()
            assert r.status == 200
            assert body["ready"] is True
            assert "incidentio" in body["warnings"]  # reported, but the daemon still ingests


async def test_a_nearly_full_disk_under_the_store_is_a_warning_and_the_store_a_metric(
    server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await server_factory()
    # The file system is the OS's (nobody fills a real disk for a test): it reports its usage.
    used = {"share": 50}
    monkeypatch.setattr(
        shutil, "disk_usage", lambda _path: shutil._ntuple_diskusage(100, used["share"], 100 - used["share"])
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/readyz") as r:
            assert "store_disk" not in (await r.json())["warnings"]
        assert await metric(server.url, "statusbridge_store_bytes") > 0
        used["share"] = 95
        async with s.get(server.url + "/readyz") as r:
            body = await r.json()
    assert r.status == 200, "a warning: the daemon still ingests"
    assert body["warnings"]["store_disk"].startswith("the disk under the store is 95% full")


async def test_admin_api_requires_token_and_matches_its_openapi(server_factory: ServerFactory) -> None:
    server = await server_factory(admin_token="adm1n-token")
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/api/v1/state") as r:
            assert r.status == 401
            assert (await r.json())["error"]["message"]
        async with s.get(server.url + "/api/v1/state", headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with s.get(server.url + "/api/v1/state", headers={"Authorization": "Bearer adm1n-token"}) as r:
            assert r.status == 200
            state = await r.json()
            assert state["mode"] == "live"
        async with s.get(server.url + "/api/v1/openapi.json") as r:
            doc = await r.json()
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in server.app.router.routes()
        if isinstance(route.resource, web.Resource)
        and route.resource.canonical.startswith("/api/v1/")
        and route.method != "HEAD"
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
    assert routes == documented, "the OpenAPI document and the routes drifted apart"
    before = json.loads((FIXTURES / "openapi" / "statusbridge-admin.before-issue-14.json").read_text())
    assert doc == before, "the admin API's OpenAPI document changed (see tests/fixtures/README.md)"
    from openapi_spec_validator import validate

    validate(OPENAPI)


async def test_readiness_goes_503_when_shutting_down(server_factory: ServerFactory) -> None:
    server = await server_factory()
    server.app[STOPPING].set()
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/readyz") as r:
            assert r.status == 503
            assert (await r.json())["problems"]["shutdown"] == "shutting down"


@pytest.mark.real_time("a real statusbridge serve process: waits, polling, for its start-up")
async def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    proc, url = serve_process(tmp_path, tmp_path / "b.db")
    proc.start()
    await wait_http(url + "/readyz", proc=proc.proc)
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=20) == 0, proc.log()


async def test_admin_api_disabled_without_token(server_factory: ServerFactory) -> None:
    server = await server_factory()
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/api/v1/state", headers={"Authorization": "Bearer x"}) as r:
            assert r.status == 403


async def test_metrics(server_factory: ServerFactory, tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("status_page: P\nrules:\n  - {name: r, components: [API]}\n")
    server = await server_factory(rules_path=str(rules))
    body = json.dumps(
        {
            "version": "4",
            "alerts": [{"status": "firing", "labels": {"a": "b"}, "startsAt": "2026-11-23T10:00:00Z"}],
        }
    )
    async with aiohttp.ClientSession() as s:
        await s.post(
            server.url + "/webhooks/alertmanager", data=body, headers={"Content-Type": "application/json"}
        )
        await s.post(server.url + "/webhooks/grafana", data="{", headers={"Content-Type": "application/json"})
        rules.write_text("rules: [broken")
        holder = server.app[RULES]
        assert holder is not None
        holder.reload()
        async with s.get(server.url + "/metrics") as r:
            text = await r.text()
        async with s.get(server.url + "/readyz") as r:
            ready = await r.json()
    assert 'statusbridge_webhooks_total{outcome="200",source="alertmanager"} 1.0' in text
    assert 'statusbridge_webhooks_total{outcome="400",source="grafana"} 1.0' in text
    (errors,) = [
        line for line in text.splitlines() if line.startswith("statusbridge_rules_reload_errors_total ")
    ]
    assert float(errors.split()[1]) >= 1
    assert "statusbridge_rules_last_reload_ok 0.0" in text
    assert "reload failed" in ready["warnings"]["rules"]


def test_refuses_open_webhooks_unless_explicit() -> None:
    with pytest.raises(SettingsError, match="open to anyone"):
        check_startup(Settings(webhook_auth=None))
    check_startup(Settings(webhook_auth="none"))
    check_startup(Settings(webhook_bearer_token="t"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STATUSBRIDGE_")}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **(env or {})},
    )


def test_serve_refusals_are_one_line(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "0", env={"STATUSBRIDGE_STORE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert result.returncode == 1
    assert "open to anyone" in result.stderr
    result = run_cli("serve", env={"STATUSBRIDGE_COALESCE_WINDOW": "fast"})
    assert result.returncode == 1
    assert "STATUSBRIDGE_COALESCE_WINDOW" in result.stderr
    result = run_cli(
        "serve",
        env={
            "STATUSBRIDGE_WEBHOOK_AUTH": "none",
            "STATUSBRIDGE_STORE_URL": f"sqlite:///{tmp_path}/no/such/dir.db",
            "STATUSBRIDGE_PORT": str(free_port()),
        },
    )
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    for r in (result,):
        assert "Traceback" not in r.stderr


@pytest.mark.real_time("a real statusbridge serve process: waits, polling, for its start-up")
async def test_acknowledged_alert_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "bridge.db"
    proc, url = serve_process(tmp_path, db)
    proc.start()
    try:
        await wait_http(url + "/healthz", proc=proc.proc)
        body = {
            "version": "4",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "Durable"}, "startsAt": "2026-11-23T10:00:00Z"}
            ],
        }
        async with aiohttp.ClientSession() as s:
            async with s.post(
                url + "/webhooks/alertmanager",
                data=json.dumps(body),
                headers={"Content-Type": "application/json"},
            ) as r:
                assert r.status == 200
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait(timeout=10)
    finally:
        proc.stop()
    store = await open_store(f"sqlite:///{db}")
    try:
        (stored,) = await store.list_alerts()
        assert stored.alert.labels["alertname"] == "Durable"
    finally:
        await store.close()


async def test_request_ids(server_factory: ServerFactory) -> None:
    server = await server_factory()
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/healthz", headers={"X-Request-Id": "abc-123"}) as r:
            assert r.headers["X-Request-Id"] == "abc-123"
        async with s.get(server.url + "/nope") as r:
            assert len(r.headers["X-Request-Id"]) == 32
