"""The architecture as the code has it: one webhook's path through the daemon, measured.

The path of one Alertmanager webhook that opens an incident is recorded with ``sys.setprofile``
through the real app and the sandbox, from the POST until the sandbox holds the incident: the
``bridge`` modules it enters, and the calls from a lower layer into a higher one (callbacks handed
down by the wiring). Both counts may fall, never grow unnoticed; ARCHITECTURE.md states them. The
layers are read from pyproject.toml's import-linter contract, the modules from the code, so moving a
module changes nothing here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import pytest

from bridge.sandbox.app import SANDBOX_KEY
from bridge.web.resources import RECONCILER
from tests.conftest import SandboxServer, ServerFactory

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bridge"
OUTSIDE = ("bridge.sandbox",)
"""The fake incident.io server runs in the same process; it is not the bridge."""
DELIVERY = ROOT / "tests" / "fixtures" / "payloads" / "alertmanager" / "lifecycle" / "001.json"
"""Alertmanager 0.25's first delivery of the lifecycle scenario: one DiskFull alert firing, basic auth."""
RULES = """
status_page: "Acme Status"
defaults: {open_after: 0s}
rules:
  - name: disk
    matchers: ['alertname = "DiskFull"']
    components: ["Database"]
    status: degraded_performance
    incident:
      name: "Database degradation"
"""

MAX_MODULES = 26
"""Distinct bridge modules one webhook enters on its way to the create call (917999d: 26)."""
MAX_UPWARD = 7
"""Distinct (caller, callee) function pairs where a lower layer calls a higher one (917999d: 7).

Both are ceilings, stated in ARCHITECTURE.md ("One alert, request to API call"): lower them there
and here when the path gets shorter; a change that raises one says why in the same place."""


# --- layers, as pyproject.toml's import-linter contract states them -------------------------------


