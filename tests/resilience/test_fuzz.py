"""Bad input never gets a 5xx: hypothesis against every route of the in-process app, then schemathesis
against the admin API's own OpenAPI document served by a real ``statusbridge serve`` process.

Every answer is checked: no 5xx, no traceback, and every 4xx is the bridge's JSON error body
(``{"error": {"status", "message", "field"?}}``) whose message names the problem (not a bare reason
phrase). Afterwards the daemon is still healthy: ``/healthz`` and ``/readyz`` answer 200, a valid
webhook is still accepted, and the reconciler never failed on what was ingested.

Hypothesis runs in a worker thread while the event loop serves the app: each example hands its request
to the loop (one ``aiohttp.ClientSession`` for the whole run), so ``max_examples`` can come from the
``scale`` fixture at run time. Header values are printable text (non-ASCII included) of bounded
length: control characters and over-long headers are refused by aiohttp's HTTP parser before any
route or middleware of the bridge runs (a plain-text 400); that they leave one warning line and no
traceback in the log is test_malformed_request_leaves_no_traceback_in_the_log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from bridge.domain import ComponentStatus, IncidentStatus, PublishedGroup
from bridge.web.resources import METRICS, RECONCILE_TASK, RECONCILER, STOPPING
from tests.conftest import Server, ServerFactory
from tests.e2e.harness import Process, serve_process, wait_http
from tests.ingest.hostile import am_body, json_values, payloads
from tests.resilience.conftest import Scale

pytestmark = [pytest.mark.resilience]

ADMIN = "fuzz-admin-token-5d1e"
BEARER = "fuzz-webhook-token-a41c"
BASIC_USER, BASIC_PASSWORD = "fuzz-user", "fuzz-basic-pw-93b2"
HMAC_SECRET = "fuzz-hmac-secret-c07f"
SIG_HEADER = "X-Grafana-Alerting-Signature"
TS_HEADER = "X-Grafana-Alerting-Timestamp"
MAX_BODY = 16 * 1024
AM, GRAFANA = "/webhooks/alertmanager", "/webhooks/grafana"

RULES = """
status_page: "Acme Status"
defaults:
  open_after: 0s
  resolve_after: 0s
rules:
  - name: fuzz
    matchers: ['alertname =~ ".+"']
    components: ["API"]
    status:
      from_label: severity
      map: {critical: full_outage, warning: degraded_performance}
      default: partial_outage
    group_by: [service]
    incident:
      name: "{{ labels.service | default('svc') }}: {{ labels.alertname }}"
      message: "{{ annotations.summary | default('Investigating.') }}"
