"""Webhook authentication as a matrix, and the order of the checks.

The policy under test (bridge/ingest/auth.py): a request passes when it satisfies at least one
configured method that applies to its endpoint; HMAC applies only to /webhooks/grafana, because
Alertmanager cannot sign. Time for the signed timestamp comes from the injected clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Server, ServerFactory

AM, GRAFANA = "/webhooks/alertmanager", "/webhooks/grafana"
BODY = json.dumps(
    {
        "version": "1",
        "alerts": [{"status": "firing", "labels": {"alertname": "A"}, "startsAt": "2026-11-23T10:00:00Z"}],
    },
    separators=(",", ":"),
).encode()
AM_BODY = BODY.replace(b'"version":"1"', b'"version":"4"')

CONFIGS: dict[str, dict[str, Any]] = {
    "bearer": {"webhook_bearer_token": "tok"},
    "basic": {"webhook_basic_username": "u", "webhook_basic_password": "p"},
    "bearer+basic": {
        "webhook_bearer_token": "tok",
        "webhook_basic_username": "u",
        "webhook_basic_password": "p",
    },
    "hmac": {"grafana_hmac_secret": "s3cr3t"},
    "bearer+hmac": {"webhook_bearer_token": "tok", "grafana_hmac_secret": "s3cr3t"},
    "basic+hmac": {
        "webhook_basic_username": "u",
        "webhook_basic_password": "p",
        "grafana_hmac_secret": "s3cr3t",
    },
}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def signature(body: bytes, secret: bytes = b"s3cr3t") -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


# Presented credentials: (name, headers for a body, which methods they satisfy).
CREDENTIALS: list[tuple[str, Any, set[str]]] = [
    ("nothing", lambda b: {}, set()),
    ("bearer", lambda b: {"Authorization": "Bearer tok"}, {"bearer"}),
    ("bearer-wrong", lambda b: {"Authorization": "Bearer tok2"}, set()),
    ("bearer-prefix", lambda b: {"Authorization": "Bearer to"}, set()),
    ("basic", lambda b: {"Authorization": basic("u", "p")}, {"basic"}),
    ("basic-wrong-user", lambda b: {"Authorization": basic("v", "p")}, set()),
    ("basic-wrong-password", lambda b: {"Authorization": basic("u", "q")}, set()),
    ("basic-as-bearer", lambda b: {"Authorization": "Bearer " + basic("u", "p")[6:]}, set()),
    ("hmac", lambda b: {"X-Grafana-Alerting-Signature": signature(b)}, {"hmac"}),
    ("hmac-wrong-secret", lambda b: {"X-Grafana-Alerting-Signature": signature(b, b"other")}, set()),
    ("hmac-other-body", lambda b: {"X-Grafana-Alerting-Signature": signature(b + b" ")}, set()),
    (
        "bearer-wrong+hmac",
        lambda b: {"Authorization": "Bearer nope", "X-Grafana-Alerting-Signature": signature(b)},
        {"hmac"},
    ),
    (
        "basic+hmac-wrong",
        lambda b: {"Authorization": basic("u", "p"), "X-Grafana-Alerting-Signature": "00" * 32},
        {"basic"},
    ),
]


async def send(server: Server, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            server.url + path, data=body, headers={"Content-Type": "application/json", **headers}
        ) as r:
            return r.status, await r.json(), r.headers


@pytest.mark.parametrize("config", CONFIGS)
async def test_auth_matrix(server_factory: ServerFactory, config: str) -> None:
    server = await server_factory(webhook_auth=None, **CONFIGS[config])
    configured = set(config.split("+"))
    for path, body in ((AM, AM_BODY), (GRAFANA, BODY)):
        applicable = configured - ({"hmac"} if path == AM else set())
        for name, make, satisfies in CREDENTIALS:
            status, answer, headers = await send(server, path, body, make(body))
            expected = 200 if satisfies & applicable else 401
            assert status == expected, (config, path, name, answer)
            if status == 401:
                assert answer["error"]["status"] == 401
                assert headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (-300, True), (300, True), (-301, False), (301, False), (-86_400, False)],
)
async def test_signed_timestamp_skew_with_an_injected_clock(
    server_factory: ServerFactory, offset: int, accepted: bool
) -> None:
    server = await server_factory(
        webhook_auth=None, grafana_hmac_secret="s3cr3t", grafana_hmac_timestamp_header="X-Ts"
    )
    stamp = str(int(server.clock.now.timestamp()) + offset)
    headers = {"X-Ts": stamp, "X-Grafana-Alerting-Signature": signature(stamp.encode() + b":" + BODY)}
    status, answer, _ = await send(server, GRAFANA, BODY, headers)
    assert status == (200 if accepted else 401), answer
    # Without the timestamp in the signed message the same headers never pass.
    unsigned_ts = {"X-Ts": stamp, "X-Grafana-Alerting-Signature": signature(BODY)}
    assert (await send(server, GRAFANA, BODY, unsigned_ts))[0] == 401


async def test_hmac_vectors_through_http(server_factory: ServerFactory) -> None:
    """bridge/ingest/README.md §2.4: the same vectors, as a Grafana would send them."""
    body = b'{"receiver":"test","status":"firing"}'
    server = await server_factory(
        webhook_auth=None, grafana_hmac_secret="s3cr3t", grafana_hmac_timestamp_header="X-Ts"
    )
    server.clock.now = server.clock.now.fromtimestamp(1700000000, server.clock.now.tzinfo)
    vector = "4855486db55d9f02ce32fc2fd450d53d9bf3fc3eac55e305d7023aac32d53d07"
    status, answer, _ = await send(
        server, GRAFANA, body, {"X-Ts": "1700000000", "X-Grafana-Alerting-Signature": vector}
    )
    # Authenticated, then refused for what the body is (no alerts): 422, not 401.
    assert (status, answer["error"]["field"]) == (422, "alerts")
    plain = await server_factory(webhook_auth=None, grafana_hmac_secret="s3cr3t")
    vector = "6d6d8503ba1402271e6460368a09d02b5f741980e32e680abacc7bccd36afee3"
    status, _, _ = await send(plain, GRAFANA, body, {"X-Grafana-Alerting-Signature": vector})
    assert status == 422
    custom = await server_factory(
        webhook_auth=None, grafana_hmac_secret="secret", grafana_hmac_header="X-Sig"
    )
    vector = "3bcebf43c85d20bba6e3b6ba278af1d2ba3ab0d57de271b0ad30b833e851c5a6"
    status, answer, _ = await send(custom, GRAFANA, b"test message", {"X-Sig": vector})
    assert (status, answer["error"]["status"]) == (400, 400), "authenticated, then not JSON"


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = b" " * min(size, total - sent)
        sent += len(piece)
        yield piece


async def test_size_is_bounded_without_a_content_length(server_factory: ServerFactory) -> None:
    server = await server_factory(
        webhook_auth=None,
        webhook_bearer_token="tok",
        grafana_hmac_secret="s3cr3t",
        webhook_max_body_bytes=4096,
    )
    async with aiohttp.ClientSession() as s:
        # Chunked: no Content-Length to refuse up front; the read itself stops at the limit.
        async with s.post(
            server.url + AM,
            data=chunks(10 * 1024 * 1024),
            headers={"Content-Type": "application/json", "Authorization": "Bearer tok"},
        ) as r:
            assert r.status == 413
            assert "4096" in (await r.json())["error"]["message"]
        # Unauthenticated and chunked: 401 before anything is read.
        async with s.post(server.url + AM, data=chunks(10 * 1024 * 1024)) as r:
            assert r.status == 401
    # A signed request must be read to be verified: oversized, it is a 413 whatever the signature.
    status, answer, _ = await send(server, GRAFANA, b" " * 5000, {"X-Grafana-Alerting-Signature": "00"})
    assert status == 413, answer
    assert await server.store.list_alerts() == []


async def test_order_auth_size_type_syntax_schema(server_factory: ServerFactory) -> None:
    server = await server_factory(webhook_auth=None, webhook_bearer_token="tok", webhook_max_body_bytes=2048)
    auth = {"Authorization": "Bearer tok"}
    big, bad_json, bad_schema = b"x" * 4096, b"{nope", b'{"version":"4","alerts":[{"status":"x"}]}'
    cases = [
        ({}, "text/plain", big, 401),
        ({"Authorization": "Bearer wrong"}, "application/json", AM_BODY, 401),
        (auth, "text/plain", big, 413),
        (auth, "text/plain", bad_json, 415),
        (auth, "application/json", bad_json, 400),
        (auth, "application/json", bad_schema, 422),
        (auth, "application/json", AM_BODY, 200),
    ]
    async with aiohttp.ClientSession() as s:
        for headers, content_type, body, expected in cases:
            async with s.post(
                server.url + AM, data=body, headers={**headers, "Content-Type": content_type}
            ) as r:
                assert r.status == expected, (expected, await r.text())
                assert r.content_type == "application/json"


async def test_framework_errors_are_json(server: Server) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + AM) as r:
            assert r.status == 405
            assert "POST" in r.headers["Allow"]
            assert (await r.json())["error"] == {
                "status": 405,
                "message": "method GET not allowed on /webhooks/alertmanager",
            }
        async with s.delete(server.url + GRAFANA) as r:
            assert r.status == 405
            assert {"POST", "PUT"} <= set(r.headers["Allow"].replace(" ", "").split(","))
        async with s.post(server.url + "/webhooks/prometheus", data=b"{}") as r:
            assert r.status == 404
            assert (await r.json())["error"]["status"] == 404
