"""The root app's middlewares, outermost first: request ids, requests in flight, JSON errors.

They wrap every route, the admin sub-application's included (aiohttp runs a parent's middlewares
before a sub-application's).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator

import structlog
from aiohttp import web

from bridge.ingest.routes import WebhookError
from bridge.observability import get_logger
from bridge.web.errors import error_response

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InFlight:
    """Requests being handled, so that shutdown can wait for them while their bodies still flow.

    aiohttp's own graceful shutdown stops reading from every connection first, so a webhook whose
    body was still arriving could never finish: it waited out the timeout and was dropped unanswered.
    """

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Counts the request for as long as the ``with`` block runs."""
        self.count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.count -= 1
            if not self.count:
                self._idle.set()

    async def idle(self) -> None:
        """Returns once no request is in flight (at once if none is)."""
        await self._idle.wait()


IN_FLIGHT_KEY = web.AppKey("in_flight", InFlight)


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every log line of a request carries its id; the answer names it (X-Request-Id)."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if given.isascii() and 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
    with structlog.contextvars.bound_contextvars(request_id=rid):
        response = await handler(request)
    response.headers["X-Request-Id"] = rid
    return response


@web.middleware
async def in_flight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tracks the request in the app's ``InFlight`` until its answer is made."""
    with request.app[IN_FLIGHT_KEY].track():
        return await handler(request)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer is JSON naming the problem, the framework's own 404/405/413 included;
    an unexpected failure is a 500 with no traceback for the caller."""
    try:
        return await handler(request)
    except WebhookError:
        raise
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.reason
        if exc.status == 413:
            message = "request body too large"
        elif exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        elif exc.status == 404:
            message = f"no such endpoint: {request.path}"
        return error_response(exc.status, message, headers=_keep_headers(exc))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("request failed", path=request.path, method=request.method)
        return error_response(500, "internal error")


def _keep_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")}


MIDDLEWARES = (request_ids, in_flight, json_errors)
"""In the order the root app applies them."""
