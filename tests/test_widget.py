"""GET /widget: the Widget API JSON proxied with a cache, ETag, coalescing and stale-on-error, or
built from the bridge's own published state."""

from __future__ import annotations

import asyncio

import aiohttp

from bridge.sandbox.app import SANDBOX_KEY
from bridge.web.resources import SETTINGS
from bridge.web.widget import CACHE_KEY
from tests.conftest import COMPONENTS, PAGE_ID, Bridge, SandboxServer, fire, reconcile
from tests.e2e.harness import free_port


async def test_proxy_caches_with_etag_and_coalesces(bridge: Bridge, sandbox: SandboxServer) -> None:
    upstream = f"{sandbox.url}/status/{PAGE_ID}/api/v1/summary"
    server = await bridge(widget_upstream_url=upstream, widget_ttl="30s")
    cache = server.app[CACHE_KEY]
    async with aiohttp.ClientSession() as s:
        first = await s.get(server.url + "/widget")
        body = await first.json()
        assert first.status == 200
        assert body["page_title"] == "Acme Status"
        assert first.headers["Cache-Control"] == "public, max-age=30"
        etag = first.headers["ETag"]
        again = await s.get(server.url + "/widget", headers={"If-None-Match": etag})
        assert again.status == 304
        assert cache.upstream_fetches == 1
        server.clock.advance(31)
        answers = await asyncio.gather(*(s.get(server.url + "/widget") for _ in range(20)))
        assert {a.status for a in answers} == {200}
        assert cache.upstream_fetches == 2, "twenty concurrent clients, one upstream fetch"


async def test_stale_copy_while_upstream_fails(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge(widget_upstream_url=f"{sandbox.url}/status/{PAGE_ID}/api/v1/summary")
    async with aiohttp.ClientSession() as s:
        good = await (await s.get(server.url + "/widget")).read()
        server.app[SETTINGS].widget_upstream_url = f"http://127.0.0.1:{free_port()}/gone"
        server.clock.advance(60)
        stale = await s.get(server.url + "/widget")
        assert stale.status == 200
        assert await stale.read() == good
        assert "X-StatusBridge-Stale" in stale.headers


async def test_no_copy_yet_and_upstream_down_is_502(bridge: Bridge) -> None:
    server = await bridge(widget_upstream_url=f"http://127.0.0.1:{free_port()}/gone")
    async with aiohttp.ClientSession() as s:
        r = await s.get(server.url + "/widget")
        assert r.status == 502
        assert (await r.json())["error"]["message"]


async def test_built_from_published_state(bridge: Bridge, sandbox: SandboxServer) -> None:
    server = await bridge()
    await fire(server, "api")
    await reconcile(server)
    async with aiohttp.ClientSession() as s:
        data = await (await s.get(server.url + "/widget")).json()
    (incident,) = data["ongoing_incidents"]
    assert incident["name"] == "api is down"
    assert incident["current_worst_impact"] == "full_outage"
    assert incident["affected_components"] == [
        {"id": COMPONENTS["API"], "name": "API", "current_status": "full_outage"}
    ]
    assert incident["id"] == next(iter(sandbox.app[SANDBOX_KEY].state.incidents))
    assert data["scheduled_maintenances"] == []
