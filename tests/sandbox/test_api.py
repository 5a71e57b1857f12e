"""The sandbox behaves like incident.io's Status Page API V2 (responses checked against the spec)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from tests.conftest import SandboxFactory, SandboxServer


class Api:
    def __init__(self, sb: SandboxServer, session: aiohttp.ClientSession, token: str | None = None) -> None:
        self.sb = sb
        self.session = session
        self.token = sb.writer_token if token is None else token

    async def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(
            method, self.sb.url + path, json=body, params=params or None, headers=headers
        ) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data, resp.headers

    async def create(self, name: str = "API errors", key: str = "k1", **extra: Any) -> dict[str, Any]:
        body = {
            "status_page_id": self.sb.page_id,
            "name": name,
            "incident_status": "investigating",
            "message": "Looking into it",
            "idempotency_key": key,
            "notify_subscribers": False,
            **extra,
        }
        status, data, _ = await self.call("POST", "/v2/status_page_incidents", body)
        assert status == 201, data
        return dict(data["status_page_incident"])

    async def update(self, incident_id: str, **extra: Any) -> tuple[int, Any]:
        body = {
            "status_page_incident_id": incident_id,
            "message": "update",
            "notify_subscribers": False,
            **extra,
        }
        status, data, _ = await self.call("POST", "/v2/status_page_incident_updates", body)
        return status, data


@pytest.fixture
async def api(sandbox: SandboxServer) -> Any:
    async with aiohttp.ClientSession() as session:
        yield Api(sandbox, session)


def cs(sb: SandboxServer, **statuses: str) -> list[dict[str, str]]:
    names = {"api": "API", "dash": "Web/Dashboard", "site": "Web/Website", "db": "Database"}
    return [{"component_id": sb.components[names[k]], "component_status": v} for k, v in statuses.items()]


async def test_auth_missing_invalid_and_read_only(api: Api, sandbox: SandboxServer) -> None:
    sandbox.allow_invalid_requests = True
    api.token = ""
    status, data, _ = await api.call("GET", "/v2/status_pages")
    assert status == 401
    assert data["type"] == "authentication_error"
    assert data["errors"][0]["code"] == "missing_authorization_material"
    api.token = "nope"
    assert (await api.call("GET", "/v2/status_pages"))[0] == 401
    api.token = sandbox.reader_token
    assert (await api.call("GET", "/v2/status_pages"))[0] == 200
    status, data, _ = await api.call("POST", "/v2/status_page_incidents", {"name": "x"})
    assert status == 403
    assert data["type"] == "resource_forbidden"


async def test_pages_and_structure(api: Api, sandbox: SandboxServer) -> None:
    status, data, _ = await api.call("GET", "/v2/status_pages")
    assert status == 200
    assert [p["name"] for p in data["status_pages"]] == ["Acme Status", "Big Status"]
    assert "after" not in data["pagination_meta"]
    status, data, _ = await api.call("GET", f"/v2/status_page_structures/{sandbox.page_id}")
    assert status == 200
    kinds = [next(iter(i)) for i in data["current_structure"]["items"]]
    assert kinds == ["component", "group", "component", "sub_page"]
    assert (await api.call("GET", "/v2/status_page_structures/nope"))[0] == 404
    status, data, _ = await api.call("GET", f"/v2/status_pages/{sandbox.page_id}")
    assert data["status_page"]["name"] == "Acme Status"


async def test_create_validation_errors_name_the_field(api: Api, sandbox: SandboxServer) -> None:
    sandbox.allow_invalid_requests = True
    base = {
        "status_page_id": sandbox.page_id,
        "name": "n",
        "incident_status": "investigating",
        "message": "m",
        "idempotency_key": "k",
        "notify_subscribers": False,
    }
    cases = [
        ({k: v for k, v in base.items() if k != "name"}, "name"),
        ({**base, "name": "x" * 201}, "name"),
        ({**base, "message": "x" * 4097}, "message"),
        ({**base, "incident_status": "bogus"}, "incident_status"),
        (
            {**base, "component_statuses": [{"component_id": "nope", "component_status": "full_outage"}]},
            "component_statuses.0.component_id",
        ),
        ({**base, "status_page_id": sandbox.big_page_id, "notify_subscribers": True}, "notify_subscribers"),
        ({**base, "notify_subscribers": "yes"}, "notify_subscribers"),
    ]
    for body, field in cases:
        status, data, _ = await api.call("POST", "/v2/status_page_incidents", body)
        assert status == 422, (field, data)
        assert data["type"] == "validation_error"
        assert data["errors"][0]["source"]["field"] == field
    async with api.session.post(
        sandbox.url + "/v2/status_page_incidents",
        data=b"{not json",
        headers={"Authorization": "Bearer sandbox-writer"},
    ) as resp:
        assert resp.status == 400
    # nothing was created by any of these
    status, data, _ = await api.call("GET", "/v2/status_page_incidents", status_page_id=sandbox.page_id)
    assert data["status_page_incidents"] == []


async def test_idempotent_create_returns_original(api: Api, sandbox: SandboxServer) -> None:
    first = await api.create(key="same")
    second = await api.create(name="Different", key="same")
    assert second == first
    status, data, _ = await api.call("GET", "/v2/status_page_incidents", status_page_id=sandbox.page_id)
    assert len(data["status_page_incidents"]) == 1


async def test_component_impacts_one_period_per_run(api: Api, sandbox: SandboxServer) -> None:
    inc = await api.create(component_statuses=cs(sandbox, api="partial_outage"))
    sandbox.clock.advance(60)
    assert (
        await api.update(
            inc["id"], component_statuses=cs(sandbox, api="full_outage", db="degraded_performance")
        )
    )[0] == 201
    sandbox.clock.advance(60)
    assert (await api.update(inc["id"], component_statuses=cs(sandbox, api="operational")))[0] == 201
    _, data, _ = await api.call("GET", f"/v2/status_page_incidents/{inc['id']}")
    impacts = data["status_page_incident"]["component_impacts"]
    api_id, db_id = sandbox.components["API"], sandbox.components["Database"]
    api_periods = [(i["component_status"], "end_at" in i) for i in impacts if i["component_id"] == api_id]
    assert api_periods == [("partial_outage", True), ("full_outage", True)]
    assert [(i["component_status"], "end_at" in i) for i in impacts if i["component_id"] == db_id] == [
        ("degraded_performance", False)
    ]
    state = await (await api.session.get(sandbox.url + "/_sandbox/state")).json()
    assert state["components"][sandbox.page_id][api_id] == "operational"
    assert state["components"][sandbox.page_id][db_id] == "degraded_performance"


async def test_resolve_rules(api: Api, sandbox: SandboxServer) -> None:
    sandbox.allow_invalid_requests = True
    inc = await api.create(component_statuses=cs(sandbox, api="full_outage"))
    status, data = await api.update(
        inc["id"], incident_status="resolved", component_statuses=cs(sandbox, api="operational")
    )
    assert status == 422
    assert data["errors"][0]["source"]["field"] == "component_statuses"
    status, data = await api.update(inc["id"], incident_status="resolved")
    assert status == 201
    assert data["status_page_incident_update"]["component_statuses"] == cs(sandbox, api="operational")
    status, _ = await api.update(inc["id"], message="again")
    assert status == 422
    status, data, _ = await api.call("PUT", f"/v2/status_page_incidents/{inc['id']}", {"name": "Renamed"})
    assert status == 200
    assert data["status_page_incident"]["name"] == "Renamed"
    assert all("end_at" in i for i in data["status_page_incident"]["component_impacts"])


async def test_worst_status_over_ongoing_incidents(api: Api, sandbox: SandboxServer) -> None:
    a = await api.create(key="a", component_statuses=cs(sandbox, api="degraded_performance"))
    b = await api.create(key="b", component_statuses=cs(sandbox, api="full_outage"))
    state = await (await api.session.get(sandbox.url + "/_sandbox/state")).json()
    assert state["components"][sandbox.page_id][sandbox.components["API"]] == "full_outage"
    await api.update(b["id"], incident_status="resolved")
    state = await (await api.session.get(sandbox.url + "/_sandbox/state")).json()
    assert state["components"][sandbox.page_id][sandbox.components["API"]] == "degraded_performance"
    assert a["id"] != b["id"]


async def test_hundred_updates_limit(api: Api, sandbox: SandboxServer) -> None:
    inc = await api.create()
    for _ in range(99):
        assert (await api.update(inc["id"]))[0] == 201
    status, data = await api.update(inc["id"])
    assert status == 422
    assert data["errors"][0]["code"] == "too_many_updates"


async def test_pagination_newest_first(api: Api, sandbox: SandboxServer) -> None:
    ids = [(await api.create(name=f"i{i}", key=f"k{i}"))["id"] for i in range(7)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params = {"status_page_id": sandbox.page_id, "page_size": 3, **({"after": after} if after else {})}
        _, data, _ = await api.call("GET", "/v2/status_page_incidents", **params)
        seen += [i["id"] for i in data["status_page_incidents"]]
        pages += 1
        after = data["pagination_meta"].get("after")
        if not after:
            break
    assert seen == list(reversed(ids))
    assert pages == 3
    sandbox.allow_invalid_requests = True
    assert (await api.call("GET", "/v2/status_page_incidents", status_page_id=sandbox.page_id, page_size=0))[
        0
    ] == 422
    assert (await api.call("GET", "/v2/status_page_incidents"))[0] == 422


async def test_maintenance_lifecycle_and_automation(api: Api, sandbox: SandboxServer) -> None:
    sandbox.allow_invalid_requests = True
    t0 = sandbox.clock.now
    body = {
        "status_page_id": sandbox.page_id,
        "name": "DB upgrade",
        "maintenance_status": "maintenance_scheduled",
        "idempotency_key": "m1",
        "affected_component_ids": [sandbox.components["Database"]],
        "start_at": (t0.replace(hour=13)).isoformat(),
        "end_at": (t0.replace(hour=14)).isoformat(),
        "message": "We will upgrade the database.",
        "notify_subscribers": False,
        "automate_maintenance_status": True,
    }
    assert (await api.call("POST", "/v2/status_page_maintenances", {**body, "end_at": body["start_at"]}))[
        0
    ] == 422
    status, data, _ = await api.call("POST", "/v2/status_page_maintenances", body)
    assert status == 201
    m = data["status_page_maintenance"]
    assert m["automate_maintenance_status"] is True
    assert m["maintenance_status"] == "maintenance_scheduled"
    sandbox.clock.advance(3600 + 60)
    _, data, _ = await api.call("GET", f"/v2/status_page_maintenances/{m['id']}")
    assert data["status_page_maintenance"]["maintenance_status"] == "maintenance_in_progress"
    widget = await (await api.session.get(f"{sandbox.url}/status/{sandbox.page_id}/api/v1/summary")).json()
    assert [w["name"] for w in widget["in_progress_maintenances"]] == ["DB upgrade"]
    sandbox.clock.advance(3600)
    _, data, _ = await api.call("GET", f"/v2/status_page_maintenances/{m['id']}")
    assert data["status_page_maintenance"]["maintenance_status"] == "maintenance_complete"
    periods = data["status_page_maintenance"]["component_maintenance_periods"]
    assert len(periods) == 1
    assert "end_at" in periods[0]
    upd = {"status_page_maintenance_id": m["id"], "message": "late", "notify_subscribers": False}
    assert (await api.call("POST", "/v2/status_page_maintenance_updates", upd))[0] == 422


async def test_an_automated_completion_shows_on_the_next_incident_read(
    api: Api, sandbox: SandboxServer
) -> None:
    """incident.io completes an automated window on its clock, not when someone looks at the
    window: reading only the incident afterwards shows the impact the completion ended."""
    t0 = sandbox.clock.now
    inc = await api.create(component_statuses=cs(sandbox, db="partial_outage"))
    status, _, _ = await api.call(
        "POST",
        "/v2/status_page_maintenances",
        {
            "status_page_id": sandbox.page_id,
            "name": "DB failover",
            "maintenance_status": "maintenance_scheduled",
            "idempotency_key": "m-read",
            "affected_component_ids": [sandbox.components["Database"]],
            "start_at": (t0 + timedelta(minutes=1)).isoformat(),
            "end_at": (t0 + timedelta(minutes=2)).isoformat(),
            "message": "Failover.",
            "notify_subscribers": False,
            "automate_maintenance_status": True,
        },
    )
    assert status == 201
    sandbox.clock.advance(180)
    _, data, _ = await api.call("GET", f"/v2/status_page_incidents/{inc['id']}")
    (impact,) = data["status_page_incident"]["component_impacts"]
    assert impact["end_at"] == (t0 + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    assert len(data["status_page_incident"]["updates"]) == 1, "a completion posts no incident update"


async def test_manual_maintenance_update_cancels_automation(api: Api, sandbox: SandboxServer) -> None:
    t0 = sandbox.clock.now
    body = {
        "status_page_id": sandbox.page_id,
        "name": "Window",
        "maintenance_status": "maintenance_scheduled",
        "idempotency_key": "m2",
        "affected_component_ids": [sandbox.components["API"]],
        "start_at": t0.replace(hour=13).isoformat(),
        "end_at": t0.replace(hour=14).isoformat(),
        "message": "Soon",
        "notify_subscribers": False,
        "automate_maintenance_status": True,
    }
    _, data, _ = await api.call("POST", "/v2/status_page_maintenances", body)
    mid = data["status_page_maintenance"]["id"]
    upd = {
        "status_page_maintenance_id": mid,
        "message": "Started early",
        "notify_subscribers": False,
        "maintenance_status": "maintenance_in_progress",
    }
    status, data, _ = await api.call("POST", "/v2/status_page_maintenance_updates", upd)
    assert status == 201
    assert (
        data["status_page_maintenance_update"]["component_statuses"][0]["component_status"]
        == "under_maintenance"
    )
    sandbox.clock.advance(3 * 3600)
    _, data, _ = await api.call("GET", f"/v2/status_page_maintenances/{mid}")
    assert data["status_page_maintenance"]["maintenance_status"] == "maintenance_in_progress"
    assert data["status_page_maintenance"]["automate_maintenance_status"] is False
    status, data, _ = await api.call(
        "PUT",
        f"/v2/status_page_maintenances/{mid}",
        {"name": "Window 2", "start_at": body["start_at"], "end_at": t0.replace(hour=18).isoformat()},
    )
    assert status == 200
    assert (await api.call("DELETE", f"/v2/status_page_maintenances/{mid}"))[0] == 204
    assert (await api.call("GET", f"/v2/status_page_maintenances/{mid}"))[0] == 404


async def test_faults_and_request_log(api: Api, sandbox: SandboxServer) -> None:
    async with api.session.post(
        sandbox.url + "/_sandbox/faults",
        json={
            "method": "POST",
            "path_prefix": "/v2/status_page_incidents",
            "count": 1,
            "status": 500,
            "after_processing": True,
        },
    ) as resp:
        assert resp.status == 200
    status, data, _ = await api.call(
        "POST",
        "/v2/status_page_incidents",
        {
            "status_page_id": sandbox.page_id,
            "name": "n",
            "incident_status": "investigating",
            "message": "m",
            "idempotency_key": "f",
            "notify_subscribers": False,
        },
    )
    assert status == 500
    assert data["type"] == "api_error"
    # applied despite the 500: the idempotent replay returns it
    again = await api.create(name="n", key="f")
    _, listing, _ = await api.call("GET", "/v2/status_page_incidents", status_page_id=sandbox.page_id)
    assert [i["id"] for i in listing["status_page_incidents"]] == [again["id"]]
    await api.session.post(
        sandbox.url + "/_sandbox/faults",
        json={"path_prefix": "/v2/status_pages", "count": 2, "status": 429, "retry_after": 3},
    )
    status, data, headers = await api.call("GET", "/v2/status_pages")
    assert status == 429
    assert headers["Retry-After"] == "3"
    assert data["rate_limit"]["remaining"] == 0
    log = await (await api.session.get(sandbox.url + "/_sandbox/requests")).json()
    assert [(r["method"], r["status"]) for r in log][:2] == [("POST", 500), ("POST", 201)]
    await api.session.post(sandbox.url + "/_sandbox/reset")
    assert await (await api.session.get(sandbox.url + "/_sandbox/requests")).json() == []


async def test_rate_limit_bucket(sandbox_factory: SandboxFactory) -> None:
    sb = await sandbox_factory(rate_limit=True, rate_capacity=3, rate_refill=1.0)
    async with aiohttp.ClientSession() as session:
        api = Api(sb, session)
        statuses = [(await api.call("GET", "/v2/status_pages"))[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        _, _, headers = await api.call("GET", "/v2/status_pages")
        assert headers["Retry-After"] == "1"
        sb.clock.advance(2)
        status, _, headers = await api.call("GET", "/v2/status_pages")
        assert status == 200
        assert headers["X-RateLimit-Remaining"] == "1"


async def test_public_page_and_widget(api: Api, sandbox: SandboxServer) -> None:
    inc = await api.create(
        name="<script>alert(1)</script> API down", component_statuses=cs(sandbox, api="full_outage")
    )
    async with api.session.get(f"{sandbox.url}/status/{sandbox.page_id}") as resp:
        page = await resp.text()
    assert "&lt;script&gt;" in page
    assert "<script>alert" not in page
    assert inc["id"] in page
    assert "Full outage" in page
    widget = await (await api.session.get(f"{sandbox.url}/status/{sandbox.page_id}/api/v1/summary")).json()
    assert widget["page_title"] == "Acme Status"
    (ongoing,) = widget["ongoing_incidents"]
    assert ongoing["current_worst_impact"] == "full_outage"
    assert ongoing["affected_components"] == [
        {"id": sandbox.components["API"], "name": "API", "current_status": "full_outage"}
    ]
    assert widget["scheduled_maintenances"] == []
    async with api.session.get(f"{sandbox.url}/status/nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["type"] == "not_found"


async def test_a_fault_with_a_duration_is_an_outage(api: Api, sandbox: SandboxServer) -> None:
    """Every matching request fails until the duration has passed on the sandbox's clock."""
    async with api.session.post(
        sandbox.url + "/_sandbox/faults",
        json={"path_prefix": "/v2/status_pages", "count": 1, "status": 503, "duration": 30},
    ) as resp:
        assert resp.status == 200
    statuses = [(await api.call("GET", "/v2/status_pages"))[0] for _ in range(3)]
    assert statuses == [503, 503, 503], "the count does not end an outage"
    sandbox.clock.advance(30)
    assert (await api.call("GET", "/v2/status_pages"))[0] == 200
    async with api.session.post(
        sandbox.url + "/_sandbox/faults", json={"status": 503, "duration": 0}
    ) as resp:
        assert resp.status == 422
