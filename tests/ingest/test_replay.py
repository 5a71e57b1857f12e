"""Every captured Alertmanager delivery, replayed byte for byte with its own headers (credentials
included) at its own receive time, against a bridge configured like the receiver that captured it;
then the Grafana payloads, signed the way Grafana signs. The stored alerts are checked against
expectations computed from the captured JSON, delivery by delivery, not against our own parser."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from bridge.domain import ZERO_TIME, AlertStatus, Source
from bridge.ingest.payloads import fingerprint
from bridge.store import StoredAlert
from tests.conftest import FIXTURES, Server, ServerFactory

PAYLOADS = FIXTURES / "payloads"
AM = PAYLOADS / "alertmanager"
GRAFANA = PAYLOADS / "grafana"
SCENARIOS = sorted(p.name for p in AM.iterdir() if p.is_dir())

# The receivers of payloads/alertmanager/alertmanager.yml: lifecycle used basic_auth, repeat a bearer
# token, oauth2hook the access token its token endpoint issued (tok-1); the rest sent no credentials.
AUTH: dict[str, dict[str, Any]] = {
    "lifecycle": {"webhook_basic_username": "amuser", "webhook_basic_password": "ampass"},
    "repeat": {"webhook_bearer_token": "s3cr3t-token"},
    "oauth2hook": {"webhook_bearer_token": "tok-1"},
}
SENT_HEADERS = {"user-agent", "authorization", "content-type"}


def deliveries(scenario: str) -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in sorted((AM / scenario).glob("[0-9][0-9][0-9].json"))]


def instant(text: str) -> datetime:
    """Go's RFC3339Nano as the captures have it (always Z), truncated to microseconds."""
    m = re.fullmatch(r"(.{19})(?:\.(\d+))?Z", text)
    assert m, text
    return datetime.fromisoformat(m.group(1)).replace(
        tzinfo=UTC, microsecond=int((m.group(2) or "0")[:6].ljust(6, "0"))
    )


async def bridge_for(server_factory: ServerFactory, scenario: str) -> Server:
    auth = AUTH.get(scenario)
    return await server_factory(**({"webhook_auth": None, **auth} if auth else {"webhook_auth": "none"}))


