"""``statusbridge sandbox``: run the sandbox until SIGTERM or Ctrl-C."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bridge.observability import configure_logging, get_logger
from bridge.sandbox.app import create_app
from bridge.sandbox.seed import load_seed_file

log = get_logger(__name__)


def run_sandbox(
    *,
    host: str,
    port: int,
    seed: Path | None,
    rate_limit: bool,
    rate_capacity: int | None,
    rate_refill: float | None,
) -> None:
    """Serve until stopped. A bad seed raises :class:`~bridge.sandbox.seed.SeedError`."""
    raw = load_seed_file(seed) if seed is not None else None
    app = create_app(raw, rate_limit=rate_limit, rate_capacity=rate_capacity, rate_refill=rate_refill)
    configure_logging()
    log.info("sandbox starting", url=f"http://{host}:{port}", seed=str(seed) if seed else "built-in")
    web.run_app(app, host=host, port=port, print=None, shutdown_timeout=2, access_log=None)
