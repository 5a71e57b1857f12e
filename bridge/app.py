"""Application factory and lifecycle of ``statusbridge serve`` (aiohttp: app factory, cleanup_ctx).

Start-up order, each a ``cleanup_ctx`` entry that also undoes itself at shutdown: the store (with its
migrations), the incident.io client, the rules (resolved against the page structure when the API is
reachable), and the reconcile loop. SIGTERM turns ``/readyz`` to 503 first, then stops the loop
(letting an in-flight pass finish within ``shutdown_timeout``) and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bridge import __version__, pacing
from bridge.domain import PageComponent, PageDirectory, PageInfo, utcnow
from bridge.engine.breaker import Breaker
from bridge.engine.executor import Backoff, Executor
from bridge.engine.guard import GuardPolicy
from bridge.engine.leadership import lead
from bridge.engine.model import Policy
from bridge.engine.pageapi import ClientPageAPI
from bridge.engine.reconciler import PassReport, Reconciler
from bridge.engine.windows import WindowSource
from bridge.incidentio.client import RetryPolicy, StatusPageClient
from bridge.incidentio.errors import Forbidden, IncidentIOError, NotFound, OutcomeUnknown, RetryableError
from bridge.incidentio.ratelimit import TokenBucket
from bridge.ingest.auth import WebhookAuth
from bridge.ingest.pull import PullError, pull_once
from bridge.ingest.routes import Ingest
from bridge.observability import configure_logging, get_logger, register_secret
from bridge.rules import RulesError, RulesHolder
from bridge.settings import Settings, SettingsError
from bridge.store import StoreError, open_store, store_identity
from bridge.web import admin, health, metrics, widget
from bridge.web.middleware import IN_FLIGHT_KEY, MIDDLEWARES, InFlight
from bridge.web.runtime import RUNTIME, Runtime

log = get_logger(__name__)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    rt.store = await open_store(rt.settings.store_url)
    yield
    await rt.store.close()


async def _client_ctx(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    key = rt.settings.api_key()
    if key is None:
        rt.warnings["incidentio"] = "no API key: nothing is published (set STATUSBRIDGE_INCIDENTIO_API_KEY)"
        yield
        return
    register_secret(key.get_secret_value())
    s = rt.settings
    async with aiohttp.ClientSession() as session:
        rt.client = StatusPageClient(
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
            on_request=rt.metrics.observe_api,
        )
        yield
        rt.client = None


async def page_directory(client: StatusPageClient) -> PageDirectory:
    """Every page the key can see, with its components, for resolving the names rules use."""
    pages = []
    for page in await client.list_status_pages():
        structure = await client.show_structure(page.id)
        pages.append(
            PageInfo(
                id=page.id,
                name=page.name,
                components=tuple(
                    PageComponent(id=c.id, name=c.name, group=c.group, sub_page=c.sub_page)
                    for c in structure.components
                ),
            )
        )
    return PageDirectory(tuple(pages))


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


async def _preflight_ctx(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    if rt.client is not None and rt.settings.preflight:
        definite, unanswered = await preflight(rt.client)
        if definite and rt.settings.mode == "live":
            raise SettingsError("pre-flight: " + "; ".join(definite))
        for problem in definite:
            rt.warnings["preflight"] = problem
            log.warning("pre-flight problem (shadow mode carries on)", problem=problem)
        for problem in unanswered:
            rt.warnings["preflight"] = problem
            log.warning("pre-flight check unanswered: starting anyway", problem=problem)
    yield


async def _rules_ctx(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    path = rt.settings.rules_path
    if path is None:
        rt.warnings["rules"] = "no rules: set STATUSBRIDGE_RULES_PATH"
        yield
        return
    directory: PageDirectory | None = None
    if rt.client is not None:
        try:
            directory = await page_directory(rt.client)
        except IncidentIOError as exc:
            log.warning(
                "could not read the status pages; rule names stay unresolved until a reload", error=str(exc)
            )
    if directory is None and rt.client is not None:
        rt.warnings[UNRESOLVED] = (
            "the status pages could not be read: names in the rules are unresolved and nothing is "
            "published until they are (retried every 2 s)"
        )
    try:
        rt.rules = RulesHolder(
            path,
            directory=directory,
            on_reload=lambda: _rules_reloaded(rt),
            on_error=lambda _error: rt.metrics.rules_reload_errors.inc(),
        )
    except RulesError as exc:
        raise SettingsError(f"STATUSBRIDGE_RULES_PATH: {exc}") from None
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, rt.rules.reload)
    watcher = asyncio.create_task(_watch_rules(rt))
    yield
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.remove_signal_handler(signal.SIGHUP)


UNRESOLVED = "rules_unresolved"


async def _watch_rules(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(pacing.RULES_WATCH)
        if rt.rules is None:
            continue
        if UNRESOLVED in rt.warnings and rt.client is not None:
            await _resolve_names(rt, rt.client, rt.rules)
        if rt.rules.changed_on_disk():
            rt.rules.reload()


async def _resolve_names(rt: Runtime, client: StatusPageClient, rules: RulesHolder) -> None:
    """Start-up could not read the pages (the provider was down): try again; once it answers,
    the rules and windows take the page's IDs and publication starts."""
    try:
        directory = await page_directory(client)
    except IncidentIOError:
        return
    rules.directory = directory
    if rt.windows is not None:
        rt.windows.directory = directory
    rt.warnings.pop(UNRESOLVED, None)
    log.info("status pages read: rule names resolved")
    rules.reload()


