"""Shared fixtures: a real sandbox on 127.0.0.1 whose every exchange is checked against the spec."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from bridge.app import create_app as create_bridge_app
from bridge.sandbox.app import SANDBOX_KEY, Exchange, create_app
from bridge.settings import Settings
from bridge.store import Store
from bridge.timeline.clock import VirtualTimeLoop, scheduler_on
from bridge.web.resources import RECONCILE_TASK, RECONCILER, STOPPING, STORE
from tests import realtime
from tests.openapi_contract import validate_request, validate_response

ROOT = Path(__file__).resolve().parents[1]
SEED_PATH = ROOT / "bridge" / "sandbox" / "seed.yaml"  # the built-in seed; rules/sandbox/ links to it
FIXTURES = ROOT / "tests" / "fixtures"  # data from outside, each with its origin (README.md there)
PG_URL = os.environ.get("STATUSBRIDGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PAGE_ID = "01HSANDBOXPAGE000000000000"
BIG_PAGE_ID = "01HSANDBOXBIGPAGE000000000"
COMPONENTS = {
    "API": "01HCOMPAPI0000000000000000",
    "Web/Dashboard": "01HCOMPDASH000000000000000",
    "Web/Website": "01HCOMPSITE000000000000000",
    "Database": "01HCOMPDB00000000000000000",
    "EU/Payments/Payments API": "01HCOMPPAYEU00000000000000",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="full counts: the resilience drills (tests/resilience/conftest.py) and 5,000 model-based "
        "timelines (tests/timelines/test_model.py)",
    )


SLOW_DIRS = {"e2e": 600, "resilience": 600}
"""Real-seconds limit per test for the directories that run real processes and drills (the
default, 120 s, is in pyproject.toml)."""


COVERAGE_SLOWDOWN = 3
"""Under coverage every limit is this many times longer. Its tracer (the C tracer: CPython 3.11 has
no sys.monitoring) made the pure-Python tests 2.4 times slower here (tests/engine, maintenance,
rules and ingest: 100 s -> 231 s); the limits are there to stop hangs, not to time the tracer."""


def _timeout_factor(config: pytest.Config) -> int:
    measured = config.pluginmanager.hasplugin("_cov") and bool(config.getoption("cov_source", None))
    return COVERAGE_SLOWDOWN if measured else 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    full = config.getoption("--full")
    factor = _timeout_factor(config)
    default = float(config.getini("timeout") or 0)
    for item in items:
        counted = item.get_closest_marker("full_counts") is not None or item.path.parent.name == "resilience"
        if full and counted:
            # --full runs thousands of drills or timelines, for hours: no per-test limit.
            item.add_marker(pytest.mark.timeout(0), append=False)  # the closest marker wins
            continue
        own = item.get_closest_marker("timeout")
        if own is not None:
            limit = float(own.kwargs.get("timeout", own.args[0] if own.args else default))
        else:
            limit = SLOW_DIRS.get(item.path.parent.name, default)
        if factor == 1 and (own is not None or limit == default):
            continue  # pytest-timeout applies the test's own marker or the default as they are
        if limit:
            # first among the item's own markers: pytest-timeout reads the closest one
            item.add_marker(pytest.mark.timeout(limit * factor), append=False)


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis' settings are fixed when the test module is imported, after this hook.
    if config.getoption("--full"):
        os.environ["STATUSBRIDGE_MODEL_FULL"] = "1"


class FakeClock:
    """Injected time: tests move it explicitly, never by sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class SandboxServer:
    url: str
    app: web.Application
    clock: FakeClock
    writer_token: str = "sandbox-writer"
    reader_token: str = "sandbox-reader"
    page_id: str = PAGE_ID
    big_page_id: str = BIG_PAGE_ID
    components: dict[str, str] = field(default_factory=lambda: dict(COMPONENTS))
    exchanges: list[Exchange] = field(default_factory=list)
    response_problems: list[str] = field(default_factory=list)
    request_problems: list[str] = field(default_factory=list)
    allow_invalid_requests: bool = False

    def record(self, ex: Exchange) -> None:
        self.exchanges.append(ex)
        self.response_problems += validate_response(
            ex.method, ex.path, ex.status, ex.response_body, ex.response_headers.get("Content-Type")
        )
        # Requests the sandbox rejected for auth or injected faults still had to be well-formed.
        self.request_problems += validate_request(ex.method, ex.path, ex.query, ex.request_body)

    def check(self) -> None:
        assert not self.response_problems, "sandbox responses violate the spec:\n" + "\n".join(
            self.response_problems
        )
        if not self.allow_invalid_requests:
            assert not self.request_problems, "requests violate the spec:\n" + "\n".join(
                self.request_problems
            )


