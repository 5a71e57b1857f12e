"""The ``statusbridge`` command.

``serve`` runs the daemon, ``sandbox`` a local incident.io-compatible status page, ``check`` and
``test-rules`` validate and dry-run rules. Each command's work lives in the layer that owns it; this
module only parses arguments, loads settings, and turns expected failures into a one-line message and
a non-zero exit code (never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bridge import __version__
from bridge.settings import SettingsError, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


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
        raise CommandError(f"sandbox seed: {exc}") from None
    except OSError as exc:
        raise CommandError(f"sandbox: cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from bridge.app import run_server

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings(args.config, **overrides)
    run_server(settings)
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:  # noqa: ARG001
    raise CommandError("check: not available yet")


def _cmd_test_rules(args: argparse.Namespace) -> int:  # noqa: ARG001
    raise CommandError("test-rules: not available yet")


def build_parser() -> argparse.ArgumentParser:
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

    sandbox = sub.add_parser(
        "sandbox",
        help="run a local incident.io-compatible status page (no account needed)",
        description="Serve the incident.io Status Page API V2, an HTML status page at "
        "/status/{page_id} and Widget JSON at /status/{page_id}/api/v1/summary, from a seed file.",
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8788, help="listen port (default 8788)")
    sandbox.add_argument("--seed", type=Path, help="YAML seed: API keys and status pages")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