def _unresolved_hold(rt: Runtime) -> str | None:
    if UNRESOLVED in rt.warnings and rt.client is not None:
        return "the status pages could not be read yet: names in the rules are unresolved"
    return None


async def _reconciler_ctx(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    s = rt.settings
    store = rt.get_store()
    directory = rt.rules.directory if rt.rules is not None else None
    rt.windows = WindowSource(store, s.rules_path, directory)
    if rt.windows.error:
        raise SettingsError(f"maintenance windows: {rt.windows.error}")
    # Every replica ingests; the one holding the lease reconciles (always this one on SQLite).
    lost = asyncio.Event()
    lease = store.lease(f"{socket.gethostname()}:{os.getpid()}", on_lost=lost.set)
    rt.scheduler = AsyncIOScheduler(timezone="UTC")
    rt.scheduler.start()
    executor = None
    if rt.client is not None and s.mode == "live":
        executor = Executor(
            ClientPageAPI(rt.client),
            store,
            rt.clock,
            epoch=lambda: lease.epoch or 0,
            on_drift=rt.metrics.drift.inc,
            on_recover=rt.changed.set,
            late_write_window=2 * s.incidentio_timeout,
            breaker=Breaker(interval=pacing.BREAKER_INTERVAL, cap=pacing.BREAKER_CAP),
            backoff=lambda: Backoff(base=pacing.ACTION_BACKOFF_BASE, cap=pacing.ACTION_BACKOFF_CAP),
        )
    rt.reconciler = Reconciler(
        store=store,
        evaluate=rt.evaluate,
        relevant=rt.relevant,
        rules_generation=lambda: rt.rules.generation if rt.rules is not None else 0,
        hold=lambda: _unresolved_hold(rt),
        executor=executor,
        clock=rt.clock,
        policy=Policy(coalesce_window=s.coalesce_window, key_scope=await store_identity(store)),
        alert_ttl=s.alert_ttl,
        interval=s.reconcile_interval,
        pass_retry=(pacing.PASS_RETRY_BASE, pacing.PASS_RETRY_CAP),
        on_pass=lambda report: _after_pass(rt, report),
        maintenance=rt.windows,
        guard=GuardPolicy(
            max_new=s.max_new_incidents,
            window=s.max_new_incidents_window,
            release_after=s.guard_release_after,
        ),
    )
    reconciler = rt.reconciler

    def elected() -> None:
        rt.leader = True

    def deposed() -> None:
        rt.leader = False

    task = rt.reconcile_task = asyncio.create_task(
        lead(
            lease,
            lost,
            lambda stop: reconciler.run(rt.changed, stop),
            rt.stopping,
            on_elected=elected,
            on_deposed=deposed,
        )
    )
    yield
    rt.stopping.set()
    rt.scheduler.shutdown(wait=False)
    try:
        await asyncio.wait_for(task, timeout=s.shutdown_timeout.total_seconds())
    except TimeoutError:
        log.warning("reconcile pass did not finish before the shutdown deadline")


def _rules_reloaded(rt: Runtime) -> None:
    if rt.windows is not None:
        rt.windows.reload()
    rt.changed.set()


def _after_pass(rt: Runtime, report: PassReport | None) -> None:
    rt.metrics.reconcile_runs.labels("ok" if report is not None else "failed").inc()
    if rt.on_pass is not None:
        rt.on_pass(report)
    if report is None:
        return
    for group in report.groups.values():
        if not group.plan.held and not group.error:
            for action in group.plan.actions:
                rt.metrics.actions.labels(type(action).__name__).inc()
    was_blind = "heartbeat" in rt.warnings
    if report.blind:
        rt.warnings["heartbeat"] = f"blind: no heartbeat from rule(s) {', '.join(report.blind)}"
        if not was_blind:
            log.error(
                "heartbeat missing: the bridge cannot see alerts, the page may look green wrongly",
                rules=report.blind,
            )
    elif was_blind:
        del rt.warnings["heartbeat"]
        log.info("heartbeat back")
    rt.metrics.blind.set(1 if report.blind else 0)
    rt.metrics.provider_down.set(1 if report.provider_down else 0)
    if report.provider_down:
        rt.warnings["status_page_api"] = "unavailable: publications wait, one probe at a time"
    else:
        rt.warnings.pop("status_page_api", None)
    if report.wake_at is not None and rt.scheduler is not None and rt.scheduler.running:
        # APScheduler is the clock: it wakes the reconciler at the next instant a hold ends or a
        # maintenance window is announced, starts or ends; what to do then is the planner's.
        rt.scheduler.add_job(
            rt.changed.set,
            DateTrigger(run_date=report.wake_at),
            id="wake",
            replace_existing=True,
            misfire_grace_time=None,
        )
    rt.metrics.guard_held.set(len(report.guard))
    rt.metrics.flapping.set(
        sum(1 for g in report.groups.values() if g.published is not None and g.published.flapping_since)
    )
    if report.guard:
        log.warning("blast-radius guard holds publications", groups=sorted(report.guard))


async def _pull_ctx(app: web.Application) -> AsyncIterator[None]:
    """With STATUSBRIDGE_ALERTMANAGER_URL: make the store agree with Alertmanager's active alerts."""
    rt = app[RUNTIME]
    s = rt.settings
    if not s.alertmanager_url:
        yield
        return
    url = s.alertmanager_url

    async def loop(session: aiohttp.ClientSession) -> None:
        while not rt.stopping.is_set():
            try:
                changed = await pull_once(
                    session,
                    url,
                    rt.get_store(),
                    rt.clock(),
                    ttl=s.alert_ttl,
                    silenced_counts_as_resolved=s.silenced_counts_as_resolved,
                )
                rt.warnings.pop("alertmanager_pull", None)
                if changed:
                    rt.changed.set()
            except PullError as exc:
                rt.warnings["alertmanager_pull"] = str(exc)
                log.warning("alertmanager pull failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.stopping.wait(), timeout=s.reconcile_interval.total_seconds())

    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(loop(session))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _on_shutdown(app: web.Application) -> None:
    app[RUNTIME].stopping.set()


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    on_pass: Callable[[PassReport | None], None] | None = None,
) -> web.Application:
    """The daemon as an aiohttp application. ``clock`` is the only wall clock it reads; ``on_pass``
    sees every reconcile pass's report (``None`` for a failed pass), as the metrics do."""
    rt = Runtime(settings=settings, clock=clock, on_pass=on_pass)
    auth = WebhookAuth(
        bearer=settings.webhook_bearer_token,
        basic_user=settings.webhook_basic_username,
        basic_password=settings.webhook_basic_password,
        hmac_secret=settings.grafana_hmac_secret,
        hmac_header=settings.grafana_hmac_header,
        hmac_timestamp_header=settings.grafana_hmac_timestamp_header,
        hmac_max_skew=settings.grafana_hmac_max_skew,
    )
    rt.ingest = Ingest(
        rt.get_store,
        auth,
        max_body=settings.webhook_max_body_bytes,
        clock=clock,
        on_change=rt.changed.set,
        on_outcome=lambda source, status: rt.metrics.webhooks.labels(source, str(status)).inc(),
    )
    rt.metrics.build.info({"version": __version__})
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings.webhook_max_body_bytes)
    app[IN_FLIGHT_KEY] = InFlight()
    app[RUNTIME] = rt
    app.router.add_routes(health.routes())
    app.router.add_routes(rt.ingest.routes())
    app.router.add_routes(metrics.routes())
    app.router.add_routes(widget.routes())
    app.add_subapp(admin.PREFIX, admin.admin_app())
    app.cleanup_ctx.extend(
        [_store_ctx, _client_ctx, _preflight_ctx, _rules_ctx, _pull_ctx, _reconciler_ctx, widget.widget_ctx]
    )
    app.on_shutdown.append(_on_shutdown)
    return app