async def deliver(server: Server, capture: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    server.clock.now = datetime.fromisoformat(capture["received_at"])
    headers = {k: v for k, v in capture["headers"] if k.lower() in SENT_HEADERS}
    async with aiohttp.ClientSession() as s:
        async with s.request(
            capture["method"],
            server.url + "/webhooks/alertmanager",
            data=capture["body_raw"].encode("utf-8"),
            headers=headers,
        ) as r:
            return r.status, await r.json()


async def stored(server: Server) -> dict[tuple[str, datetime], StoredAlert]:
    return {(s.alert.fingerprint, s.alert.starts_at): s for s in await server.store.list_alerts(limit=10_000)}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_every_captured_delivery_is_stored_as_sent(
    server_factory: ServerFactory, scenario: str
) -> None:
    server = await bridge_for(server_factory, scenario)
    expected: dict[tuple[str, datetime], dict[str, Any]] = {}
    for capture in deliveries(scenario):
        status, answer = await deliver(server, capture)
        assert status == 200, answer
        body = capture["body"]
        received = datetime.fromisoformat(capture["received_at"])
        keys = {(a["fingerprint"], instant(a["startsAt"])) for a in body["alerts"]}
        assert (answer["received"], answer["stored"]) == (len(body["alerts"]), len(keys))
        for a in body["alerts"]:
            key = (a["fingerprint"], instant(a["startsAt"]))
            e = expected.setdefault(key, {"raw": a, "count": 0, "first": received, "resolved": None})
            e["count"] += 1
            e["last"] = received
            if a["status"] == "resolved" and e["resolved"] is None:
                e["resolved"] = instant(a["endsAt"])  # resolved is terminal: the first resolve stays
            elif e["resolved"] is None:
                e["raw"] = a
        # After every delivery, the active set is the latest instance of each series, if firing.
        latest: dict[str, tuple[datetime, bool]] = {}
        for (fp, starts), e in expected.items():
            if fp not in latest or starts > latest[fp][0]:
                latest[fp] = (starts, e["resolved"] is None)
        active = await server.store.active_alerts(now=received, ttl=timedelta(hours=8))
        assert {(a.fingerprint, a.starts_at) for a in active} == {
            (fp, starts) for fp, (starts, firing) in latest.items() if firing
        }
    got = await stored(server)
    assert set(got) == set(expected)
    for key, e in expected.items():
        s, raw = got[key], e["raw"]
        assert s.alert.source is Source.ALERTMANAGER
        assert s.alert.fingerprint == raw["fingerprint"] == fingerprint(raw["labels"])
        assert dict(s.alert.labels) == raw["labels"]
        assert dict(s.alert.annotations) == raw["annotations"]
        assert s.alert.generator_url == raw["generatorURL"]
        assert s.alert.status is (AlertStatus.FIRING if e["resolved"] is None else AlertStatus.RESOLVED)
        assert s.alert.ends_at == e["resolved"], "firing alerts carry no end (Go's zero time)"
        assert (s.receive_count, s.first_received_at, s.last_received_at) == (
            e["count"],
            e["first"],
            e["last"],
        )


async def test_lifecycle_ends_with_both_hosts_resolved(server_factory: ServerFactory) -> None:
    server = await bridge_for(server_factory, "lifecycle")
    for capture in deliveries("lifecycle"):
        assert (await deliver(server, capture))[0] == 200
    final = {s.alert.labels["instance"]: s.alert for s in (await stored(server)).values()}
    assert {host: (a.status, a.ends_at) for host, a in final.items()} == {
        "host-a": (AlertStatus.RESOLVED, datetime(2026, 11, 23, 0, 30, 26, 785000, tzinfo=UTC)),
        "host-b": (AlertStatus.RESOLVED, datetime(2026, 11, 23, 0, 30, 30, 815000, tzinfo=UTC)),
    }
    # The captured \u0026 in the raw body is an ampersand once decoded.
    assert (
        final["host-a"].generator_url == "http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
    )


async def test_prometheus_refires_keep_one_fingerprint_with_three_instances(
    server_factory: ServerFactory,
) -> None:
    server = await bridge_for(server_factory, "prometheus-e2e")
    for capture in deliveries("prometheus-e2e"):
        assert (await deliver(server, capture))[0] == 200
    by_start = sorted((s.alert for s in (await stored(server)).values()), key=lambda a: a.starts_at)
    assert {a.fingerprint for a in by_start} == {"a53ee049567d62be"}
    base = datetime(2026, 11, 23, 0, 29, 0, 560000, tzinfo=UTC)
    assert [a.starts_at for a in by_start] == [
        base,
        base + timedelta(seconds=30),
        base + timedelta(seconds=60),
    ]
    assert [a.status for a in by_start] == [AlertStatus.RESOLVED, AlertStatus.RESOLVED, AlertStatus.FIRING]
    assert [a.ends_at for a in by_start[:2]] == [a.starts_at + timedelta(seconds=15) for a in by_start[:2]]


async def test_truncated_alerts_are_answered_and_logged(server_factory: ServerFactory) -> None:
    server = await bridge_for(server_factory, "maxalerts")
    first = deliveries("maxalerts")[0]
    with capture_logs() as logs:
        status, answer = await deliver(server, first)
    assert (status, answer["truncated"], answer["received"]) == (200, 2, 1)
    (warning,) = [e for e in logs if e["event"] == "sender truncated alerts"]
    assert warning["log_level"] == "warning"
    assert warning["truncated"] == 2
    assert warning["group_key"] == first["body"]["groupKey"]


async def test_nanosecond_start_and_empty_generator_url(server_factory: ServerFactory) -> None:
    server = await bridge_for(server_factory, "default")
    assert (await deliver(server, deliveries("default")[0]))[0] == 200
    (s,) = (await stored(server)).values()
    assert s.alert.starts_at == datetime(2026, 11, 23, 0, 30, 19, 746270, tzinfo=UTC)
    assert s.alert.generator_url == ""


async def test_a_captured_delivery_needs_the_credentials_it_was_sent_with(
    server_factory: ServerFactory,
) -> None:
    server = await bridge_for(server_factory, "lifecycle")
    capture = deliveries("lifecycle")[0]
    stripped = {**capture, "headers": [h for h in capture["headers"] if h[0].lower() != "authorization"]}
    status, answer = await deliver(server, stripped)
    assert status == 401, answer
    other = await bridge_for(server_factory, "repeat")
    assert (await deliver(other, capture))[0] == 401, "basic credentials do not open a bearer-only bridge"
    assert await other.store.list_alerts() == []


# --- Grafana ---------------------------------------------------------------------------------------


def grafana_body(name: str) -> tuple[dict[str, Any], bytes]:
    payload = json.loads((GRAFANA / name).read_text())
    # Go's json.Marshal: compact, no trailing newline (bridge/ingest/README.md, Grafana).
    return payload, json.dumps(payload, separators=(",", ":")).encode()


async def post_grafana(server: Server, body: bytes, method: str = "POST") -> tuple[int, dict[str, Any]]:
    stamp = str(int(server.clock.now.timestamp()))
    signature = hmac.new(b"s3cr3t", stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Grafana",
        "X-Grafana-Alerting-Signature": signature,
        "X-Grafana-Alerting-Timestamp": stamp,
    }
    async with aiohttp.ClientSession() as s:
        async with s.request(method, server.url + "/webhooks/grafana", data=body, headers=headers) as r:
            return r.status, await r.json()


async def grafana_bridge(server_factory: ServerFactory) -> Server:
    return await server_factory(
        webhook_auth=None,
        grafana_hmac_secret="s3cr3t",
        grafana_hmac_timestamp_header="X-Grafana-Alerting-Timestamp",
    )


async def test_grafana_docs_payload_uses_grafanas_fingerprints(server_factory: ServerFactory) -> None:
    server = await grafana_bridge(server_factory)
    payload, body = grafana_body("docs-two-firing.json")
    status, answer = await post_grafana(server, body)
    assert (status, answer["received"], answer["stored"]) == (200, 2, 2)
    got = {s.alert.fingerprint: s.alert for s in await server.store.list_alerts()}
    assert set(got) == {"c6eadffa33fcdf37", "bc97ff14869b13e3"}
    for raw in payload["alerts"]:
        a = got[raw["fingerprint"]]
        # Grafana's fingerprint covers labels the payload hides: it is kept, never recomputed.
        assert a.fingerprint != fingerprint(raw["labels"])
        assert a.source is Source.GRAFANA
        assert (a.status, a.ends_at, a.generator_url) == (AlertStatus.FIRING, None, raw["generatorURL"])
    assert got["c6eadffa33fcdf37"].starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    # PUT is the other method Grafana can be set to use; a repeat changes nothing.
    status, answer = await post_grafana(server, body, method="PUT")
    assert (status, answer["changed"]) == (200, 0)


async def test_grafana_library_payload_with_zero_start(server_factory: ServerFactory) -> None:
    server = await grafana_bridge(server_factory)
    _, body = grafana_body("library-test-one-alert.json")
    status, _ = await post_grafana(server, body)
    assert status == 200
    ((s),) = await server.store.list_alerts()
    assert (s.alert.fingerprint, s.alert.starts_at) == ("fac0861a85de433a", ZERO_TIME)
    assert s.alert.fingerprint == fingerprint(dict(s.alert.labels))
    assert dict(s.alert.annotations) == {"ann1": "annv1"}


async def test_grafana_legacy_payload_is_refused_with_the_reason(server_factory: ServerFactory) -> None:
    server = await grafana_bridge(server_factory)
    _, body = grafana_body("legacy-pre8.json")
    status, answer = await post_grafana(server, body)
    assert status == 422
    assert "legacy Grafana alerting" in answer["error"]["message"]
    assert await server.store.list_alerts() == []
