"""Read-back: the page is the truth; our own writes are adopted, anyone else's mean takeover."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bridge.domain import ComponentStatus as CS
from bridge.domain import IncidentStatus as IS
from bridge.domain import PublishedGroup
from bridge.engine.readback import IncidentView, after_read_back

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def pub(**kw: object) -> PublishedGroup:
    base = PublishedGroup(
        key="g",
        episode=1,
        status_page_id="p",
        incident_id="i",
        incident_status=IS.INVESTIGATING,
        components={"api": CS.PARTIAL_OUTAGE},
        name="API",
        update_count=2,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def view(
    status: IS = IS.INVESTIGATING, comps: dict[str, CS] | None = None, count: int = 2, name: str = "API"
) -> IncidentView:
    return IncidentView("i", name, status, comps if comps is not None else {"api": CS.PARTIAL_OUTAGE}, count)


def test_unchanged_page_changes_nothing() -> None:
    assert after_read_back(pub(), view(), T0) == pub()


def test_unknown_outcome_that_landed_is_adopted() -> None:
    after = after_read_back(pub(outcome_unknown=True), view(IS.MONITORING, {"api": CS.OPERATIONAL}, 3), T0)
    assert after.incident_status is IS.MONITORING
    assert after.update_count == 3
    assert after.monitoring_since == T0
    assert not after.outcome_unknown
    assert not after.taken_over


def test_unknown_outcome_that_did_not_land_clears_the_flag() -> None:
    after = after_read_back(pub(outcome_unknown=True), view(), T0)
    assert after == pub()


def test_human_resolve_is_a_takeover() -> None:
    after = after_read_back(pub(), view(IS.RESOLVED, {"api": CS.OPERATIONAL}, 3), T0)
    assert after.taken_over
    assert after.taken_over_reason and "did not post" in after.taken_over_reason


def test_human_component_edit_is_a_takeover() -> None:
    after = after_read_back(pub(), view(comps={"api": CS.FULL_OUTAGE}), T0)
    assert after.taken_over


def test_human_rename_is_a_takeover() -> None:
    assert after_read_back(pub(), view(name="Something else"), T0).taken_over
