"""Webhooks over real HTTP: captured Alertmanager deliveries, Grafana payloads, auth, error order."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.domain import AlertStatus
from bridge.ingest.payloads import fingerprint
from tests.conftest import FIXTURES, Server, ServerFactory

PAYLOADS = FIXTURES / "payloads"
AM = PAYLOADS / "alertmanager"


def capture(path: Path) -> tuple[dict[str, str], bytes]:
    data = json.loads(path.read_text())
    headers = {
        k: v for k, v in data["headers"] if k.lower() in ("content-type", "user-agent", "authorization")
    }
    return headers, data["body_raw"].encode()


async def post(
    server: Server, path: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.request(
            method, server.url + path, data=body, headers=headers or {"Content-Type": "application/json"}
        ) as r:
            try:
                return r.status, await r.json()
            except (aiohttp.ContentTypeError, json.JSONDecodeError):
                return r.status, await r.text()


def test_fingerprint_matches_alertmanager() -> None:
    for scenario in ("lifecycle", "default", "prometheus-e2e", "repeat"):
        for f in sorted((AM / scenario).glob("0*.json")):
            for alert in json.loads(f.read_text())["body"]["alerts"]:
                assert fingerprint(alert["labels"]) == alert["fingerprint"]


@pytest.mark.parametrize(
    "scenario",
    [
        "lifecycle",
        "repeat",
        "flaky",
        "always500",
        "bad",
        "slow",
        "maxalerts",
        "noresolved",
        "default",
        "oauth2hook",
        "prometheus-e2e",
    ],
)
async def test_replay_captured_alertmanager_deliveries(server: Server, scenario: str) -> None:
    files = sorted((AM / scenario).glob("0*.json"))
    assert files
    for f in files:
        headers, body = capture(f)
        headers.pop("Authorization", None)
        status, answer = await post(server, "/webhooks/alertmanager", body, headers)
        assert status == 200, answer
    stored = {(s.alert.fingerprint, s.alert.starts_at): s for s in await server.store.list_alerts()}
    last_seen: dict[tuple[str, str], str] = {}
    for f in files:
        for a in json.loads(f.read_text())["body"]["alerts"]:
            last_seen[(a["fingerprint"], a["startsAt"])] = a["status"]
    assert len(stored) == len(last_seen)
    for (fp, _starts), last_status in last_seen.items():
        matching = [s for (f2, _), s in stored.items() if f2 == fp]
        assert matching
        if last_status == "resolved":
            assert all(m.alert.status is AlertStatus.RESOLVED or m.alert.starts_at for m in matching)


async def test_lifecycle_ends_resolved_and_firing_has_no_end(server: Server) -> None:
    for f in sorted((AM / "lifecycle").glob("0*.json"))[:1]:
        headers, body = capture(f)
        headers.pop("Authorization", None)
        await post(server, "/webhooks/alertmanager", body, headers)
    (first,) = await server.store.list_alerts()
    assert first.alert.status is AlertStatus.FIRING
    assert first.alert.ends_at is None
    for f in sorted((AM / "lifecycle").glob("0*.json"))[1:]:
        headers, body = capture(f)
        headers.pop("Authorization", None)
        await post(server, "/webhooks/alertmanager", body, headers)
    alerts = await server.store.list_alerts()
    assert {a.alert.labels["instance"]: a.alert.status for a in alerts} == {
        "host-a": AlertStatus.RESOLVED,
        "host-b": AlertStatus.RESOLVED,
    }


async def test_refire_keeps_fingerprint_with_new_instances(server: Server) -> None:
    for f in sorted((AM / "prometheus-e2e").glob("0*.json")):
        headers, body = capture(f)
        await post(server, "/webhooks/alertmanager", body, headers)
    alerts = await server.store.list_alerts()
    assert {a.alert.fingerprint for a in alerts} == {"a53ee049567d62be"}
    assert len({a.alert.starts_at for a in alerts}) >= 2


async def test_late_resolve_of_old_instance_never_resolves_new_one(server: Server) -> None:
    def body(status: str, starts: str, ends: str) -> bytes:
        return json.dumps(
            {
                "version": "4",
                "alerts": [
                    {"status": status, "labels": {"alertname": "X"}, "startsAt": starts, "endsAt": ends}
                ],
            }
        ).encode()

    await post(
        server, "/webhooks/alertmanager", body("firing", "2026-11-23T10:00:00Z", "0001-01-01T00:00:00Z")
    )
    await post(
        server, "/webhooks/alertmanager", body("firing", "2026-11-23T11:00:00Z", "0001-01-01T00:00:00Z")
    )
    await post(
        server, "/webhooks/alertmanager", body("resolved", "2026-11-23T10:00:00Z", "2026-11-23T10:30:00Z")
    )
    # a late repeat of the old instance's firing does not reopen it either
    await post(
        server, "/webhooks/alertmanager", body("firing", "2026-11-23T10:00:00Z", "0001-01-01T00:00:00Z")
    )
    active = await server.store.active_alerts(
        now=server.clock.now, ttl=__import__("datetime").timedelta(days=365)
    )
    assert [a.starts_at.hour for a in active] == [11]
    statuses = {a.alert.starts_at.hour: a.alert.status for a in await server.store.list_alerts()}
    assert statuses == {10: AlertStatus.RESOLVED, 11: AlertStatus.FIRING}


@pytest.mark.parametrize("name", ["docs-two-firing.json", "library-test-one-alert.json"])
async def test_grafana_payloads(server: Server, name: str) -> None:
    raw = json.loads((PAYLOADS / "grafana" / name).read_text())
    body = json.dumps(raw.get("body", raw)).encode()
    status, answer = await post(server, "/webhooks/grafana", body)
    assert status == 200, answer
    stored = await server.store.list_alerts()
    payload = raw.get("body", raw)
    assert {s.alert.fingerprint for s in stored} == {a["fingerprint"] for a in payload["alerts"]}
    status, _ = await post(server, "/webhooks/grafana", body, method="PUT")
    assert status == 200


async def test_legacy_grafana_is_a_clear_422(server: Server) -> None:
    raw = (PAYLOADS / "grafana" / "legacy-pre8.json").read_text()
    data = json.loads(raw)
    status, answer = await post(server, "/webhooks/grafana", json.dumps(data.get("body", data)).encode())
    assert status == 422
    assert "legacy" in answer["error"]["message"]


GOOD = json.dumps(
    {
        "version": "4",
        "alerts": [{"status": "firing", "labels": {"a": "b"}, "startsAt": "2026-11-23T10:00:00Z"}],
    }
).encode()


async def test_error_order_and_json_bodies(server_factory: ServerFactory) -> None:
    server = await server_factory(webhook_auth=None, webhook_bearer_token="tok", webhook_max_body_bytes=2048)
    ok = {"Content-Type": "application/json", "Authorization": "Bearer tok"}
    # 401 whatever the body
    status, answer = await post(server, "/webhooks/alertmanager", b"x" * 5000, {"Content-Type": "text/plain"})
    assert status == 401
    assert answer["error"]["status"] == 401
    status, answer = await post(
        server, "/webhooks/alertmanager", b"x" * 5000, {**ok, "Content-Type": "text/plain"}
    )
    assert status == 413
    status, answer = await post(server, "/webhooks/alertmanager", GOOD, {**ok, "Content-Type": "text/plain"})
    assert status == 415
    status, answer = await post(server, "/webhooks/alertmanager", b"{nope", ok)
    assert status == 400
    status, answer = await post(server, "/webhooks/alertmanager", b"[" * 50 + b"]" * 50, ok)
    assert status == 422
    bad = json.dumps(
        {"version": "4", "alerts": [{"status": "firing", "labels": {"a": "b"}, "startsAt": "yesterday"}]}
    ).encode()
    status, answer = await post(server, "/webhooks/alertmanager", bad, ok)
    assert status == 422
    assert answer["error"]["field"] == "alerts[0].startsAt"
    assert (await post(server, "/webhooks/alertmanager", GOOD, ok))[0] == 200
    status, answer = await post(server, "/nope", b"", ok)
    assert status == 404
    assert "no such endpoint" in answer["error"]["message"]
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/webhooks/alertmanager") as r:
            assert r.status == 405
            assert (await r.json())["error"]["status"] == 405


async def test_absurd_nesting_is_a_400(server: Server) -> None:
    status, answer = await post(server, "/webhooks/alertmanager", b"[" * 200_000 + b"]" * 200_000)
    assert status == 400
    assert "nested" in answer["error"]["message"]


async def test_basic_auth_and_grafana_hmac(server_factory: ServerFactory) -> None:
    server = await server_factory(
        webhook_auth=None,
        webhook_basic_username="amuser",
        webhook_basic_password="ampass",
        grafana_hmac_secret="s3cr3t",
        grafana_hmac_timestamp_header="X-Grafana-Alerting-Signature-Timestamp",
    )
    basic = "Basic " + base64.b64encode(b"amuser:ampass").decode()
    assert (
        await post(
            server,
            "/webhooks/alertmanager",
            GOOD,
            {"Content-Type": "application/json", "Authorization": basic},
        )
    )[0] == 200
    wrong = "Basic " + base64.b64encode(b"amuser:nope").decode()
    assert (
        await post(
            server,
            "/webhooks/alertmanager",
            GOOD,
            {"Content-Type": "application/json", "Authorization": wrong},
        )
    )[0] == 401
    body = json.dumps(
        {
            "version": "1",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"a": "b"},
                    "startsAt": "2026-11-23T10:00:00Z",
                    "fingerprint": "abc",
                }
            ],
        }
    ).encode()
    stamp = str(int(server.clock.now.timestamp()))
    sig = hmac.new(b"s3cr3t", stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Grafana-Alerting-Signature": sig,
        "X-Grafana-Alerting-Signature-Timestamp": stamp,
    }
    assert (await post(server, "/webhooks/grafana", body, headers))[0] == 200
    # HMAC does not apply to Alertmanager's endpoint
    assert (await post(server, "/webhooks/alertmanager", GOOD, headers))[0] == 401
    server.clock.advance(600)
    assert (await post(server, "/webhooks/grafana", body, headers))[0] == 401
    assert (
        await post(
            server,
            "/webhooks/grafana",
            body + b" ",
            {**headers, "X-Grafana-Alerting-Signature-Timestamp": str(int(server.clock.now.timestamp()))},
        )
    )[0] == 401


def test_hmac_vectors_of_the_ingest_readme() -> None:
    from datetime import UTC, datetime

    from pydantic import SecretStr

    from bridge.ingest.auth import WebhookAuth

    body = b'{"receiver":"test","status":"firing"}'
    auth = WebhookAuth(hmac_secret=SecretStr("s3cr3t"))
    now = datetime.fromtimestamp(1700000000, UTC)
    assert auth.hmac_ok(
        {"X-Grafana-Alerting-Signature": "6d6d8503ba1402271e6460368a09d02b5f741980e32e680abacc7bccd36afee3"},
        body,
        now,
    )
    ts_auth = WebhookAuth(hmac_secret=SecretStr("s3cr3t"), hmac_timestamp_header="X-Ts")
    sig = "4855486db55d9f02ce32fc2fd450d53d9bf3fc3eac55e305d7023aac32d53d07"
    assert ts_auth.hmac_ok({"X-Grafana-Alerting-Signature": sig, "X-Ts": "1700000000"}, body, now)
    other = WebhookAuth(hmac_secret=SecretStr("secret"))
    assert other.hmac_ok(
        {"X-Grafana-Alerting-Signature": "3bcebf43c85d20bba6e3b6ba278af1d2ba3ab0d57de271b0ad30b833e851c5a6"},
        b"test message",
        now,
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
alertish = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved", "x", 1]),
        "labels": json_values | st.dictionaries(st.text(max_size=5), st.text(max_size=5)),
    },
    optional={
        "startsAt": st.sampled_from(["2026-11-23T10:00:00Z", "0001-01-01T00:00:00Z", "nope", 5, ""]),
        "endsAt": json_values,
        "fingerprint": json_values,
        "annotations": json_values,
    },
)
payloads = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "version": st.sampled_from(["4", "1", 4, None]),
            "alerts": st.lists(alertish, max_size=4) | json_values,
        }
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads, endpoint=st.sampled_from(["/webhooks/alertmanager", "/webhooks/grafana"]))
async def test_hostile_payloads_never_5xx_nor_half_written(
    server: Server, payload: Any, endpoint: str
) -> None:
    before = len(await server.store.list_alerts())
    status, answer = await post(server, endpoint, json.dumps(payload).encode())
    assert status < 500, answer
    after = len(await server.store.list_alerts())
    if status != 200:
        assert after == before
        assert answer["error"]["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
async def test_hostile_bytes_never_5xx(server: Server, raw: bytes) -> None:
    status, _ = await post(server, "/webhooks/alertmanager", raw)
    assert status in (200, 400, 422)
