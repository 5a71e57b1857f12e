"""Hostile and malformed webhooks over real HTTP: a client's mistake is a 4xx naming it, never a 5xx,
and a rejected request leaves the store exactly as it was (compared row for row, receive counts and
timestamps included)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.store import StoredAlert
from tests.conftest import Server, ServerFactory
from tests.ingest.hostile import am_body, payloads

AM = "/webhooks/alertmanager"
GRAFANA = "/webhooks/grafana"
JSON = {"Content-Type": "application/json"}


async def post(
    server: Server, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession() as s:
        async with s.post(server.url + path, data=body, headers=JSON if headers is None else headers) as r:
            text = await r.text()
            assert r.content_type == "application/json", (r.status, text)
            return r.status, json.loads(text), dict(r.headers)


async def snapshot(server: Server) -> list[StoredAlert]:
    return await server.store.list_alerts(include_resolved=True, limit=1_000_000)


@pytest.mark.parametrize(
    ("alert", "field"),
    [
        ({"labels": {"alertname": "\ud800"}}, "alerts[0].labels.alertname"),
        ({"labels": {"\udc00": "x"}}, "alerts[0].labels.\\udc00"),
        ({"labels": {"alertname": "a\x00b"}}, "alerts[0].labels.alertname"),
        ({"annotations": {"summary": "\udfff"}}, "alerts[0].annotations.summary"),
        ({"fingerprint": "\ud83d"}, "alerts[0].fingerprint"),
        ({"generatorURL": "http://x/\ud800"}, "alerts[0].generatorURL"),
        ({"startsAt": "9999-12-31T23:59:59-01:00"}, "alerts[0].startsAt"),
        ({"startsAt": "0001-01-01T00:00:00+01:00"}, "alerts[0].startsAt"),
        ({"startsAt": "2026-11-23T25:00:00Z"}, "alerts[0].startsAt"),
        ({"startsAt": "20261123T100000Z"}, "alerts[0].startsAt"),
        ({"startsAt": "2026-11-23"}, "alerts[0].startsAt"),
        ({"startsAt": "2026-11-23T10:00:00"}, "alerts[0].startsAt"),
        ({"startsAt": "2026-11-23T10:00:00.Z"}, "alerts[0].startsAt"),
        ({"startsAt": 1700000000}, "alerts[0].startsAt"),
        ({"endsAt": "soon"}, "alerts[0].endsAt"),
        ({"labels": {}}, "alerts[0].labels"),
        ({"labels": {"a": 1}}, "alerts[0].labels.a"),
        ({"labels": None}, "alerts[0].labels"),
        ({"fingerprint": 12}, "alerts[0].fingerprint"),
        ({"fingerprint": "f" * 129}, "alerts[0].fingerprint"),
        ({"generatorURL": ["x"]}, "alerts[0].generatorURL"),
        ({"status": "pending"}, "alerts[0].status"),
    ],
)
async def test_malformed_alert_fields_are_422_naming_the_field(
    server: Server, alert: dict[str, Any], field: str
) -> None:
    await post(server, AM, am_body(labels={"alertname": "Before"}))
    before = await snapshot(server)
    for path in (AM, GRAFANA):
        body = am_body(**alert)
        if path == GRAFANA:
            body = body.replace(b'"version": "4"', b'"version": "1"')
        status, answer, _ = await post(server, path, body)
        assert status == 422, answer
        assert answer["error"]["field"] == field
        assert answer["error"]["status"] == 422
    assert await snapshot(server) == before


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"version": "4", "alerts": [], "x": NaN}', "NaN is not JSON"),
        (b'{"version": "4", "alerts": [], "x": -Infinity}', "-Infinity is not JSON"),
        ('{"version": "4", "alerts": []}'.encode("utf-16"), "not UTF-8"),
        (b'{"version": "4", "alerts": [], "x": "\xff"}', "not UTF-8"),
        (b'{"version": "4", "alerts": [], "x": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (
            b'{"version": "4", "alerts": [{"labels": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]}",
            "nested too deeply",
        ),
        (b"", "not valid JSON"),
        (b'{"version": "4"', "not valid JSON"),
    ],
)
async def test_bad_json_is_400(server: Server, body: bytes, words: str) -> None:
    before = await snapshot(server)
    for path in (AM, GRAFANA):
        status, answer, _ = await post(server, path, body)
        assert status == 400, answer
        assert words in answer["error"]["message"]
    assert await snapshot(server) == before


async def test_moderate_nesting_in_an_ignored_field_is_accepted(server: Server) -> None:
    deep = "[" * 500 + "]" * 500
    body = am_body()[:-1] + b', "extra": ' + deep.encode() + b"}"
    status, answer, _ = await post(server, AM, body)
    assert status == 200, answer


async def test_content_type_with_parameters_is_accepted_and_its_absence_named(server: Server) -> None:
    status, _, _ = await post(server, AM, am_body(), {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200
    status, answer, _ = await post(server, AM, am_body(), {})
    assert status == 415
    status, answer, _ = await post(
        server, AM, am_body(), {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 415
    assert "application/x-www-form-urlencoded" in answer["error"]["message"]


async def test_hostile_credentials_are_401_not_500(server_factory: ServerFactory) -> None:
    server = await server_factory(
        webhook_auth=None,
        webhook_bearer_token="tok",
        webhook_basic_username="u",
        webhook_basic_password="p",
        grafana_hmac_secret="s3cr3t",
        grafana_hmac_timestamp_header="X-Ts",
    )
    body = am_body().replace(b'"version": "4"', b'"version": "1"')
    stamp = str(int(server.clock.now.timestamp()))
    good_sig = hmac.new(b"s3cr3t", stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    hostile = [
        (AM, {"Authorization": "Bearer t\u00f6k"}),
        (AM, {"Authorization": "Basic \u00e9\u00e9\u00e9"}),
        (AM, {"Authorization": "Basic " + base64.b64encode("u:p\u00e9".encode()).decode()}),
        (AM, {"Authorization": "Basic !!!"}),
        (AM, {"Authorization": "Digest x"}),
        (GRAFANA, {"X-Grafana-Alerting-Signature": "\u00e9" * 64, "X-Ts": stamp}),
        (GRAFANA, {"X-Grafana-Alerting-Signature": good_sig, "X-Ts": "nan"}),
        (GRAFANA, {"X-Grafana-Alerting-Signature": good_sig, "X-Ts": "1" * 5000}),
        (GRAFANA, {"X-Grafana-Alerting-Signature": good_sig, "X-Ts": "-" + stamp}),
        (GRAFANA, {"X-Grafana-Alerting-Signature": good_sig, "X-Ts": stamp + ".0"}),
        (GRAFANA, {"X-Grafana-Alerting-Signature": good_sig}),
    ]
    for path, headers in hostile:
        status, answer, response_headers = await post(server, path, body, {**JSON, **headers})
        assert status == 401, (headers, answer)
        assert "WWW-Authenticate" in response_headers
    ok = {**JSON, "X-Grafana-Alerting-Signature": good_sig.upper(), "X-Ts": stamp}
    assert (await post(server, GRAFANA, body, ok))[0] == 200, "hex case does not matter"
    assert len(await snapshot(server)) == 1


async def test_challenges_name_the_schemes_each_endpoint_accepts(server_factory: ServerFactory) -> None:
    server = await server_factory(
        webhook_auth=None, webhook_basic_username="u", webhook_basic_password="p", grafana_hmac_secret="s"
    )
    _, answer, headers = await post(server, AM, am_body())
    assert headers["WWW-Authenticate"] == 'Basic realm="statusbridge", charset="UTF-8"'
    assert answer["error"]["message"] == "authentication required"
    _, _, headers = await post(server, GRAFANA, am_body())
    assert "HMAC-SHA256" in headers["WWW-Authenticate"]
    assert 'header="X-Grafana-Alerting-Signature"' in headers["WWW-Authenticate"]
    _, answer, _ = await post(server, AM, am_body(), {**JSON, "Authorization": "Basic eDp5"})
    assert answer["error"]["message"] == "invalid credentials"


async def test_hmac_only_leaves_the_alertmanager_endpoint_closed(server_factory: ServerFactory) -> None:
    """Alertmanager cannot sign: with only an HMAC secret configured its endpoint accepts nobody."""
    server = await server_factory(webhook_auth=None, grafana_hmac_secret="s")
    status, _, headers = await post(server, AM, am_body())
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_answer_counts_received_stored_and_changed(server: Server) -> None:
    twice = json.loads(am_body())
    twice["alerts"] = twice["alerts"] * 2
    status, answer, _ = await post(server, AM, json.dumps(twice).encode())
    assert status == 200
    assert answer == {"received": 2, "stored": 1, "changed": 1}
    status, answer, _ = await post(server, AM, json.dumps(twice).encode())
    assert answer == {"received": 2, "stored": 1, "changed": 0}


# --- property tests ------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads, path=st.sampled_from([AM, GRAFANA]))
async def test_hostile_payloads_never_5xx_and_rejections_store_nothing(
    server: Server, payload: Any, path: str
) -> None:
    before = await snapshot(server)
    status, answer, _ = await post(server, path, json.dumps(payload).encode())
    assert status in (200, 400, 422), answer
    if status == 200:
        assert answer["received"] == len(payload["alerts"])
    else:
        assert answer["error"]["status"] == status
        assert answer["error"]["message"]
        assert await snapshot(server) == before


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.binary(max_size=300)
    | st.builds(lambda n, c: c * n, st.integers(1, 20_000), st.sampled_from([b"[", b'{"a":', b"[{"])),
    path=st.sampled_from([AM, GRAFANA]),
)
async def test_hostile_bytes_never_5xx_and_store_nothing(server: Server, raw: bytes, path: str) -> None:
    before = await snapshot(server)
    status, answer, _ = await post(server, path, raw)
    assert status in (400, 422), answer
    assert await snapshot(server) == before
