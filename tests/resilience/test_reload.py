"""Broken rules on reload: a running ``serve`` keeps working with its previous rules whatever lands
in the rules file (SIGHUP after each edit), says so on ``/readyz`` and in its metrics, and takes the
next good file."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bridge.sandbox.app import SANDBOX_KEY
from tests.conftest import COMPONENTS, PAGE_ID, SandboxServer, metric
from tests.resilience.drill import RULES, Daemon, Sender, _alert

pytestmark = [pytest.mark.resilience, pytest.mark.e2e]

BROKEN = {
    "not YAML": 'status_page: "Acme Status"\nrules: [\n',
    "bad matcher": RULES.replace("""'service = "api"'""", """'service =~ "(unclosed"'"""),
    "unknown component": RULES.replace('components: ["API"]', 'components: ["No Such Component"]'),
    "unknown status": RULES.replace("critical: full_outage", "critical: on_fire", 1),
    "not a mapping": "- just\n- a list\n",
    "control characters": "rules:\n  - name: \x00\x01\x02\n",
}


async def readyz(daemon: Daemon) -> dict[str, object]:
    async with aiohttp.ClientSession() as s, s.get(daemon.url + "/readyz") as r:
        return dict(await r.json())


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_broken_rules_on_reload_keep_the_previous_rules(tmp_path: Path, sandbox: SandboxServer) -> None:
    sb = sandbox.app[SANDBOX_KEY]
    daemon = Daemon(tmp_path, sandbox)
    sender = Sender(lambda: [daemon.webhook])
    rules = tmp_path / "rules.yaml"
    start = datetime.now(UTC)

    async def shown(status: str) -> bool:
        return bool(sb.state.component_status(PAGE_ID, COMPONENTS["API"]) == status)

    async def deliver(i: int, severity: str) -> None:
        alert = _alert("api", i, severity, firing=True, start=start)
        body = {"version": "4", "status": "firing", "receiver": "t", "alerts": [alert]}
        await sender.deliver([json.dumps(body).encode()])

    try:
        await daemon.start()
        await deliver(0, "warning")
        await until("API degraded", lambda: shown("degraded_performance"))
        assert daemon.process is not None and daemon.process.proc is not None
        for n, (why, text) in enumerate(BROKEN.items(), start=1):
            assert text != RULES, why
            rules.write_text(text)
            daemon.process.proc.send_signal(signal.SIGHUP)

            async def refused(n: int = n) -> bool:
                return await metric(daemon.url, "statusbridge_rules_reload_errors_total") >= n

            await until(f"reload of {why!r} refused", refused)
            ready = await readyz(daemon)
            assert ready["ready"] is True, ready
            assert "reload failed, previous rules in use" in str(ready["warnings"]), (why, ready)
            assert await metric(daemon.url, "statusbridge_rules_last_reload_ok") == 0.0
        # the previous rules still map alerts: a critical API alert is a full outage
        await deliver(1, "critical")
        await until("API full outage under the old rules", lambda: shown("full_outage"))
        # a good file is taken, and its mapping applies from then on
        rules.write_text(RULES.replace("critical: full_outage", "critical: partial_outage"))
        daemon.process.proc.send_signal(signal.SIGHUP)

        async def reloaded() -> bool:
            return await metric(daemon.url, "statusbridge_rules_last_reload_ok") == 1.0

        await until("the good rules loaded", reloaded)
        assert "rules" not in str((await readyz(daemon))["warnings"])
        await until("API under the new rules", lambda: shown("partial_outage"))
        assert daemon.alive
        assert "Traceback" not in daemon.log()
        assert len(sb.state.incidents) == 1
    finally:
        daemon.stop()