def layers() -> list[list[str]]:
    """The ``layers`` contract's layers, highest first, each as its module names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = (c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [
        [name.strip() for name in entry.replace("|", ":").split(":") if name.strip()]
        for entry in contract["layers"]
    ]


def layer_of(module: str, layered: list[list[str]]) -> int | None:
    """The index (0 = highest) of the layer whose module is the longest prefix of ``module``."""
    best: tuple[int, int] | None = None
    for index, names in enumerate(layered):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


# --- the recorder ---------------------------------------------------------------------------------

Function = tuple[str, str, int]
"""(module, qualified name, first line): two lambdas of one function differ only by their line."""


def _ours(module: str) -> bool:
    return (module == PACKAGE or module.startswith(PACKAGE + ".")) and not module.startswith(OUTSIDE)


def show(fn: Function) -> str:
    module, name, line = fn
    return f"{module}:{name}" + (f"@{line}" if "<lambda>" in name else "")


def _comprehension(fn: Function) -> bool:
    return fn[1].rsplit(".", 1)[-1] in ("<genexpr>", "<listcomp>", "<dictcomp>", "<setcomp>")


@dataclass
class Profile:
    """Frames entered (the profile's ``call`` events: a call, or a coroutine or generator resumed)
    while ``active``; the caller is the frame right below, when it is ours too."""

    active: bool = False
    entered: set[Function] = field(default_factory=set)
    calls: set[tuple[Function, Function]] = field(default_factory=set)
    threads: set[str] = field(default_factory=set)
    """Threads other than the event loop's that entered bridge code."""

    def hook(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or not self.active:
            return
        module = frame.f_globals.get("__name__", "")
        if not _ours(module):
            return
        code = frame.f_code
        callee = (module, code.co_qualname, code.co_firstlineno)
        self.entered.add(callee)
        if threading.current_thread() is not threading.main_thread():
            self.threads.add(threading.current_thread().name)
        below = frame.f_back
        if below is not None and _ours(caller_module := below.f_globals.get("__name__", "")):
            c = below.f_code
            self.calls.add(((caller_module, c.co_qualname, c.co_firstlineno), callee))


@dataclass
class WebhookPath:
    modules: dict[str, list[str]]
    """Module -> the functions of it entered (comprehensions left out)."""
    upward: list[tuple[Function, Function]]
    """Calls from a lower layer into a higher one: callbacks the wiring handed down."""
    iterated: list[tuple[Function, Function]]
    """A higher layer's generator expression iterated below (``max(... for ...)``): not a call."""
    unlayered: list[str]
    threads: list[str]

    @classmethod
    def of(cls, profile: Profile, layered: list[list[str]]) -> WebhookPath:
        bottom = len(layered)  # a module in no layer counts as the lowest

        def rank(module: str) -> int:
            found = layer_of(module, layered)
            return bottom if found is None else found

        modules: dict[str, list[str]] = {}
        for fn in sorted(profile.entered):
            names = modules.setdefault(fn[0], [])
            if not _comprehension(fn):
                names.append(show(fn).split(":", 1)[1])
        up = sorted((a, b) for a, b in profile.calls if rank(a[0]) > rank(b[0]))
        return cls(
            modules=modules,
            upward=[(a, b) for a, b in up if not _comprehension(b)],
            iterated=[(a, b) for a, b in up if _comprehension(b)],
            unlayered=[m for m in modules if layer_of(m, layered) is None],
            threads=sorted(profile.threads),
        )

    def report(self) -> str:
        lines = [f"{len(self.modules)} bridge modules entered (with the functions entered):"]
        lines += [f"  {m}: {', '.join(names)}" for m, names in self.modules.items()]
        lines.append(f"{len(self.upward)} calls from a lower layer into a higher one (caller -> callee):")
        lines += [f"  {show(a)} -> {show(b)}" for a, b in self.upward]
        lines.append("not counted, a higher layer's generator expression iterated below:")
        lines += [f"  {show(a)} -> {show(b)}" for a, b in self.iterated] or ["  none"]
        lines.append(f"modules in no layer (counted as the lowest): {', '.join(self.unlayered) or 'none'}")
        lines.append(
            f"threads besides the event loop's running bridge code: {', '.join(self.threads) or 'none'}"
        )
        return "\n".join(lines)


def _delivery() -> tuple[bytes, dict[str, str]]:
    captured = json.loads(DELIVERY.read_text())
    headers = {k: v for k, v in captured["headers"] if k.lower() not in ("host", "content-length")}
    return captured["body_raw"].encode(), headers


THAW_AFTER = 15.0
"""Real seconds the loop's clock stands still while recording (see below); the path takes well under 1."""


async def one_webhook(
    server_factory: ServerFactory, sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WebhookPath:
    """Start the daemon against the sandbox, POST one delivery, record until the incident exists."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    profile = Profile()
    # Threads get the hook when they start: aiosqlite's workers start with the store. It records
    # only while active.
    previous = threading.getprofile()
    threading.setprofile(profile.hook)
    try:
        server = await server_factory(
            rules_path=str(rules),
            incidentio_api_key=sandbox.writer_token,
            incidentio_base_url=sandbox.url,
            webhook_auth=None,
            webhook_basic_username="amuser",  # the delivery's credentials
            webhook_basic_password="ampass",
            coalesce_window="0s",
            reconcile_interval="1h",
        )
    finally:
        threading.setprofile(previous)
    server.clock.now = sandbox.clock.now
    reconciler = server.app[RECONCILER]
    # The start-up pass and the pause after it (pacing.MIN_PASS_INTERVAL) are over: the loop
    # waits for a change.
    while reconciler.last is None:
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    page = sandbox.app[SANDBOX_KEY].state
    assert not page.incidents

    done = asyncio.Event()
    forward = sandbox.record

    def record(exchange: Any) -> None:  # every API exchange of the sandbox, once answered
        if profile.active and page.incidents:
            sys.setprofile(None)
            profile.active = False
            done.set()
        forward(exchange)

    monkeypatch.setattr(sandbox, "record", record)
    # While recording, the loop's clock stands still, so no timer fires (the rules watcher's and the
    # lease loop's 2 s ticks, APScheduler): the window holds what the webhook causes, nothing else.
    # Were the path ever to wait for a timer, the clock moves again after THAW_AFTER and the test
    # says so.
    loop = asyncio.get_running_loop()
    real_time = loop.time
    frozen = real_time()
    thaw = time.monotonic() + THAW_AFTER

    def stopped_clock() -> float:
        return frozen if time.monotonic() < thaw else real_time()

    body, headers = _delivery()
    with monkeypatch.context() as patch:
        patch.setattr(loop, "time", stopped_clock)
        profile.active = True
        sys.setprofile(profile.hook)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    server.url + "/webhooks/alertmanager", data=body, headers=headers
                ) as r:
                    assert r.status == 200, await r.text()
            await asyncio.wait_for(done.wait(), timeout=2 * THAW_AFTER)
        finally:
            sys.setprofile(None)
            profile.active = False
    assert time.monotonic() < thaw, "the path waited for a timer: the loop's clock had to move again"
    assert len(page.incidents) == 1
    return WebhookPath.of(profile, layers())


async def test_one_webhook_path_stays_short(
    server_factory: ServerFactory, sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await one_webhook(server_factory, sandbox, tmp_path, monkeypatch)
    print("\n" + path.report())  # noqa: T201 (pytest -s shows what was measured)
    assert len(path.modules) <= MAX_MODULES, path.report()
    assert len(path.upward) <= MAX_UPWARD, path.report()
