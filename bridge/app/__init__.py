"""The daemon as an aiohttp application (app factory, ``cleanup_ctx``), a module per start-up job.

Each job is a ``cleanup_ctx`` entry that opens its resource, sets it under its own typed key
(``bridge.web.resources``), and undoes itself at shutdown, in reverse order:

1. ``store``: the store, migrated (closed last);
2. ``publishing``: the incident.io client and the pre-flight check of its key;
3. ``rules``: the rules and maintenance windows from the rules path, and their watcher;
4. ``pull``: the Alertmanager pull, when configured;
5. ``reconcile``: the reconciler, the leader loop around it, and what each pass reports;
6. ``lag``: the event loop's lag, sampled into a metric;
7. ``bridge.web.widget``: the widget's cache and upstream session.

Signals are the CLI's (``bridge.cli``: ``serve``), so that the app can be embedded: tests, the
demo and timelines run it as it is. Shutdown turns ``/readyz`` to 503 first, then stops the loop
(letting an in-flight pass finish within ``shutdown_timeout``) and closes the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from bridge import __version__
from bridge.app.lag import lag_ctx
from bridge.app.publishing import client_ctx, preflight_ctx
from bridge.app.pull import pull_ctx
from bridge.app.reconcile import ON_PASS, OnPass, reconciler_ctx
from bridge.app.rules import rules_ctx
from bridge.app.store import store_ctx
from bridge.domain import utcnow
from bridge.ingest.auth import WebhookAuth
from bridge.ingest.routes import Ingest
from bridge.metrics import Metrics
from bridge.settings import Settings, SettingsError
from bridge.web import admin, health, metrics, widget
from bridge.web.middleware import IN_FLIGHT_KEY, MIDDLEWARES, InFlight
from bridge.web.resources import CHANGED, CLOCK, HEALTH, METRICS, SETTINGS, STOPPING, STORE, Health

__all__ = ["check_startup", "create_app"]


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    on_pass: OnPass | None = None,
) -> web.Application:
    """The daemon as an aiohttp application. ``clock`` is the only wall clock it reads; ``on_pass``
    sees every reconcile pass's report (``None`` for a failed pass), after the metrics do."""
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings.webhook_max_body_bytes)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = Metrics()
    app[METRICS].build.info({"version": __version__})
    app[HEALTH] = Health()
    app[CHANGED] = changed = asyncio.Event()
    app[STOPPING] = asyncio.Event()
    app[IN_FLIGHT_KEY] = InFlight()
    app[ON_PASS] = on_pass or (lambda _report: None)
    ingest = Ingest(
        lambda: app[STORE],
        WebhookAuth(
            bearer=settings.webhook_bearer_token,
            basic_user=settings.webhook_basic_username,
            basic_password=settings.webhook_basic_password,
            hmac_secret=settings.grafana_hmac_secret,
            hmac_header=settings.grafana_hmac_header,
            hmac_timestamp_header=settings.grafana_hmac_timestamp_header,
            hmac_max_skew=settings.grafana_hmac_max_skew,
        ),
        max_body=settings.webhook_max_body_bytes,
        clock=clock,
        on_change=changed.set,
        on_outcome=app[METRICS].observe_webhook,
    )
    app.router.add_routes(health.routes())
    app.router.add_routes(ingest.routes())
    app.router.add_routes(metrics.routes())
    app.router.add_routes(widget.routes())
    app.add_subapp(admin.PREFIX, admin.admin_app())
    app.cleanup_ctx.extend(
        [
            store_ctx,
            client_ctx,
            preflight_ctx,
            rules_ctx,
            pull_ctx,
            reconciler_ctx,
            lag_ctx,
            widget.widget_ctx,
        ]
    )
    app.on_shutdown.append(_on_shutdown)
    return app


async def _on_shutdown(app: web.Application) -> None:
    app[STOPPING].set()


def check_startup(settings: Settings) -> None:
    """Refuse configurations that would run unsafely (clear messages, no traceback)."""
    if not settings.webhook_auth_configured and settings.webhook_auth != "none":
        raise SettingsError(
            "webhooks would be open to anyone: configure STATUSBRIDGE_WEBHOOK_BEARER_TOKEN, "
            "STATUSBRIDGE_WEBHOOK_BASIC_USERNAME/_PASSWORD or STATUSBRIDGE_GRAFANA_HMAC_SECRET, "
            "or set STATUSBRIDGE_WEBHOOK_AUTH=none explicitly"
        )
