"""Start-up job 2: the incident.io client (``CLIENT``) and the pre-flight check of its key.

The client is the one resource configuration may leave out that start-up jobs consume: without an
API key ``CLIENT`` holds ``None`` (its absent form), the rules stay unresolved, and the reconciler
gets no executor, so nothing is published. Handlers never use the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bridge import pacing
from bridge.incidentio.client import RetryPolicy, StatusPageClient
from bridge.incidentio.errors import Forbidden, IncidentIOError, NotFound, OutcomeUnknown, RetryableError
from bridge.incidentio.ratelimit import TokenBucket
from bridge.observability import get_logger, register_secret
from bridge.settings import SettingsError
from bridge.web.resources import HEALTH, METRICS, SETTINGS

log = get_logger(__name__)

CLIENT: web.AppKey[StatusPageClient | None] = web.AppKey("client")
"""The incident.io client, or ``None`` without an API key (``client_ctx``)."""


async def client_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sets ``CLIENT``, with its own HTTP session (closed at shutdown), rate limit and retries."""
    s = app[SETTINGS]
    key = s.api_key()
    if key is None:
        app[HEALTH].warnings["incidentio"] = (
            "no API key: nothing is published (set STATUSBRIDGE_INCIDENTIO_API_KEY)"
        )
        app[CLIENT] = None
        yield
        return
    register_secret(key.get_secret_value())
    async with aiohttp.ClientSession() as session:
        app[CLIENT] = StatusPageClient(
            session,
            key,
            base_url=s.incidentio_base_url,
            timeout=s.incidentio_timeout.total_seconds(),
            # The loop's clock, as its sleep is the loop's: one time for both (virtual in timelines).
            rate_limiter=TokenBucket(
                s.incidentio_rate_capacity,
                s.incidentio_rate_refill,
                clock=asyncio.get_running_loop().time,
            ),
            # Short in-call retries (a blip); longer outages are paced by the executor's breaker,
            # whose probes must not sit in a long back-off when the provider comes back.
            retry=RetryPolicy(
                attempts=pacing.API_RETRY_ATTEMPTS,
                total_seconds=pacing.API_RETRY_TOTAL,
                base_seconds=pacing.API_RETRY_BASE,
                cap_seconds=pacing.API_RETRY_CAP,
            ),
            on_request=app[METRICS].observe_api,
        )
        yield


async def preflight(client: StatusPageClient) -> tuple[list[str], list[str]]:
    """Problems with the API key, as (definite, unanswered): it must be accepted, and it must be
    allowed to publish. A definite problem (a refused key, a missing scope) stops a live daemon;
    an unanswered check (the provider is down or slow at start-up) does not: refusing to start
    would lose the alerts that arrive meanwhile, and the breaker paces the API once it runs.

    Publishing is probed with an update to an incident that does not exist: a key allowed to
    publish gets 404 (nothing is written), one that is not gets 403.
    """
    try:
        pages = await client.list_status_pages()
    except (RetryableError, OutcomeUnknown) as exc:
        return [], [f"could not check the API key against {client.base_url}: {exc}"]
    except IncidentIOError as exc:
        return [f"the API key does not work against {client.base_url}: {exc}"], []
    if not pages:
        return ["the API key sees no status page"], []
    try:
        await client.create_incident_update(incident_id="statusbridge-preflight-probe", message="preflight")
    except NotFound:
        return [], []
    except Forbidden:
        return ["the API key may read but not publish (it needs the status_pages.publish_updates scope)"], []
    except (RetryableError, OutcomeUnknown) as exc:
        return [], [f"could not check that the API key may publish: {exc}"]
    except IncidentIOError as exc:
        return [f"could not check that the API key may publish: {exc}"], []
    return [], []


async def preflight_ctx(app: web.Application) -> AsyncIterator[None]:
    """With a client and ``STATUSBRIDGE_PREFLIGHT``: refuses a live start with a key that cannot
    publish (``SettingsError``); anything else is a warning on ``/readyz``."""
    client, s = app[CLIENT], app[SETTINGS]
    if client is not None and s.preflight:
        warnings = app[HEALTH].warnings
        definite, unanswered = await preflight(client)
        if definite and s.mode == "live":
            raise SettingsError("pre-flight: " + "; ".join(definite))
        for problem in definite:
            warnings["preflight"] = problem
            log.warning("pre-flight problem (shadow mode carries on)", problem=problem)
        for problem in unanswered:
            warnings["preflight"] = problem
            log.warning("pre-flight check unanswered: starting anyway", problem=problem)
    yield
