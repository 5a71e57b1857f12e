"""``statusbridge demo``: the sandbox and the daemon in one process, for a first look.

It starts the sandbox status page (the built-in seed), then ``serve`` against it (embedded SQLite in
a temporary directory, the demo rules), and prints the page URL, the widget URL and the curl commands
that fire and resolve a sample alert: an incident appears on the page within seconds, moves to
monitoring on the resolve and is resolved ``resolve_after`` (20 s) later.

The seed and the demo rules are package data (``bridge/sandbox/seed.yaml``, ``bridge/demo_rules.yaml``;
``rules/`` links to both), so the demo runs from any directory, from a checkout, a wheel or the image.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from importlib import resources
from pathlib import Path

from aiohttp import web

from bridge.app import check_startup, create_app
from bridge.observability import configure_logging
from bridge.sandbox.app import create_app as create_sandbox
from bridge.sandbox.seed import load_seed_file
from bridge.settings import Settings
from bridge.web.resources import RULES

WEBHOOK_TOKEN = "demo-webhook-token"  # noqa: S105 (a demo on loopback, printed for the user)
ADMIN_TOKEN = "demo-admin-token"  # noqa: S105
PAGE_ID = "01HSANDBOXPAGE000000000000"


def demo_rules_path() -> Path:
    """The bundled demo rules (a real file: the package is never installed zipped)."""
    return Path(str(resources.files("bridge") / "demo_rules.yaml"))


def instructions(bridge_url: str, sandbox_url: str) -> str:
    """What the demo prints once it runs: the page, widget and state URLs, and curl lines that fire and
    resolve an alert with the demo's tokens.
    """
    alert = (
        '{"version":"4","alerts":[{"status":"%s","labels":{"alertname":"APIDown","severity":"critical"},'
        '"annotations":{"public_summary":"Some API requests are failing."},'
        '"startsAt":"2026-01-01T00:00:00Z"%s}]}'
    )
    fire = alert % ("firing", "")
    resolve = alert % ("resolved", ',"endsAt":"2026-01-01T00:10:00Z"')
    curl = f"curl -sS -X POST {bridge_url}/webhooks/alertmanager -H 'Authorization: Bearer {WEBHOOK_TOKEN}' -H 'Content-Type: application/json' -d"
    return "\n".join(
        [
            "",
            "StatusBridge demo is running.",
            f"  status page:  {sandbox_url}/status/{PAGE_ID}",
            f"  widget JSON:  {sandbox_url}/status/{PAGE_ID}/api/v1/summary",
            f"  bridge state: curl -sS -H 'Authorization: Bearer {ADMIN_TOKEN}' {bridge_url}/api/v1/state",
            "",
            "Fire a sample alert (an incident opens on the page):",
            f"  {curl} '{fire}'",
            "Resolve it (monitoring, then resolved ~20 s later):",
            f"  {curl} '{resolve}'",
            "",
            "Ctrl-C stops both.",
        ]
    )


async def run_demo_async(
    *,
    host: str,
    port: int,
    sandbox_port: int,
    rules: Path | None,
    seed: Path | None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run the sandbox and the bridge wired to it (a throw-away SQLite store) until SIGINT or SIGTERM;
    ``ready`` is set once both listen. Raises SettingsError when the start-up checks refuse the settings.
    """
    configure_logging("warning")
    sandbox = create_sandbox(load_seed_file(seed) if seed else None)
    sandbox_runner = web.AppRunner(sandbox, access_log=None)
    await sandbox_runner.setup()
    await web.TCPSite(sandbox_runner, host, sandbox_port).start()
    sandbox_url = f"http://{host}:{sandbox_runner.addresses[0][1]}"
    with tempfile.TemporaryDirectory(prefix="statusbridge-demo-") as tmp:
        settings = Settings(
            host=host,
            port=port,
            rules_path=rules or demo_rules_path(),
            store_url=f"sqlite:///{Path(tmp) / 'demo.db'}",
            incidentio_api_key="sandbox-writer",
            incidentio_base_url=sandbox_url,
            webhook_bearer_token=WEBHOOK_TOKEN,
            admin_token=ADMIN_TOKEN,
            coalesce_window="1s",
            reconcile_interval="5s",
        )
        check_startup(settings)
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        try:
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            bridge_url = f"http://{host}:{runner.addresses[0][1]}"
            print(instructions(bridge_url, sandbox_url), flush=True)
            if ready is not None:
                ready.set()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            with contextlib.suppress(NotImplementedError, RuntimeError):
                # As under `statusbridge serve`: SIGHUP reloads the rules (bridge.cli: serve).
                loop.add_signal_handler(signal.SIGHUP, app[RULES].reload)
            await stop.wait()
        finally:
            await runner.cleanup()
            await sandbox_runner.cleanup()


def run_demo(*, host: str, port: int, sandbox_port: int, rules: Path | None, seed: Path | None) -> None:
    """``run_demo_async`` on a new event loop, returning when the demo is stopped."""
    asyncio.run(run_demo_async(host=host, port=port, sandbox_port=sandbox_port, rules=rules, seed=seed))
