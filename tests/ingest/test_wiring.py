"""How ingest is plugged into the app: the change event the reconciler waits on, readiness detail
set from outside, and a store failure seen by Alertmanager and by the probe."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from bridge.web.resources import CHANGED, HEALTH, STORE
from tests.conftest import Server


def delivery(status: str, starts: str = "2026-11-23T10:00:00Z", **annotations: str) -> bytes:
    alert = {
        "status": status,
        "labels": {"alertname": "Wired"},
        "annotations": annotations,
        "startsAt": starts,
        "endsAt": "2026-11-23T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
    }
    return json.dumps({"version": "4", "alerts": [alert]}).encode()


async def post(server: Server, body: bytes) -> int:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            server.url + "/webhooks/alertmanager", data=body, headers={"Content-Type": "application/json"}
        ) as r:
            return r.status


async def test_changed_is_set_only_when_a_commit_changed_something(server: Server) -> None:
    changed = server.app[CHANGED]

    async def wakes(body: bytes, expected_status: int = 200) -> bool:
        """Whether posting ``body`` sets the event (the running reconciler clears it at once, so
        the test waits on it as the reconciler does rather than polling it)."""
        changed.clear()
        waiter = asyncio.create_task(changed.wait())
        await asyncio.sleep(0)
        assert await post(server, body) == expected_status
        await asyncio.sleep(0)
        woke = waiter.done()
        waiter.cancel()
        return woke

    assert await wakes(delivery("firing")), "a new instance wakes the reconciler"
    assert not await wakes(delivery("firing")), "a repeat only refreshes last_received_at"
    assert not await wakes(b"{broken", 400), "a rejected delivery commits nothing"
    assert await wakes(delivery("resolved")), "a resolve wakes the reconciler"
    assert not await wakes(delivery("firing")), "a late firing repeat does not reopen a resolved instance"
    assert await wakes(delivery("firing", starts="2026-11-23T11:00:00Z")), "a re-fire is a new instance"


async def test_a_component_can_make_the_daemon_unready_and_ready_again(server: Server) -> None:
    async def readyz() -> tuple[int, dict[str, object]]:
        async with aiohttp.ClientSession() as s:
            async with s.get(server.url + "/readyz") as r:
                return r.status, await r.json()

    assert (await readyz())[0] == 200
    server.app[HEALTH].problems["reconciler"] = "no pass for 5m"
    status, body = await readyz()
    assert status == 503
    assert body["ready"] is False
    assert body["problems"] == {"reconciler": "no pass for 5m"}
    del server.app[HEALTH].problems["reconciler"]
    assert (await readyz())[0] == 200


async def test_a_store_failure_is_a_503_with_retry_after_and_unready(server: Server) -> None:
    """The only 5xx: Alertmanager retries it (and sends the resolve later), unlike a 4xx."""
    await server.app[STORE].close()
    async with aiohttp.ClientSession() as s:
        async with s.post(
            server.url + "/webhooks/alertmanager",
            data=delivery("firing"),
            headers={"Content-Type": "application/json"},
        ) as r:
            assert r.status == 503
            assert r.headers["Retry-After"] == "5"
            assert (await r.json())["error"]["message"] == "the alert store is unavailable; retry later"
        async with s.get(server.url + "/readyz") as r:
            assert r.status == 503
            assert "store" in (await r.json())["problems"]
