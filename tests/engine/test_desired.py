"""Desired state folds impacts per group: worst status wins, maintenance suppresses openings only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.domain import Alert, AlertStatus, Impact, PublishedGroup, Source
from bridge.domain import ComponentStatus as CS
from bridge.domain import IncidentStatus as IS
from bridge.engine.desired import build_desired

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def alert(fp: str, started: datetime = T0) -> Alert:
    return Alert(
        source=Source.ALERTMANAGER,
        fingerprint=fp,
        labels={"alertname": fp},
        annotations={},
        status=AlertStatus.FIRING,
        starts_at=started,
        ends_at=None,
        generator_url="",
        received_at=started,
    )


def impact(fp: str, component: str, status: CS, group: str = "g", suppress: bool = True) -> Impact:
    return Impact(
        rule="r",
        status_page="page",
        component=component,
        status=status,
        group_key=group,
        alert_source=Source.ALERTMANAGER,
        alert_fingerprint=fp,
        incident_name="API trouble",
        message="Looking into it",
        resolved_message="Fixed",
        suppress_during_maintenance=suppress,
    )


def test_worst_status_wins_and_reasons_name_the_alerts() -> None:
    alerts = {(Source.ALERTMANAGER, f): alert(f, T0 + timedelta(seconds=i)) for i, f in enumerate("abc")}
    d = build_desired(
        [
            impact("a", "api", CS.DEGRADED_PERFORMANCE),
            impact("b", "api", CS.FULL_OUTAGE),
            impact("c", "web", CS.PARTIAL_OUTAGE),
        ],
        alerts,
        {},
    )["g"]
    assert d.components == {"api": CS.FULL_OUTAGE, "web": CS.PARTIAL_OUTAGE}
    assert d.first_firing_at == T0
    assert d.reasons["api"].alerts == ("alertmanager:a", "alertmanager:b")
    assert d.name == "API trouble"


def test_groups_are_separate() -> None:
    alerts = {(Source.ALERTMANAGER, "a"): alert("a")}
    got = build_desired(
        [impact("a", "api", CS.FULL_OUTAGE, "g1"), impact("a", "db", CS.FULL_OUTAGE, "g2")], alerts, {}
    )
    assert set(got) == {"g1", "g2"}


def test_maintenance_suppresses_opening_but_not_an_open_incident() -> None:
    alerts = {(Source.ALERTMANAGER, "a"): alert("a")}
    impacts = [impact("a", "api", CS.FULL_OUTAGE), impact("a", "web", CS.FULL_OUTAGE, suppress=False)]
    maint = {"page": {"api"}}
    d = build_desired(impacts, alerts, {}, maint)["g"]
    assert d.components == {"web": CS.FULL_OUTAGE}
    assert d.suppressed == ("api",)
    open_pub = PublishedGroup(
        key="g", episode=1, status_page_id="page", incident_id="i", incident_status=IS.INVESTIGATING
    )
    d = build_desired(impacts, alerts, {"g": open_pub}, maint)["g"]
    assert d.components == {"api": CS.FULL_OUTAGE, "web": CS.FULL_OUTAGE}
    assert d.suppressed == ()


def test_all_suppressed_is_quiet() -> None:
    alerts = {(Source.ALERTMANAGER, "a"): alert("a")}
    d = build_desired([impact("a", "api", CS.FULL_OUTAGE)], alerts, {}, {"page": {"api"}})["g"]
    assert not d.firing
    assert d.first_firing_at is None
