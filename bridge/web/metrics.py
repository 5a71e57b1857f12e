"""``GET /metrics``: the Prometheus exposition, unauthenticated, at the root.

Counters are kept as things happen (``bridge.metrics``); the gauges that describe the last pass and
the store (lag, impacts, open incidents, maintenances, incidents left open) are set here, at scrape
time, so they are never staler than the scrape.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.engine.windows import load_published
from bridge.web.runtime import RUNTIME


async def metrics(request: web.Request) -> web.Response:
    """The registry's text exposition, with the scrape-time gauges refreshed first."""
    rt = request.app[RUNTIME]
    m = rt.metrics
    if rt.rules is not None:
        m.rules_ok.set(0 if rt.rules.last_error else 1)
    last = rt.reconciler.last if rt.reconciler is not None else None
    if last is not None:
        m.reconcile_lag.set(max(0.0, (rt.clock() - last.at).total_seconds()))
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
    m.leader.set(1 if rt.leader else 0)
    if rt.store is not None:
        by_status: dict[str, int] = {}
        for pub in (await load_published(rt.store)).values():
            if pub.maintenance_id and not pub.deleted and pub.status:
                by_status[pub.status] = by_status.get(pub.status, 0) + 1
        m.maintenances.clear()
        for maintenance_status, count in by_status.items():
            m.maintenances.labels(maintenance_status).set(count)
    if rt.store is not None:
        m.left_open.set(sum(1 for g in (await rt.store.load_groups()).values() if g.left_open_incident))
    return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def routes() -> list[web.RouteDef]:
    """``/metrics``, at the root."""
    return [web.get("/metrics", metrics)]
