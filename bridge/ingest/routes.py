"""The webhook endpoints: authenticate, bound, parse, normalize, commit — then answer 2xx.

Order of checks (each a JSON error naming the problem): authentication (401, whatever the body),
size (413), content type (415), JSON syntax (400), payload schema (422). Only a store failure is a
5xx (503 with Retry-After, so Alertmanager retries). Nothing is stored unless the whole payload is
valid: one transaction per webhook.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bridge import pacing
from bridge.domain import Alert
from bridge.ingest.auth import WebhookAuth
from bridge.ingest.payloads import PayloadError, parse_alertmanager, parse_grafana
from bridge.observability import get_logger
from bridge.store.base import Store

log = get_logger(__name__)

Parser = Callable[[Any, datetime], list[Alert]]


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    """The one error body of the daemon's HTTP answers: ``{"error": {"status", "message", "field"?}}``
    (``field`` names the request field at fault, when there is one)."""
    error: dict[str, Any] = {"status": status, "message": message}
    if field:
        error["field"] = field
    return {"error": error}


class WebhookError(web.HTTPException):
    """An error answer with the JSON body of ``error_body``."""

    def __init__(
        self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status
        body = json.dumps(error_body(status, message, field))
        super().__init__(text=body, content_type="application/json", headers=headers)


class Ingest:
    """The webhook endpoints: authenticate, parse and commit each delivery before answering; a delivery
    refused is answered with a JSON error naming the problem, and 503 with Retry-After when the store fails.
    """

    def __init__(
        self,
        store: Callable[[], Store],
        auth: WebhookAuth,
        *,
        max_body: int,
        clock: Callable[[], datetime],
        on_change: Callable[[], None],
        on_outcome: Callable[[str, int], None] = lambda _source, _status: None,
    ) -> None:
        self._store = store
        self._auth = auth
        self._max_body = max_body
        self._clock = clock
        self._on_change = on_change
        self._on_outcome = on_outcome

    def routes(self) -> list[web.RouteDef]:
        """``POST /webhooks/alertmanager`` and ``POST``/``PUT /webhooks/grafana``."""
        return [
            web.post("/webhooks/alertmanager", self._handler("alertmanager", parse_alertmanager)),
            web.post("/webhooks/grafana", self._handler("grafana", parse_grafana)),
            web.put("/webhooks/grafana", self._handler("grafana", parse_grafana)),
        ]

    def _handler(self, source: str, parse: Parser) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            try:
                response = await self._handle(request, source, parse)
            except web.HTTPException as exc:
                self._on_outcome(source, exc.status)
                raise
            self._on_outcome(source, response.status)
            return response

        return handle

    async def _handle(self, request: web.Request, source: str, parse: Parser) -> web.Response:
        now = self._clock()
        grafana = source == "grafana"
        header_ok = self._auth.open or self._auth.header_ok(request.headers)
        needs_hmac = not header_ok and self._auth.applies_hmac(grafana)
        if not header_ok and not (needs_hmac and self._auth.hmac_header in request.headers):
            given = "Authorization" in request.headers
            raise WebhookError(
                401,
                "invalid credentials" if given else "authentication required",
                headers={"WWW-Authenticate": self._auth.challenge(grafana)},
            )
        length = request.content_length
        if length is not None and length > self._max_body:
            raise WebhookError(413, f"body larger than {self._max_body} bytes")
        # The signature covers the body, so an oversized signed request is a 413 before it can be a 401.
        body = await self._read(request)
        if needs_hmac and not self._auth.hmac_ok(request.headers, body, now):
            raise WebhookError(
                401,
                "bad or expired HMAC signature",
                headers={"WWW-Authenticate": self._auth.challenge(grafana)},
            )
        if request.content_type != "application/json":
            got = request.headers.get("Content-Type") or "none"
            raise WebhookError(415, f"expected Content-Type application/json, got {got}")
        payload = _decode_json(body)
        try:
            alerts = parse(payload, now)
        except PayloadError as exc:
            # from None: a payload error quotes parts of the webhook body (values, labels, version).
            raise WebhookError(exc.status, exc.detail, exc.field) from None
        try:
            result = await self._store().upsert_alerts(alerts)
        except Exception as exc:
            log.exception("storing alerts failed", source=source, alerts=len(alerts))
            raise WebhookError(
                503,
                "the alert store is unavailable; retry later",
                headers={"Retry-After": str(pacing.INGEST_RETRY_AFTER)},
            ) from exc
        answer: dict[str, Any] = {
            "received": result.received,
            "stored": len({(a.source, a.fingerprint, a.starts_at) for a in alerts}),
            "changed": result.changed,
        }
        truncated = payload.get("truncatedAlerts") if isinstance(payload, dict) else None
        if isinstance(truncated, int) and not isinstance(truncated, bool) and truncated > 0:
            # The sender's max_alerts dropped alerts of this group: they are not on the page either.
            answer["truncated"] = truncated
            log.warning(
                "sender truncated alerts",
                source=source,
                truncated=truncated,
                group_key=str(payload.get("groupKey", ""))[:500],
            )
        if result.changed:
            self._on_change()
        return web.json_response(answer)

    async def _read(self, request: web.Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_body:
                raise WebhookError(413, f"body larger than {self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_json(body: bytes) -> Any:
    """RFC 8259 JSON: UTF-8 only, no NaN/Infinity; absurd nesting is a 400, never a RecursionError."""
    # from None, all three: a parse error of the webhook body stays out of the chain; the
    # UnicodeDecodeError and the JSONDecodeError hold the whole body (.object, .doc).
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise WebhookError(400, f"body is not UTF-8: invalid byte at offset {exc.start}") from None
    except RecursionError:
        raise WebhookError(400, "body is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise WebhookError(400, f"body is not valid JSON: {exc}") from None