def check_startup(settings: Settings) -> None:
    """Refuse configurations that would run unsafely (clear messages, no traceback)."""
    if not settings.webhook_auth_configured and settings.webhook_auth != "none":
        raise SettingsError(
            "webhooks would be open to anyone: configure STATUSBRIDGE_WEBHOOK_BEARER_TOKEN, "
            "STATUSBRIDGE_WEBHOOK_BASIC_USERNAME/_PASSWORD or STATUSBRIDGE_GRAFANA_HMAC_SECRET, "
            "or set STATUSBRIDGE_WEBHOOK_AUTH=none explicitly"
        )


def run_server(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    for secret in (
        settings.webhook_bearer_token,
        settings.webhook_basic_password,
        settings.grafana_hmac_secret,
        settings.admin_token,
        settings.incidentio_api_key,
    ):
        if secret is not None:
            register_secret(secret.get_secret_value())
    check_startup(settings)
    if settings.grafana_hmac_secret is not None and not (
        settings.webhook_bearer_token or settings.webhook_basic_username
    ):
        log.warning(
            "only an HMAC secret is configured: /webhooks/alertmanager accepts nobody, since "
            "Alertmanager cannot sign (add STATUSBRIDGE_WEBHOOK_BEARER_TOKEN or basic auth for it)"
        )
    app = create_app(settings)
    log.info("statusbridge starting", host=settings.host, port=settings.port, mode=settings.mode)
    try:
        asyncio.run(serve(app, settings.host, settings.port, settings.shutdown_timeout.total_seconds()))
    except StoreError as exc:
        raise SettingsError(str(exc)) from None
    except OSError as exc:
        raise SettingsError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None


async def serve(app: web.Application, host: str, port: int, shutdown_timeout: float) -> None:
    """Run ``app`` until SIGTERM or SIGINT, then shut down in the order an orchestrator expects.

    1. ``/readyz`` answers 503 and the listener closes: no new connections.
    2. Requests in flight finish, bodies still being read, within ``shutdown_timeout``.
    3. aiohttp's shutdown closes the idle connections and the cleanup_ctx entries undo themselves
       in reverse (the reconcile loop stops, the store closes last).
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("listening", addresses=[f"{a[0]}:{a[1]}" for a in runner.addresses])
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        app[RUNTIME].stopping.set()
        log.info("shutting down: not ready, draining requests", in_flight=app[IN_FLIGHT_KEY].count)
        for listening in list(runner.sites):
            await listening.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(shutdown_timeout):
                await app[IN_FLIGHT_KEY].idle()
        if app[IN_FLIGHT_KEY].count:
            log.warning("requests still in flight at the shutdown deadline", count=app[IN_FLIGHT_KEY].count)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
