"""``GET /metrics``: the Prometheus exposition, unauthenticated, at the root.

Counters are kept as things happen (``bridge.metrics``); the gauges that describe the last pass and
the store (lag, impacts, open incidents, maintenances, incidents left open) are set here, at scrape
time, so they are never staler than the scrape.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.engine.windows import load_published
from bridge.web.resources import CLOCK, LEADING, METRICS, RECONCILER, STORE


async def metrics(request: web.Request) -> web.Response:
    """The registry's text exposition, with the scrape-time gauges refreshed first."""
    app = request.app
    m, store = app[METRICS], app[STORE]
    last = app[RECONCILER].last
    if last is not None:
        m.reconcile_lag.set(max(0.0, (app[CLOCK]() - last.at).total_seconds()))
        m.coalesced.set(sum(1 for g in last.groups.values() if g.plan.held == "coalescing updates"))
        severity: dict[str, int] = {}
        for g in last.groups.values():
            for component, status in g.desired.components.items() if g.desired else ():
                severity[component] = max(severity.get(component, 0), status.severity)
        m.impacts.clear()
        for component, value in severity.items():
            m.impacts.labels(component).set(value)
        m.alerts_active.set(last.alerts)
        m.incidents_open.set(
            sum(1 for g in last.groups.values() if g.published is not None and g.published.open)
        )
        m.groups_held.set(sum(1 for g in last.groups.values() if g.plan.held))
    m.leader.set(1 if app[LEADING].is_set() else 0)
    by_status: dict[str, int] = {}
    for pub in (await load_published(store)).values():
        if pub.maintenance_id and not pub.deleted and pub.status:
            by_status[pub.status] = by_status.get(pub.status, 0) + 1
    m.maintenances.clear()
    for maintenance_status, count in by_status.items():
        m.maintenances.labels(maintenance_status).set(count)
    m.left_open.set(sum(1 for g in (await store.load_groups()).values() if g.left_open_incident))
    m.store_bytes.set(await store.size())
    return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def routes() -> list[web.RouteDef]:
    """``/metrics``, at the root."""
    return [web.get("/metrics", metrics)]