"""

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"

# --- the requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """Already percent-encoded (hostile path parameters stay exactly as generated)."""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    chunked: bool = False
    query: str = ""

    def describe(self) -> str:
        shown = self.body if self.body is None or len(self.body) <= 600 else self.body[:600] + b"..."
        return (
            f"{self.method} {self.path}{'?' + self.query if self.query else ''}\n"
            f"headers: {self.headers}\nchunked: {self.chunked}\nbody: {shown!r}"
        )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def describe(self) -> str:
        return f"-> {self.status} {self.headers.get('Content-Type')}\n{self.body[:2000]!r}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Printable header text: ASCII and beyond (aiohttp keeps non-UTF-8 bytes as surrogate escapes).
header_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60
) | st.sampled_from(["", " ", "null", "\u00e9\u00e9", "\U0001f525", "x" * 300, "%00", "../.."])
tokens = st.sampled_from(
    [
        ADMIN,
        BEARER,
        ADMIN + "x",
        ADMIN[:-1],
        BEARER[:-1] + "X",
        "",
        HMAC_SECRET,
        BASIC_PASSWORD,
    ]
)
authorizations = st.one_of(
    st.none(),
    st.builds(lambda t: f"Bearer {t}", tokens),
    st.builds(
        lambda scheme, t: f"{scheme} {t}", st.sampled_from(["bearer", "BEARER", "Bearer ", "Token"]), tokens
    ),
    st.just("Basic " + b64(f"{BASIC_USER}:{BASIC_PASSWORD}")),
    st.builds(lambda u, p: "Basic " + b64(f"{u}:{p}"), st.text(max_size=12), st.text(max_size=12)),
    st.builds(lambda s: "Basic " + s, header_text),
    st.builds(lambda s: "Bearer " + s, header_text),
    header_text,
)
content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "APPLICATION/JSON",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "application/octet-stream",
            "application/json;;;",
        ]
    ),
    header_text,
)


def to_bytes(value: Any) -> bytes:
    # ensure_ascii keeps lone surrogates as \udxxx escapes, as a hostile sender would write them.
    return json.dumps(value).encode()


VALID_WINDOW = {
    "name": "Database upgrade",
    "status_page": "Acme Status",
    "components": ["API"],
    "start_at": "2026-11-23T13:00:00Z",
    "end_at": "2026-11-23T15:00:00+01:00",
    "message": "We will upgrade the database.",
}
WINDOW_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["", " ", "x" * 201, "{{ name }}"]) | st.text(max_size=30),
    "status_page": st.sampled_from(["Acme Status", "01HSANDBOXPAGE000000000000", ""]) | st.text(max_size=10),
    "components": st.sampled_from([[], ["Web/Dashboard", "nope"], ["API"] * 3, [""]])
    | st.lists(st.text(max_size=10), max_size=3),
    "start_at": st.sampled_from(
        [
            "2026-11-23T11:00:00+00:00",
            "2026-11-23T13:00:00",
            "2026-11-23",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-14:00",
            "2026-11-23T13:00:00Z ",
        ]
    )
    | st.text(max_size=25),
    "end_at": st.sampled_from(
        ["2026-11-23T14:00:00Z", "2026-11-23T12:30:00Z", "2026-11-22T00:00:00Z", "9999-12-31T23:59:59Z"]
    )
    | st.text(max_size=25),
    "message": st.sampled_from(["", "{{ 1/0 }}", "{% for %}", "{{ x.__class__ }}", "m" * 5000])
    | st.text(max_size=30),
    "started_message": st.sampled_from(["", "{{", "ok"]) | st.text(max_size=20),
    "completed_message": st.sampled_from(["", "}}", "ok"]) | st.text(max_size=20),
    "notify_subscribers": st.booleans() | st.sampled_from(["yes", 1, 0]),
    "automate": st.booleans() | st.sampled_from(["no", 2]),
    "cron": st.sampled_from(["0 2 * * 0", "* * *"]),
    "duration": st.sampled_from(["1h", "-1h"]),
    "timezone": st.sampled_from(["Europe/Paris", "Mars/Olympus"]),
    "id": st.sampled_from(["mw-0000000000000000", ""]),
    "source": st.sampled_from(["config", "api"]),
}


@st.composite
def maintenance_bodies(draw: st.DrawFn) -> Any:
    """A valid window with up to three fields dropped or replaced by hostile values (any JSON too)."""
    body: dict[str, Any] = dict(VALID_WINDOW)
    for key in draw(st.lists(st.sampled_from(sorted(WINDOW_VALUES)), max_size=3, unique=True)):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            body.pop(key, None)
        elif choice == 1:
            body[key] = draw(json_values)
        else:
            body[key] = draw(WINDOW_VALUES[key])
    return body


maintenance_like = maintenance_bodies() | st.dictionaries(st.sampled_from(sorted(WINDOW_VALUES)), json_values)
label_names = st.sampled_from(["alertname", "service", "severity", "instance"]) | st.text(max_size=8)


@st.composite
def valid_alerts(draw: st.DrawFn, version: str) -> bytes:
    """Well-formed webhooks with arbitrary label and annotation text: what the rules then render."""
    labels = draw(st.dictionaries(label_names, st.text(max_size=40), max_size=5))
    labels["alertname"] = draw(st.text(min_size=1, max_size=40))
    annotations = draw(st.dictionaries(st.sampled_from(["summary", "description"]), st.text(max_size=60)))
    alert: dict[str, Any] = {
        "status": draw(st.sampled_from(["firing", "resolved"])),
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2026-11-23T11:00:00Z",
    }
    if alert["status"] == "resolved":
        alert["endsAt"] = "2026-11-23T11:30:00Z"
    return to_bytes({"version": version, "status": alert["status"], "alerts": [alert]})


bodies = st.one_of(
    st.none(),
    st.builds(to_bytes, json_values),
    st.builds(to_bytes, payloads),
    st.builds(to_bytes, maintenance_like),
    st.binary(max_size=200),
    st.sampled_from([b"", b"null", b"{}", b"[]", b"{", b"NaN", b"\xff\xfe", b"[" * 5000 + b"]" * 5000]),
    st.builds(lambda n: b"[" * n, st.sampled_from([MAX_BODY, MAX_BODY + 1, 3 * MAX_BODY])),
)
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND", "TRACE"])
param_text = st.text(max_size=20) | st.sampled_from(
    ["", ".", "..", "%", "%2F", "a/b", "\x00", "\ud800", "\U0001f525", "x" * 2000, "mw-0000000000000000"]
)


def one_in(n: int) -> st.SearchStrategy[bool]:
    return st.sampled_from([False] * (n - 1) + [True])


def encode_param(value: str, safe: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe=safe)


@st.composite
def requests(
    draw: st.DrawFn, routes: list[tuple[str, str]], known: dict[str, list[str]], stray_method_odds: int = 2
) -> Request:
    """Any method on any route (or none), with hostile path parameters, headers and bodies."""
    route_method, template = draw(st.sampled_from(routes))
    method = draw(methods) if draw(one_in(stray_method_odds)) else route_method
    path = template
    for name in ("key", "id"):
        if "{" + name + "}" in path:
            value = draw(st.sampled_from(known[name]) | param_text) if known[name] else draw(param_text)
            safe = draw(st.sampled_from(["", "/", ":@!$&'()*+,;=", "%"]))
            path = path.replace("{" + name + "}", encode_param(value, safe))
    if draw(one_in(20)):
        # Near misses: unknown paths, trailing slashes, doubled slashes, dot segments.
        path = draw(
            st.sampled_from(
                [path + "/", "/" + path, path + "/x", path.upper(), path + "%00", "/api/v1/../healthz"]
            )
            | st.builds(lambda s: "/" + encode_param(s, "/"), st.text(max_size=30))
        )
    body = draw(bodies)
    headers: dict[str, str] = {}
    if (ctype := draw(content_types)) is not None:
        headers["Content-Type"] = ctype
    if (auth := draw(authorizations)) is not None:
        headers["Authorization"] = auth
    headers.update(draw(hmac_headers(body or b"")))
    if draw(st.booleans()):
        headers["X-Request-Id"] = draw(header_text)
    if draw(one_in(10)):
        headers["If-None-Match"] = draw(header_text)
    query = draw(st.sampled_from(["", "limit=-1", "a=%ff", "x=" + "y" * 500]))
    return Request(method, path, headers, body, chunked=body is not None and draw(st.booleans()), query=query)


def signature(body: bytes, stamp: str) -> str:
    return hmac.new(HMAC_SECRET.encode(), stamp.encode() + b":" + body, hashlib.sha256).hexdigest()


NOW_STAMP = "1795435200"  # FakeClock's start, 2026-11-23T12:00:00Z


@st.composite
def hmac_headers(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    stamp = draw(st.sampled_from([NOW_STAMP, str(int(NOW_STAMP) - 3600), "", "nan", "-1"]) | header_text)
    sig = draw(
        st.sampled_from(["valid", "upper", "other body", "absent"])
        | st.text("0123456789abcdef", min_size=64, max_size=64)
        | header_text
    )
    if sig == "absent":
        return {}
    value = {
        "valid": signature(body, stamp),
        "upper": signature(body, stamp).upper(),
        "other body": signature(body + b" ", stamp),
    }.get(sig, sig)
    headers = {SIG_HEADER: value}
    if draw(st.integers(0, 5)):
        headers[TS_HEADER] = stamp
    return headers


@st.composite
def webhook_requests(draw: st.DrawFn) -> Request:
    """The webhook endpoints with webhook-shaped hostile payloads and every way of authenticating."""
    path = draw(st.sampled_from([AM, GRAFANA]))
    valid = valid_alerts("4" if path == AM else "1")
    body = draw(
        st.one_of(valid, valid, st.builds(to_bytes, payloads), bodies.filter(lambda b: b is not None))
    )
    headers: dict[str, str] = {}
    ctype = draw(content_types) if draw(one_in(4)) else "application/json"
    if ctype is not None:
        headers["Content-Type"] = ctype
    how = draw(st.sampled_from(["bearer", "basic", "hmac", "signed", "other"]))
    if how == "bearer":
        headers["Authorization"] = f"Bearer {BEARER}"
    elif how == "basic":
        headers["Authorization"] = "Basic " + b64(f"{BASIC_USER}:{BASIC_PASSWORD}")
    elif how == "hmac":
        headers.update(draw(hmac_headers(body)))
    elif how == "signed":
        headers.update({SIG_HEADER: signature(body, NOW_STAMP), TS_HEADER: NOW_STAMP})
    elif (auth := draw(authorizations)) is not None:
        headers["Authorization"] = auth
    method = draw(st.sampled_from(["POST", "PUT"]) if path == GRAFANA else st.just("POST"))
    return Request(method, path, headers, body, chunked=draw(st.booleans()))


@st.composite
def admin_requests(draw: st.DrawFn, routes: list[tuple[str, str]], known: dict[str, list[str]]) -> Request:
    """The admin API with the right token: what is left to get wrong is the path and the body."""
    request = draw(requests([r for r in routes if r[1].startswith("/api/v1/")], known, stray_method_odds=10))
    body = draw(st.builds(to_bytes, maintenance_like) | bodies)
    headers = {**request.headers, "Authorization": f"Bearer {ADMIN}"}
    if draw(st.integers(0, 3)):
        headers["Content-Type"] = "application/json"
    return replace(request, headers=headers, body=body, chunked=False)


# --- running them -----------------------------------------------------------------------------


class Fuzzer:
    """Sends requests on the test's event loop from hypothesis' worker thread, and checks answers."""

    def __init__(self, server: Server, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.loop = asyncio.get_running_loop()
        self.sent = 0
        self.statuses: dict[int, int] = {}

    async def send(self, request: Request) -> Answer:
        url = URL(
            self.server.url + request.path + ("?" + request.query if request.query else ""), encoded=True
        )
        data: Any = request.body
        if request.chunked and request.body is not None:
            data = chunks(request.body)
        skip = [] if "Content-Type" in request.headers else ["Content-Type"]
        async with self.session.request(
            request.method,
            url,
            data=data,
            headers=request.headers,
            skip_auto_headers=skip,
            allow_redirects=False,
        ) as r:
            body = await r.read()
            return Answer(r.status, dict(r.headers), body)

    def send_from_thread(self, request: Request) -> Answer:
        answer = asyncio.run_coroutine_threadsafe(self.send(request), self.loop).result(timeout=60)
        self.sent += 1
        self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
        check(request, answer)
        return answer

    async def run(self, strategy: st.SearchStrategy[Request], examples: int) -> None:
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
                HealthCheck.filter_too_much,
            ],
        )
        @given(request=strategy)
        def one(request: Request) -> None:
            self.send_from_thread(request)

        await asyncio.to_thread(one)


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(body), 4096):
        yield body[i : i + 4096]


def check(request: Request, answer: Answer) -> None:
    where = f"\n{request.describe()}\n{answer.describe()}"
    assert answer.status < 500, "server error" + where
    assert b"Traceback" not in answer.body, "traceback in the answer" + where
    if answer.status < 400 or request.method == "HEAD":
        return
    assert answer.headers.get("Content-Type", "").startswith("application/json"), "4xx not JSON" + where
    try:
        error = json.loads(answer.body)["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError("4xx body is not the bridge's error shape" + where) from None
    assert error["status"] == answer.status, where
    message = error["message"]
    assert isinstance(message, str), where
    assert message.strip(), "empty error message" + where
    assert message.lower() != HTTPStatus(answer.status).phrase.lower(), "the message names no problem" + where
    assert isinstance(error.get("field", ""), str), where


def routes_of(app: web.Application) -> list[tuple[str, str]]:
    found = sorted(
        {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.resource is not None and route.method != "*"
        }
    )
    paths = {path for _, path in found}
    for path in ("/webhooks/alertmanager", "/webhooks/grafana", "/healthz", "/readyz", "/metrics", "/widget"):
        assert path in paths, f"{path} is no longer routed: update this test"
    assert any(p.startswith("/api/v1/maintenances") for p in paths)
    return found


@dataclass
class Target:
    server: Server
    routes: list[tuple[str, str]]
    known: dict[str, list[str]]


@pytest.fixture
async def target(server_factory: ServerFactory, tmp_path: Path) -> Target:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    server = await server_factory(
        webhook_auth=None,
        admin_token=ADMIN,
        webhook_bearer_token=BEARER,
        webhook_basic_username=BASIC_USER,
        webhook_basic_password=BASIC_PASSWORD,
        grafana_hmac_secret=HMAC_SECRET,
        grafana_hmac_timestamp_header=TS_HEADER,
        webhook_max_body_bytes=MAX_BODY,
        rules_path=str(rules),
        coalesce_window="0s",
    )
    assert str(int(server.clock.now.timestamp())) == NOW_STAMP
    # Groups the {key} routes can find: one the bridge manages, one a human took over.
    now = server.clock.now
    for group in (
        PublishedGroup(
            key="svc-open",
            episode=1,
            status_page_id="01HSANDBOXPAGE000000000000",
            incident_id="01HINC0000000000000000000",
            incident_status=IncidentStatus.INVESTIGATING,
            components={"01HCOMPAPI0000000000000000": ComponentStatus.FULL_OUTAGE},
            name="API is down",
            update_count=1,
            opened_at=now,
            last_published_at=now,
        ),
        PublishedGroup(
            key='fuzz{service="taken"}',
            episode=1,
            status_page_id="01HSANDBOXPAGE000000000000",
            incident_id="01HINC0000000000000000001",
            incident_status=IncidentStatus.IDENTIFIED,
            taken_over=True,
            taken_over_reason="a human edited it",
        ),
    ):
        await server.store.save_group_unfenced(group)
    # Windows the {id} routes can find: one in progress, one to come.
    ids = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        for start, end in (
            (now - timedelta(hours=1), now + timedelta(hours=1)),
            (now + timedelta(days=1), now + timedelta(days=2)),
        ):
            window = {
                "name": "Planned work",
                "status_page": "Acme Status",
                "components": ["API"],
                "start_at": start.isoformat(),
                "end_at": end.isoformat(),
                "message": "We will upgrade the database.",
            }
            async with s.post(server.url + "/api/v1/maintenances", json=window) as r:
                assert r.status == 201, await r.text()
                ids.append((await r.json())["id"])
    known = {"key": ["svc-open", 'fuzz{service="taken"}'], "id": ids}
    return Target(server, routes_of(server.app), known)


async def assert_still_healthy(target: Target, session: aiohttp.ClientSession) -> None:
    url = target.server.url
    async with session.get(url + "/healthz") as r:
        assert r.status == 200, await r.text()
    async with session.get(url + "/readyz") as r:
        assert r.status == 200, await r.text()
    body = am_body(labels={"alertname": "StillUp", "service": "api"})
    async with session.post(
        url + AM, data=body, headers={"Authorization": f"Bearer {BEARER}", "Content-Type": "application/json"}
    ) as r:
        assert r.status == 200, await r.text()
    grafana = body.replace(b'"version": "4"', b'"version": "1"')
    headers = {
        SIG_HEADER: signature(grafana, NOW_STAMP),
        TS_HEADER: NOW_STAMP,
        "Content-Type": "application/json",
    }
    async with session.post(url + GRAFANA, data=grafana, headers=headers) as r:
        assert r.status == 200, await r.text()
    async with session.get(url + "/api/v1/state", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
        assert r.status == 200, await r.text()
        assert any(a["labels"].get("alertname") == "StillUp" for a in (await r.json())["alerts"])
    # What was ingested never broke the reconciler: stop its loop, then one more pass by hand.
    app = target.server.app
    app[STOPPING].set()
    await app[RECONCILE_TASK]
    report = await app[RECONCILER].reconcile_once()
    errors = {key: g.error for key, g in report.groups.items() if g.error}
    assert not errors, f"reconcile errors after fuzzing: {errors}"
    failed = app[METRICS].reconcile_runs.labels("failed")._value.get()
    assert failed == 0, f"{failed} reconcile pass(es) failed during the fuzzing"


async def fuzz(
    target: Target,
    strategy: st.SearchStrategy[Request],
    examples: int,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> Fuzzer:
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        fuzzer = Fuzzer(target.server, session)
        await fuzzer.run(strategy, examples)
        await assert_still_healthy(target, session)
    # Whatever the logging set-up (structlog's default printer, or stdlib once configured): no
    # traceback was logged while handling the requests or reconciling what they stored.
    out, err = capsys.readouterr()
    with capsys.disabled():
        print(
            f"\n{fuzzer.sent} requests (target {examples}) in {time.monotonic() - started:.1f}s; "
            f"statuses {dict(sorted(fuzzer.statuses.items()))}"
        )
    assert "Traceback" not in out + err, (out + err)[-8000:]
    logged = [r for r in caplog.records if r.exc_info]
    assert not logged, "\n".join(caplog.text.splitlines()[-100:])
    assert fuzzer.sent >= examples // 2, "hypothesis ran far fewer cases than asked"
    return fuzzer


# Of scale.fuzz_cases: 50% any request on any route, 30% webhooks, 20% the admin API with its token.


async def test_any_request_on_any_route_never_5xx(
    target: Target, scale: Scale, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    await fuzz(target, requests(target.routes, target.known), scale.fuzz_cases * 5 // 10, capsys, caplog)


async def test_webhooks_with_every_auth_never_5xx(
    target: Target, scale: Scale, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    await fuzz(target, webhook_requests(), scale.fuzz_cases * 3 // 10, capsys, caplog)


async def test_admin_api_with_its_token_never_5xx(
    target: Target, scale: Scale, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    await fuzz(
        target, admin_requests(target.routes, target.known), scale.fuzz_cases * 2 // 10, capsys, caplog
    )


# --- a real process: schemathesis against the served OpenAPI document -------------------------------


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[tuple[Process, str]]:
    process, url = serve_process(
        tmp_path,
        tmp_path / "bridge.db",
        STATUSBRIDGE_ADMIN_TOKEN=ADMIN,
        STATUSBRIDGE_WEBHOOK_BEARER_TOKEN=BEARER,
        STATUSBRIDGE_LOG_FORMAT="json",
    )
    process.start()
    try:
        await wait_http(url + "/healthz", proc=process.proc)
        yield process, url
    finally:
        process.stop()


async def test_schemathesis_against_the_served_openapi(
    serve: tuple[Process, str], tmp_path: Path, scale: Scale, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every operation of /api/v1/openapi.json (examples, coverage, fuzzing and stateful phases, with
    the admin token): no 5xx, and every answer conforms to the documented schema, content type and
    headers, and its status code is one the document lists. Not checked: positive_data_acceptance
    (schema-valid windows are still refused when they name an unknown page or end before they
    start: semantic checks a schema cannot state); use_after_free (DELETE of a window that has
    started completes it by design, so it stays readable)."""
    process, url = serve
    examples = max(10, scale.fuzz_cases // 20)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        url + "/api/v1/openapi.json",
        "--url",
        url,
        "--header",
        f"Authorization: Bearer {ADMIN}",
        "--checks",
        "not_a_server_error,status_code_conformance,response_schema_conformance,"
        "content_type_conformance,response_headers_conformance",
        "--max-examples",
        str(examples),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        "20261123",
        "--no-shrink",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=900)
    output = out.decode(errors="replace")
    summary = re.findall(r"\d+ generated, [^\n]*", output)
    with capsys.disabled():
        print(
            f"\nschemathesis, {examples} examples per operation, {time.monotonic() - started:.1f}s: {summary}"
        )
    assert proc.returncode == 0, output[-8000:]
    assert process.proc is not None and process.proc.poll() is None, "the bridge died\n" + process.log()
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/healthz") as r:
            assert r.status == 200
    tracebacks = [line for line in process.log().splitlines() if "Traceback" in line]
    assert not tracebacks, "\n".join(tracebacks)[-8000:]


# A request aiohttp's HTTP parser refuses (a NUL byte in a header value, an over-long header) is
# answered 400; aiohttp used to log it as an ERROR with a full traceback, so any client could write
# tracebacks into the log at will. Now it is one warning line.
@pytest.mark.parametrize(
    "raw",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Probe: \x00\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 10_000 + b"\r\nConnection: close\r\n\r\n",
    ],
    ids=["nul-in-header", "header-over-8190-bytes"],
)
async def test_malformed_request_leaves_no_traceback_in_the_log(
    serve: tuple[Process, str], raw: bytes
) -> None:
    process, url = serve
    reader, writer = await asyncio.open_connection("127.0.0.1", URL(url).port)
    writer.write(raw)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    writer.close()
    await writer.wait_closed()
    status = int(status_line.split()[1])
    assert 400 <= status < 500, status_line
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/healthz") as r:  # the log line is written before the answer
            assert r.status == 200
    assert "Traceback" not in process.log(), process.log()[-3000:]
    assert "refused a malformed HTTP request" in process.log(), process.log()[-3000:]
