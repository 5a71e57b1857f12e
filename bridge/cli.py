"""The ``statusbridge`` command.

``serve`` runs the daemon, ``sandbox`` a local incident.io-compatible status page, ``check`` and
``test-rules`` validate and dry-run rules. Each command's work lives in the layer that owns it; this
module parses arguments, loads settings, turns expected failures into a one-line message and a
non-zero exit code (never a traceback), and owns what belongs to the ``serve`` process rather than to
the app: signals and the order of shutdown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge import __version__
from bridge.domain import PageDirectory
from bridge.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from aiohttp import web

EXIT_OK = 0
EXIT_FAILED = 1


class CommandError(Exception):
    """An expected failure: printed as ``statusbridge: <message>`` with exit code 1."""


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from bridge.sandbox.seed import SeedError
    from bridge.sandbox.server import run_sandbox

    try:
        run_sandbox(
            host=args.host,
            port=args.port,
            seed=args.seed,
            rate_limit=args.rate_limit,
            rate_capacity=args.rate_capacity,
            rate_refill=args.rate_refill,
        )
    except SeedError as exc:
        raise CommandError(f"sandbox seed: {exc}") from exc
    except OSError as exc:
        raise CommandError(f"sandbox: cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from bridge.demo import run_demo
    from bridge.sandbox.seed import SeedError

    if args.rules is not None and not args.rules.exists():
        raise CommandError(f"demo: no rules at {args.rules}")
    try:
        run_demo(
            host=args.host, port=args.port, sandbox_port=args.sandbox_port, rules=args.rules, seed=args.seed
        )
    except SeedError as exc:
        raise CommandError(f"demo: {exc}") from exc
    except OSError as exc:
        raise CommandError(f"demo: cannot listen: {exc.strerror}") from exc
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings(args.config, **overrides)
    run_server(settings)
    return EXIT_OK


def run_server(settings: Settings) -> None:
    """``statusbridge serve``: log set-up, secrets masked, start-up refusals, then ``serve``."""
    import asyncio

    from bridge.app import check_startup, create_app
    from bridge.observability import configure_logging, get_logger, register_secret
    from bridge.store import StoreError

    log = get_logger(__name__)
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
        raise SettingsError(str(exc)) from exc
    except OSError as exc:
        raise SettingsError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from exc


async def serve(app: web.Application, host: str, port: int, shutdown_timeout: float) -> None:
    """Run ``app`` until SIGTERM or SIGINT, then shut down in the order an orchestrator expects.

    1. ``/readyz`` answers 503 and the listener closes: no new connections.
    2. Requests in flight finish, bodies still being read, within ``shutdown_timeout``.
    3. aiohttp's shutdown closes the idle connections and the cleanup_ctx entries undo themselves
       in reverse (the reconcile loop stops, the store closes last).

    SIGHUP reloads the rules and windows (as a change on disk does). Signals are handled here, not
    in the app, so that the app can be embedded: tests, the demo and timelines run it as it is.
    """
    import asyncio
    import contextlib
    import signal

    from aiohttp import web as aioweb

    from bridge.observability import get_logger
    from bridge.web.middleware import IN_FLIGHT_KEY
    from bridge.web.resources import RULES, STOPPING

    log = get_logger(__name__)
    runner = aioweb.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    try:
        await runner.setup()
        site = aioweb.TCPSite(runner, host, port)
        await site.start()
        log.info("listening", addresses=[f"{a[0]}:{a[1]}" for a in runner.addresses])
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, app[RULES].reload)
        await stop.wait()
        app[STOPPING].set()
        log.info("shutting down: not ready, draining requests", in_flight=app[IN_FLIGHT_KEY].count)
        for listening in list(runner.sites):
            await listening.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(shutdown_timeout):
                await app[IN_FLIGHT_KEY].idle()
        if app[IN_FLIGHT_KEY].count:
            log.warning("requests still in flight at the shutdown deadline", count=app[IN_FLIGHT_KEY].count)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await runner.cleanup()


def _directory(settings: Settings) -> PageDirectory | None:
    """The live pages and components, when API settings are given (None offline)."""
    import asyncio

    import aiohttp

    from bridge.engine.pageapi import page_directory
    from bridge.incidentio.client import StatusPageClient
    from bridge.incidentio.errors import IncidentIOError

    key = settings.api_key()
    if key is None:
        return None

    async def fetch() -> PageDirectory:
        async with aiohttp.ClientSession() as session:
            client = StatusPageClient(
                session,
                key,
                base_url=settings.incidentio_base_url,
                timeout=settings.incidentio_timeout.total_seconds(),
            )
            return await page_directory(client)

    try:
        return asyncio.run(fetch())
    except IncidentIOError as exc:
        raise CommandError(
            f"cannot read the status pages from {settings.incidentio_base_url}: {exc}"
        ) from exc


def _cmd_check(args: argparse.Namespace) -> int:
    from bridge.maintenance import check_maintenances
    from bridge.rules import check_rules

    settings = load_settings(args.config)
    path = args.rules or settings.rules_path
    if path is None:
        raise CommandError("check: no rules given (--rules PATH or STATUSBRIDGE_RULES_PATH)")
    directory = _directory(settings)
    problems: list[Any] = [*check_rules(path, directory), *check_maintenances(path, directory=directory)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {path}", file=sys.stderr)
        return EXIT_FAILED
    where = "against the live status pages" if directory is not None else "offline (names not resolved)"
    print(f"{path}: rules OK ({where})")
    return EXIT_OK


EXIT_MALFORMED = 2
"""test-timeline: a file that is not a valid timeline (its expectations were never run)."""


def _cmd_test_timeline(args: argparse.Namespace) -> int:
    from bridge.observability import configure_logging
    from bridge.timeline import TimelineFileError, TimelineStuck, load_timeline, run_timeline

    configure_logging("error")  # the daemon's own log would drown the report

    files: list[Path] = []
    for path in args.files:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    if not files:
        print("statusbridge test-timeline: no timeline files", file=sys.stderr)
        return EXIT_MALFORMED
    timelines = []
    malformed = False
    for path in files:
        try:
            timelines.append((path, load_timeline(path)))
        except TimelineFileError as exc:
            print(exc, file=sys.stderr)
            malformed = True
    if malformed:
        return EXIT_MALFORMED
    failed = 0
    for path, timeline in timelines:
        try:
            result = run_timeline(timeline, path)
        except TimelineStuck as exc:
            failed += 1
            print(f"FAIL {path}: {timeline.name}\n  stuck: {exc}")
            continue
        if result.passed:
            print(f"PASS {path}: {timeline.name}")
            if args.verbose:
                print(result.report)
            continue
        failed += 1
        print(f"FAIL {path}: {timeline.name}")
        for failure in result.failures:
            print(f"  {failure}")
        print(result.report)
    print(f"{len(timelines) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_test_rules(args: argparse.Namespace) -> int:
    import json

    from bridge.domain import utcnow
    from bridge.ingest.payloads import PayloadError, parse_any
    from bridge.rules import RulesError, load_rules

    settings = load_settings(args.config)
    directory = _directory(settings)
    try:
        ruleset = load_rules(args.rules, directory)
    except RulesError as exc:
        raise CommandError(f"rules:\n{exc}") from exc
    try:
        payload = json.loads(args.payload.read_text(encoding="utf-8"))
        alerts = parse_any(payload, utcnow())
    except OSError as exc:
        raise CommandError(f"{args.payload}: {exc.strerror}") from exc
    except (ValueError, PayloadError) as exc:
        # from None: the JSON and payload errors quote the payload, which may carry anything.
        raise CommandError(f"{args.payload}: {exc}") from None
    evaluation = ruleset.evaluate(alerts)
    for what, error in dict.fromkeys(evaluation.template_failures):
        print(f"warning: template {what} failed ({error}); the rule's default text is used", file=sys.stderr)
    report: list[dict[str, Any]] = []
    for alert in alerts:
        impacts = [
            i
            for i in evaluation.impacts
            if i.alert_fingerprint == alert.fingerprint and i.alert_source == alert.source
        ]
        report.append(
            {
                "alert": dict(alert.labels),
                "status": alert.status.value,
                "fingerprint": alert.fingerprint,
                "rules": evaluation.matches.get((alert.source.value, alert.fingerprint), []),
                "impacts": [
                    {
                        "status_page": i.status_page,
                        "component": i.component_name or i.component,
                        "component_id": i.component if directory is not None else None,
                        "status": i.status.value,
                        "group": i.group_key,
                        "incident_name": i.incident_name,
                        "message": i.message,
                    }
                    for i in impacts
                ],
            }
        )
    if args.output == "json":
        print(json.dumps(report, indent=2))
        return EXIT_OK
    for item in report:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(item["alert"].items()))
        print(f"alert {{{labels}}} [{item['status']}]")
        if not item["rules"]:
            print("  no rule matches")
        for rule in item["rules"]:
            print(f"  matches rule {rule!r}")
        for i in item["impacts"]:
            print(f"    {i['component']} -> {i['status']}  (group {i['group']})")
            print(f"      incident: {i['incident_name']}")
            print(f"      message:  {i['message']}")
        if item["status"] == "resolved" and item["rules"]:
            print("  resolved: no impact")
    return EXIT_OK


def _cmd_maintenance(args: argparse.Namespace) -> int:
    """Talk to a running daemon's admin API (``/api/v1/maintenances``)."""
    import asyncio
    import json
    import os

    import aiohttp

    token = args.token or os.environ.get("STATUSBRIDGE_ADMIN_TOKEN")
    if not token:
        raise CommandError("maintenance: an admin token is needed (--token or STATUSBRIDGE_ADMIN_TOKEN)")
    base = args.url.rstrip("/") + "/api/v1/maintenances"
    method, url, body = "GET", base, None
    if args.action == "create":
        body = {
            "name": args.name,
            "status_page": args.status_page,
            "components": args.component,
            "start_at": args.start,
            "end_at": args.end,
            "message": args.message,
            "notify_subscribers": args.notify,
        }
        method = "POST"
    elif args.action == "complete":
        method, url = "POST", f"{base}/{args.id}/complete"
    elif args.action == "cancel":
        method, url = "DELETE", f"{base}/{args.id}"

    async def send() -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.request(method, url, json=body, timeout=aiohttp.ClientTimeout(total=30)) as resp,
        ):
            try:
                return resp.status, await resp.json()
            except (aiohttp.ContentTypeError, ValueError):
                return resp.status, {"error": {"message": (await resp.text())[:500]}}

    try:
        status, answer = asyncio.run(send())
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise CommandError(f"maintenance: cannot reach {args.url}: {exc}") from exc
    if status >= 400:
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        field = f" ({error['field']})" if error.get("field") else ""
        raise CommandError(f"maintenance {args.action}: {status} {error.get('message', answer)}{field}")
    if args.action == "list" and not args.json:
        for w in answer["maintenances"]:
            when = f"{w.get('start_at', w.get('cron', ''))} -> {w.get('end_at', w.get('duration', ''))}"
            print(f"{w['id']}  {w['name']}  [{w.get('phase') or w.get('kind')}]  {when}  ({w['source']})")
        return EXIT_OK
    print(json.dumps(answer, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """Every ``statusbridge`` command, its flags and their help texts."""
    parser = argparse.ArgumentParser(
        prog="statusbridge",
        description="Keeps an incident.io status page truthful from Alertmanager and Grafana alerts.",
    )
    parser.add_argument("--version", action="version", version=f"statusbridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the daemon (webhooks, reconciler, admin API)",
        description="Run the daemon. Every setting is an environment variable STATUSBRIDGE_<NAME> "
        "or a key of the YAML file given with --config (or STATUSBRIDGE_CONFIG).",
    )
    serve.add_argument("--config", type=Path, help="YAML settings file (same keys as the env)")
    serve.add_argument("--host", help="listen address (STATUSBRIDGE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (STATUSBRIDGE_PORT, default 8080)")
    serve.set_defaults(func=_cmd_serve)

    demo = sub.add_parser(
        "demo",
        help="the sandbox page and the daemon together, with example rules: a first look",
        description="Starts the sandbox status page and the daemon against it, and prints the page URL, "
        "the widget URL and curl commands that fire and resolve a sample alert.",
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080, help="the daemon's port (default 8080)")
    demo.add_argument("--sandbox-port", type=int, default=8788, help="the sandbox's port (default 8788)")
    demo.add_argument("--rules", type=Path, help="rules file or directory (default: the bundled demo rules)")
    demo.add_argument("--seed", type=Path, help="sandbox seed (default: the built-in seed)")
    demo.set_defaults(func=_cmd_demo)

    sandbox = sub.add_parser(
        "sandbox",
        help="run a local incident.io-compatible status page (no account needed)",
        description="Serve the incident.io Status Page API V2, an HTML status page at "
        "/status/{page_id} and Widget JSON at /status/{page_id}/api/v1/summary, from a seed file.",
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8788, help="listen port (default 8788)")
    sandbox.add_argument(
        "--seed", type=Path, help="YAML seed: API keys and status pages (default: the built-in seed)"
    )
    sandbox.add_argument("--rate-limit", action="store_true", help="enforce incident.io's rate limit (429s)")
    sandbox.add_argument(
        "--rate-capacity", type=int, default=None, help="rate limit bucket size (default 1200)"
    )
    sandbox.add_argument(
        "--rate-refill", type=float, default=None, help="rate limit refill per second (default 20)"
    )
    sandbox.set_defaults(func=_cmd_sandbox)

    check = sub.add_parser(
        "check",
        help="validate rules (and settings); with API settings, resolve names against the page",
    )
    check.add_argument("--rules", type=Path, help="rules file or directory (default: settings)")
    check.add_argument("--config", type=Path, help="YAML settings file")
    check.set_defaults(func=_cmd_check)

    test_rules = sub.add_parser("test-rules", help="dry-run a webhook payload through the rules, offline")
    test_rules.add_argument("--rules", type=Path, required=True, help="rules file or directory")
    test_rules.add_argument("payload", type=Path, help="Alertmanager or Grafana webhook JSON")
    test_rules.add_argument("--output", choices=["text", "json"], default="text")
    test_rules.add_argument("--config", type=Path, help="YAML settings file (to resolve names)")
    test_rules.set_defaults(func=_cmd_test_rules)
    test_timeline = sub.add_parser(
        "test-timeline",
        help="run timeline files through the real pipeline on virtual time (like promtool test rules)",
        description="Each timeline gives webhooks, restarts, human edits, faults and rule changes at "
        "virtual times, and the page expected later. Exit 0: all pass; 1: an expectation failed; "
        "2: a file is malformed (file, line and what is wrong).",
    )
    test_timeline.add_argument("files", type=Path, nargs="+", help="timeline files or directories of them")
    test_timeline.add_argument(
        "-v", "--verbose", action="store_true", help="print the report of passing ones too"
    )
    test_timeline.set_defaults(func=_cmd_test_timeline)
    maintenance = sub.add_parser(
        "maintenance",
        help="create, list, complete or cancel maintenance windows on a running daemon",
        description="Uses the daemon's admin API; the token comes from --token or STATUSBRIDGE_ADMIN_TOKEN.",
    )
    maintenance.add_argument("--url", default="http://127.0.0.1:8080", help="the daemon's base URL")
    maintenance.add_argument("--token", help="admin token (default: $STATUSBRIDGE_ADMIN_TOKEN)")
    msub = maintenance.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = msub.add_parser("create", help="create a one-off window (published at once)")
    create.add_argument("--name", required=True)
    create.add_argument("--status-page", required=True, help="page name or ID")
    create.add_argument("--component", action="append", required=True, help="component (repeat for several)")
    create.add_argument("--start", required=True, help="RFC 3339 start, e.g. 2026-12-01T02:00:00+01:00")
    create.add_argument("--end", required=True, help="RFC 3339 end")
    create.add_argument("--message", default="We will be carrying out scheduled maintenance.")
    create.add_argument("--notify", action="store_true", help="notify the page's subscribers")
    listing = msub.add_parser("list", help="every window, config and API")
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    for name, text in (
        ("complete", "finish a window in progress now"),
        ("cancel", "delete a window not started, complete one that has"),
    ):
        action = msub.add_parser(name, help=text)
        action.add_argument("id", help="window id (see list)")
    maintenance.set_defaults(func=_cmd_maintenance)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: runs one command, returns its exit code; an expected failure prints one
    line (``statusbridge: …``) and returns 1, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (SettingsError, CommandError) as exc:
        print(f"statusbridge: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