def seed() -> dict[str, Any]:
    return dict(yaml.safe_load(SEED_PATH.read_text()))


SandboxFactory = Callable[..., Awaitable[SandboxServer]]


@pytest.fixture
async def sandbox_factory() -> AsyncIterator[SandboxFactory]:
    runners: list[tuple[web.AppRunner, SandboxServer]] = []

    async def start(
        *,
        seed_data: dict[str, Any] | None = None,
        clock: FakeClock | None = None,
        **options: Any,
    ) -> SandboxServer:
        clock = clock or FakeClock()
        holder: list[SandboxServer] = []
        app = create_app(
            seed_data if seed_data is not None else seed(),
            clock=clock,
            exchange_hook=lambda ex: holder[0].record(ex),  # noqa: PLW0108 (bound after the app exists)
            **options,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        server = SandboxServer(url=f"http://127.0.0.1:{port}", app=app, clock=clock)
        holder.append(server)
        runners.append((runner, server))
        return server

    yield start
    for runner, _ in runners:
        await runner.cleanup()
    for _, server in runners:
        server.check()


@pytest.fixture
async def sandbox(sandbox_factory: SandboxFactory) -> SandboxServer:
    return await sandbox_factory()


# --- the serve app -----------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    app: web.Application
    clock: FakeClock

    @property
    def store(self) -> Store:
        return self.app[STORE]


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def server_factory(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    runners: list[web.AppRunner] = []

    async def start(**settings: Any) -> Server:
        values: dict[str, Any] = {
            "store_url": f"sqlite:///{tmp_path / f'bridge{len(runners)}.db'}",
            "webhook_auth": "none",
        }
        values.update(settings)
        clock = FakeClock()
        app = create_bridge_app(Settings(**values), clock=clock)
        runner = web.AppRunner(app, access_log=None)
        try:
            await runner.setup()
        except BaseException:
            await runner.cleanup()  # what started (the store) is closed, as run_app does
            raise
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return Server(f"http://127.0.0.1:{runner.addresses[0][1]}", app, clock)

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def server(server_factory: ServerFactory) -> Server:
    return await server_factory()


# --- the serve app against the sandbox, passes driven by the test --------------------------------

BRIDGE_RULES = """
status_page: "Acme Status"
defaults: {resolve_after: 1m}
rules:
  - name: watchdog
    matchers: ['alertname = "Watchdog"']
    heartbeat: {timeout: 5m}
  - name: svc
    matchers: ['alertname = "Down"']
    components: ["API"]
    status: full_outage
    group_by: [service]
    incident:
      name: "{{ labels.service }} is down"
"""
ADMIN = "admin-token-for-tests"

Bridge = Callable[..., Awaitable[Server]]


@pytest.fixture
def bridge(server_factory: ServerFactory, sandbox: SandboxServer, tmp_path: Path) -> Bridge:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BRIDGE_RULES)

    async def start(**settings: Any) -> Server:
        values: dict[str, Any] = {
            "rules_path": str(rules),
            "incidentio_api_key": sandbox.writer_token,
            "incidentio_base_url": sandbox.url,
            "admin_token": ADMIN,
            "coalesce_window": "0s",
            "reconcile_interval": "1h",
            **settings,
        }
        server = await server_factory(**values)
        server.clock.now = sandbox.clock.now
        server.app[STOPPING].set()  # the test drives the passes: let the start-up pass finish first
        await server.app[RECONCILE_TASK]
        return server

    return start


async def fire(server: Server, service: str, *, status: str = "firing", name: str = "Down") -> None:
    alert: dict[str, Any] = {
        "status": status,
        "labels": {"alertname": name, "service": service},
        "startsAt": "2026-11-23T11:00:00Z",
    }
    if status == "resolved":
        alert["endsAt"] = "2026-11-23T11:30:00Z"
    async with aiohttp.ClientSession() as s:
        async with s.post(
            server.url + "/webhooks/alertmanager", json={"version": "4", "alerts": [alert]}
        ) as r:
            assert r.status == 200, await r.text()


async def reconcile(server: Server) -> Any:
    return await server.app[RECONCILER].reconcile_once()


def page_incidents(sb: SandboxServer) -> list[Any]:
    return list(sb.app[SANDBOX_KEY].state.incidents.values())


# --- one fake time -----------------------------------------------------------------------------

FAKE_START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
"""Where the fake time starts: the same instant as :class:`FakeClock`'s and the sandbox's."""


@dataclass(frozen=True)
class FakeTime:
    """One fake time for ``now()`` and ``sleep()``: the test's event loop runs on virtual time
    (:class:`bridge.timeline.clock.VirtualTimeLoop`, our own looptime). ``asyncio.sleep``,
    ``wait_for`` timeouts and ``loop.time()`` are virtual, and :meth:`now` is derived from the same
    clock, so whatever a component waits for passes at once, and exactly: when nothing is running
    and no I/O or worker thread is in flight, the clock jumps to the next timer.

    Only for work in this process: the clock does not wait for another process (PostgreSQL, a
    subprocess), so a timeout around such a call would fire early."""

    loop: VirtualTimeLoop

    def now(self) -> datetime:
        """The virtual wall clock (inject it as a component's ``clock``)."""
        return self.loop.now()

    def time(self) -> float:
        """The virtual monotonic clock, ``loop.time()``: seconds since the test started."""
        return self.loop.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep`` (inject it as a component's ``sleep``): it passes virtual time only."""
        await asyncio.sleep(seconds)

    async def settle(self) -> None:
        """Return once everything due now has run, before the clock moves on."""
        await self.loop.settle()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """A test that asks for ``fake_time`` runs, with its async fixtures, on a virtual-time loop."""
    if "fake_time" in getattr(item, "fixturenames", ()):
        return {"virtual": lambda: VirtualTimeLoop(FAKE_START)}
    return {"real": asyncio.new_event_loop}


@pytest.fixture
async def fake_time() -> AsyncIterator[FakeTime]:
    """The test's loop on virtual time (see :class:`FakeTime`), APScheduler reading it too, and the
    ``random`` module seeded (back-off jitter and probes take the same path every run)."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop), "pytest_asyncio_loop_factories gives fake_time tests its loop"
    state = random.getstate()
    random.seed(0)
    try:
        with scheduler_on(loop):
            yield FakeTime(loop)
    finally:
        random.setstate(state)


# --- the real-time check -----------------------------------------------------------------------

REAL_TIME_DIRS = {"e2e", "resilience"}
"""Directories whose tests run real processes and drills on real time (so do tests marked e2e or
resilience); everywhere else, a test that waits on real time fails."""


def _may_wait(item: pytest.Item) -> bool:
    if REAL_TIME_DIRS & set(item.path.relative_to(ROOT).parts):
        return True
    return any(item.get_closest_marker(name) is not None for name in ("e2e", "resilience", "real_time"))


def _real_waiting(item: pytest.Item) -> str | None:
    """Why ``item`` fails the check so far, or None."""
    if realtime.WAITS.seconds <= realtime.TOLERANCE_SECONDS or _may_wait(item):
        return None
    return (
        f"{item.nodeid} {realtime.WAITS.describe()}. Tests do not wait for real time: take the "
        "`fake_time` fixture (tests/conftest.py) and inject its now() as the clock and asyncio.sleep "
        "as the sleep (its loop is virtual). A test that truly waits on another process's timing "
        'says why with @pytest.mark.real_time("...").'
    )


@pytest.fixture(autouse=True)
def _no_real_waiting(request: pytest.FixtureRequest) -> Iterator[None]:
    """Measure the real waiting of a test, its fixtures included (tests/realtime.py says what
    counts); the call fails in :func:`pytest_runtest_call`, a teardown that waits fails here."""
    realtime.install()
    realtime.WAITS.reset()
    yield
    if not request.node.stash.get(_FAILED_FOR_WAITING, False) and (why := _real_waiting(request.node)):
        pytest.fail(why, pytrace=False)


_FAILED_FOR_WAITING = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield
    if why := _real_waiting(item):
        item.stash[_FAILED_FOR_WAITING] = True
        pytest.fail(why, pytrace=False)


async def metric(url: str, name: str) -> float:
    """The value of an unlabelled sample (or the first labelled one) of ``name`` on ``url``'s /metrics."""
    async with aiohttp.ClientSession() as s, s.get(url + "/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")
