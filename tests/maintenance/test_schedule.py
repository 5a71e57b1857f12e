"""The window math as tables: occurrences in a range, phases at exact instants, what the page should
show, wake-ups, components under maintenance and overlaps. Time is always passed in; nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.domain import MaintenanceStatus, PageComponent, PageDirectory, PageInfo
from bridge.maintenance import (
    ONE_OFF_KEY,
    AnyWindow,
    Occurrence,
    Phase,
    desired,
    next_wakeups,
    occurrences,
    overlaps,
    parse_window,
    phase,
    under_maintenance,
)

US = timedelta(microseconds=1)


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def one_off(window_id: str = "once", **extra: Any) -> AnyWindow:
    data = {
        "id": window_id,
        "name": window_id,
        "status_page": "Acme Status",
        "components": ["API"],
        "start_at": "2026-05-03T02:00:00Z",
        "end_at": "2026-05-03T04:00:00Z",
    }
    return parse_window(data | extra)


def recurring(window_id: str = "weekly", **extra: Any) -> AnyWindow:
    data = {
        "id": window_id,
        "name": window_id,
        "status_page": "Acme Status",
        "components": ["API"],
        "cron": "0 2 * * sun",
        "timezone": "Europe/Berlin",
        "duration": "2h",
    }
    return parse_window(data | extra)


# --- announce_before ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "start", "announce"),
    [
        (one_off(), "2026-05-03T02:00:00Z", None),  # one-off default: on the page at once
        (one_off(announce_before="1d"), "2026-05-03T02:00:00Z", "2026-05-02T02:00:00Z"),
        (one_off(announce_before="0s"), "2026-05-03T02:00:00Z", "2026-05-03T02:00:00Z"),
        (recurring(), "2026-05-03T00:00:00Z", "2026-04-26T00:00:00Z"),  # recurring default: 7 days
        (recurring(announce_before="36h"), "2026-05-03T00:00:00Z", "2026-05-01T12:00:00Z"),
    ],
)
def test_announce_before_defaults(window: AnyWindow, start: str, announce: str | None) -> None:
    found = occurrences(window, z("2026-04-01T00:00:00Z"), z("2026-05-04T00:00:00Z"))
    [occ] = [o for o in found if o.start_at == z(start)]
    assert occ.announce_at == (None if announce is None else z(announce))


def test_one_off_default_is_published_long_before_its_start() -> None:
    [occ] = occurrences(one_off(), z("2020-01-01T00:00:00Z"), z("2020-01-02T00:00:00Z"))
    assert phase(occ, z("2020-01-01T00:00:00Z")) is Phase.SCHEDULED


# --- phases at exact instants ---------------------------------------------------------------------

OCC = Occurrence(
    window_id="w",
    key="k",
    start_at=z("2026-05-03T02:00:00Z"),
    end_at=z("2026-05-03T04:00:00Z"),
    announce_at=z("2026-05-01T00:00:00Z"),
)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (z("2026-04-01T00:00:00Z"), Phase.ABSENT),
        (z("2026-05-01T00:00:00Z") - US, Phase.ABSENT),
        (z("2026-05-01T00:00:00Z"), Phase.SCHEDULED),
        (z("2026-05-03T02:00:00Z") - US, Phase.SCHEDULED),
        (z("2026-05-03T02:00:00Z"), Phase.IN_PROGRESS),
        (z("2026-05-03T04:00:00+02:00"), Phase.IN_PROGRESS),  # any offset names the same instant
        (z("2026-05-03T04:00:00Z") - US, Phase.IN_PROGRESS),
        (z("2026-05-03T04:00:00Z"), Phase.COMPLETE),
        (z("2030-01-01T00:00:00Z"), Phase.COMPLETE),
    ],
)
def test_phase_boundaries(now: datetime, expected: Phase) -> None:
    assert phase(OCC, now) is expected


@pytest.mark.parametrize(
    ("phase_", "status"),
    [
        (Phase.ABSENT, None),
        (Phase.SCHEDULED, MaintenanceStatus.SCHEDULED),
        (Phase.IN_PROGRESS, MaintenanceStatus.IN_PROGRESS),
        (Phase.COMPLETE, MaintenanceStatus.COMPLETE),
    ],
)
def test_phase_maps_to_the_page_status(phase_: Phase, status: MaintenanceStatus | None) -> None:
    assert phase_.status == status


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        phase(OCC, datetime(2026, 5, 3))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrences(one_off(), datetime(2026, 5, 3), z("2026-05-04T00:00:00Z"))  # noqa: DTZ001


# --- occurrences ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "window", "start", "end", "keys"),
    [
        ("one-off inside", one_off(), "2026-05-03T03:00:00Z", "2026-05-03T03:30:00Z", [ONE_OFF_KEY]),
        ("one-off before its end", one_off(), "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", [ONE_OFF_KEY]),
        ("one-off at its end", one_off(), "2026-05-03T04:00:00Z", "2026-05-04T00:00:00Z", []),
        (
            "one-off announced later",
            one_off(announce_before="1h"),
            "2026-05-01T00:00:00Z",
            "2026-05-03T01:00:00Z",
            [],
        ),
        (
            "one-off announced at range end is outside",
            one_off(announce_before="1h"),
            "2026-05-03T00:00:00Z",
            "2026-05-03T01:00:00Z",
            [],
        ),
        (
            "one-off announced just inside",
            one_off(announce_before="1h"),
            "2026-05-03T00:00:00Z",
            "2026-05-03T01:00:01Z",
            [ONE_OFF_KEY],
        ),
        # Lifetime [announce, end): an in-progress one plus those announced (7 days ahead) by the end.
        (
            "weekly: in progress and announced",
            recurring(),
            "2026-05-03T01:00:00Z",
            "2026-05-03T01:00:01Z",
            ["2026-05-03T00:00:00Z", "2026-05-10T00:00:00Z"],
        ),
        (
            "weekly: lifetime ends exactly at range start",
            recurring(),
            "2026-05-03T02:00:00Z",
            "2026-05-03T02:00:01Z",
            ["2026-05-10T00:00:00Z"],
        ),
        (
            "weekly: no lead",
            recurring(announce_before="0s"),
            "2026-05-04T00:00:00Z",
            "2026-05-24T00:00:00Z",
            ["2026-05-10T00:00:00Z", "2026-05-17T00:00:00Z"],
        ),
        ("empty range", recurring(), "2026-05-04T00:00:00Z", "2026-05-04T00:00:00Z", []),
        # Monthly on the 1st, New York time, one in winter and one in summer time.
        (
            "monthly across DST",
            recurring(cron="30 23 1 * *", timezone="America/New_York", duration="1h", announce_before="0s"),
            "2026-02-15T00:00:00Z",
            "2026-04-15T00:00:00Z",
            ["2026-03-02T04:30:00Z", "2026-04-02T03:30:00Z"],
        ),
    ],
)
def test_occurrences(case: str, window: AnyWindow, start: str, end: str, keys: list[str]) -> None:
    found = occurrences(window, z(start), z(end))
    assert [o.key for o in found] == keys, case
    for o in found:
        assert o.window_id == window.id
        assert o.end_at > z(start)
        assert o.announce_at is None or o.announce_at < z(end)


@pytest.mark.parametrize(
    ("case", "window", "since", "start", "end"),
    [
        # Durations are elapsed time: 2h from 03:00 CEST (the shifted 02:00) ends 05:00 CEST.
        (
            "berlin spring forward",
            recurring(),
            "2026-03-28T00:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T03:00:00Z",
        ),
        # 2h from 02:00 CEST ends at 03:00 CET on the wall clock: the hour repeats.
        (
            "berlin fall back",
            recurring(),
            "2026-10-24T00:00:00Z",
            "2026-10-25T00:00:00Z",
            "2026-10-25T02:00:00Z",
        ),
        (
            "new york spring forward",
            recurring(timezone="America/New_York", cron="30 2 * * 0", duration="1h"),
            "2026-03-07T00:00:00Z",
            "2026-03-08T07:30:00Z",
            "2026-03-08T08:30:00Z",
        ),
        (
            "new york fall back",
            recurring(timezone="America/New_York", cron="30 1 * * 0", duration="1h"),
            "2026-10-31T00:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:30:00Z",
        ),
    ],
)
def test_occurrences_on_dst_days(case: str, window: AnyWindow, since: str, start: str, end: str) -> None:
    first = occurrences(window, z(since), z(since) + timedelta(days=1))
    in_range = [o for o in first if o.start_at >= z(since)]
    assert (in_range[0].start_at, in_range[0].end_at) == (z(start), z(end)), case
    assert in_range[0].key == start


def test_occurrence_keys_are_stable_across_ranges_and_reschedules() -> None:
    window = recurring()
    wide = occurrences(window, z("2026-03-01T00:00:00Z"), z("2026-06-01T00:00:00Z"))
    narrow = occurrences(window, z("2026-04-10T00:00:00Z"), z("2026-04-11T00:00:00Z"))
    assert set(narrow) <= set(wide)
    assert len({o.idempotency_key for o in wide}) == len(wide)
    assert wide[0].idempotency_key == f"statusbridge-maintenance:weekly:{wide[0].key}"
    moved = one_off().rescheduled(start_at=z("2026-05-03T03:00:00Z"))  # type: ignore[union-attr]
    [before] = occurrences(one_off(), z("2026-05-01T00:00:00Z"), z("2026-05-02T00:00:00Z"))
    [after] = occurrences(moved, z("2026-05-01T00:00:00Z"), z("2026-05-02T00:00:00Z"))
    assert before.idempotency_key == after.idempotency_key
    assert after.start_at == z("2026-05-03T03:00:00Z")


# --- desired --------------------------------------------------------------------------------------


def summary(windows: list[AnyWindow], now: str, horizon: str = "1h") -> list[tuple[str, str, str]]:
    h = timedelta(hours=float(horizon.removesuffix("h")))
    return [(d.window.id, d.occurrence.key, d.status.value) for d in desired(windows, z(now), horizon=h)]


@pytest.mark.parametrize(
    ("case", "windows", "now", "horizon", "expected"),
    [
        (
            "one-off before start",
            [one_off()],
            "2026-05-01T00:00:00Z",
            "1h",
            [("once", "one-off", "maintenance_scheduled")],
        ),
        (
            "one-off at start",
            [one_off()],
            "2026-05-03T02:00:00Z",
            "1h",
            [("once", "one-off", "maintenance_in_progress")],
        ),
        (
            "one-off just ended",
            [one_off()],
            "2026-05-03T04:00:00Z",
            "1h",
            [("once", "one-off", "maintenance_complete")],
        ),
        (
            "one-off ended within horizon",
            [one_off()],
            "2026-05-03T04:59:59Z",
            "1h",
            [("once", "one-off", "maintenance_complete")],
        ),
        ("one-off ended past horizon", [one_off()], "2026-05-03T05:00:00Z", "1h", []),
        ("no horizon, no complete", [one_off()], "2026-05-03T04:00:00Z", "0h", []),
        ("announce not reached", [one_off(announce_before="1d")], "2026-05-02T01:59:59Z", "1h", []),
        (
            "announce reached",
            [one_off(announce_before="1d")],
            "2026-05-02T02:00:00Z",
            "1h",
            [("once", "one-off", "maintenance_scheduled")],
        ),
        (
            "weekly: one in progress, the next announced",
            [recurring()],
            "2026-05-03T01:00:00Z",
            "1h",
            [
                ("weekly", "2026-05-03T00:00:00Z", "maintenance_in_progress"),
                ("weekly", "2026-05-10T00:00:00Z", "maintenance_scheduled"),
            ],
        ),
        (
            "weekly: just completed, next announced at the same instant",
            [recurring()],
            "2026-05-03T02:00:00Z",
            "1h",
            [
                ("weekly", "2026-05-03T00:00:00Z", "maintenance_complete"),
                ("weekly", "2026-05-10T00:00:00Z", "maintenance_scheduled"),
            ],
        ),
        (
            "daily with 7-day lead: seven announced",
            [recurring(window_id="daily", cron="0 3 * * *", timezone="UTC", duration="1h")],
            "2026-05-03T12:00:00Z",
            "0h",
            [("daily", f"2026-05-{d:02d}T03:00:00Z", "maintenance_scheduled") for d in range(4, 11)],
        ),
        (
            "sorted by start across windows",
            [recurring(), one_off(window_id="a", start_at="2026-05-02T00:00:00Z")],
            "2026-05-01T00:00:00Z",
            "1h",
            [
                ("a", "one-off", "maintenance_scheduled"),
                ("weekly", "2026-05-03T00:00:00Z", "maintenance_scheduled"),
            ],
        ),
    ],
)
def test_desired(
    case: str, windows: list[AnyWindow], now: str, horizon: str, expected: list[tuple[str, str, str]]
) -> None:
    assert summary(windows, now, horizon) == expected, case


def test_desired_after_downtime_reports_the_missed_transition_once() -> None:
    # Down from before the start until after the end: the next pass sees "complete", nothing between.
    [entry] = desired([one_off()], z("2026-05-03T06:00:00Z"), horizon=timedelta(days=7))
    assert entry.phase is Phase.COMPLETE
    assert entry.message == one_off().messages.completed


def test_desired_messages_follow_the_phase() -> None:
    window = one_off(messages={"scheduled": "soon", "started": "now", "completed": "done"})
    texts = [
        desired([window], z(t), horizon=timedelta(hours=1))[0].message
        for t in ("2026-05-01T00:00:00Z", "2026-05-03T03:00:00Z", "2026-05-03T04:30:00Z")
    ]
    assert texts == ["soon", "now", "done"]


def test_desired_refuses_a_negative_horizon() -> None:
    with pytest.raises(ValueError, match="horizon"):
        desired([one_off()], z("2026-05-01T00:00:00Z"), horizon=timedelta(seconds=-1))


# --- next_wakeups ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "windows", "now", "limit", "expected"),
    [
        (
            "one-off default",
            [one_off()],
            "2026-05-01T00:00:00Z",
            5,
            ["2026-05-03T02:00:00Z", "2026-05-03T04:00:00Z"],
        ),
        ("at the start instant", [one_off()], "2026-05-03T02:00:00Z", 5, ["2026-05-03T04:00:00Z"]),
        ("after the end", [one_off()], "2026-05-03T04:00:00Z", 5, []),
        (
            "one-off with lead",
            [one_off(announce_before="1h")],
            "2026-05-01T00:00:00Z",
            5,
            ["2026-05-03T01:00:00Z", "2026-05-03T02:00:00Z", "2026-05-03T04:00:00Z"],
        ),
        ("limit", [one_off(announce_before="1h")], "2026-05-01T00:00:00Z", 1, ["2026-05-03T01:00:00Z"]),
        ("no limit", [one_off()], "2026-05-01T00:00:00Z", 0, []),
        (
            # A start coincides with the next occurrence's announce: one instant, and the list still fills.
            "weekly, coinciding instants",
            [recurring()],
            "2026-05-01T00:00:00Z",
            5,
            [
                "2026-05-03T00:00:00Z",
                "2026-05-03T02:00:00Z",
                "2026-05-10T00:00:00Z",
                "2026-05-10T02:00:00Z",
                "2026-05-17T00:00:00Z",
            ],
        ),
        (
            "merged across windows",
            [
                recurring(),
                one_off(window_id="a", start_at="2026-05-03T01:00:00Z", end_at="2026-05-03T02:00:00Z"),
            ],
            "2026-05-01T00:00:00Z",
            4,
            ["2026-05-03T00:00:00Z", "2026-05-03T01:00:00Z", "2026-05-03T02:00:00Z", "2026-05-10T00:00:00Z"],
        ),
        (
            "berlin spring forward",
            [recurring(announce_before="0s")],
            "2026-03-28T00:00:00Z",
            3,
            ["2026-03-29T01:00:00Z", "2026-03-29T03:00:00Z", "2026-04-05T00:00:00Z"],
        ),
    ],
)
def test_next_wakeups(case: str, windows: list[AnyWindow], now: str, limit: int, expected: list[str]) -> None:
    assert next_wakeups(windows, z(now), limit) == [z(t) for t in expected], case


# --- under_maintenance ----------------------------------------------------------------------------

DIRECTORY = PageDirectory(
    pages=(
        PageInfo(
            id="PAGE",
            name="Acme Status",
            components=(
                PageComponent("C-API", "API"),
                PageComponent("C-DB", "Database"),
                PageComponent("C-SITE", "Website", group="Web"),
            ),
        ),
    )
)


@pytest.mark.parametrize(
    ("case", "now", "directory", "expected"),
    [
        ("before", "2026-05-03T01:59:59Z", None, {}),
        ("at start", "2026-05-03T02:00:00Z", None, {"Acme Status": {"API", "Web/Website", "Database"}}),
        ("at end", "2026-05-03T04:00:00Z", None, {"Acme Status": {"Database"}}),
        ("as IDs", "2026-05-03T02:00:00Z", DIRECTORY, {"PAGE": {"C-API", "C-SITE", "C-DB"}}),
        ("after all", "2026-05-03T05:00:00Z", None, {}),
    ],
)
def test_under_maintenance(
    case: str, now: str, directory: PageDirectory | None, expected: dict[str, set[str]]
) -> None:
    windows = [
        one_off(components=["API", "Web/Website"]),
        one_off(window_id="db", components=["Database"], end_at="2026-05-03T04:30:00Z"),
        one_off(
            id="later", components=["API"], start_at="2026-05-04T00:00:00Z", end_at="2026-05-04T01:00:00Z"
        ),
    ]
    assert under_maintenance(windows, z(now), directory=directory) == expected, case


def test_under_maintenance_for_a_recurring_window_on_a_dst_day() -> None:
    window = recurring()
    assert under_maintenance([window], z("2026-03-29T00:59:59Z")) == {}
    assert under_maintenance([window], z("2026-03-29T01:00:00Z")) == {"Acme Status": {"API"}}
    assert under_maintenance([window], z("2026-03-29T02:59:59Z")) == {"Acme Status": {"API"}}
    assert under_maintenance([window], z("2026-03-29T03:00:00Z")) == {}


# --- overlaps -------------------------------------------------------------------------------------


def pairs(
    windows: list[AnyWindow], directory: PageDirectory | None = None
) -> list[tuple[str, str, set[str]]]:
    found = overlaps(windows, z("2026-05-01T00:00:00Z"), z("2026-05-15T00:00:00Z"), directory=directory)
    return [
        (f"{o.first.window_id}/{o.first.key}", f"{o.second.window_id}/{o.second.key}", set(o.components))
        for o in found
    ]


@pytest.mark.parametrize(
    ("case", "windows", "directory", "expected"),
    [
        (
            "disjoint times",
            [
                one_off(),
                one_off(window_id="b", start_at="2026-05-03T04:00:00Z", end_at="2026-05-03T05:00:00Z"),
            ],
            None,
            [],
        ),
        ("different components", [one_off(), one_off(window_id="b", components=["Database"])], None, []),
        (
            "different pages",
            [one_off(), one_off(window_id="b", status_page="Other")],
            None,
            [],
        ),
        (
            "shared component",
            [
                one_off(components=["API", "Database"]),
                one_off(window_id="b", components=["Database", "Web/Website"]),
            ],
            None,
            [("b/one-off", "once/one-off", {"Database"})],
        ),
        (
            "one-off meets a recurring occurrence",
            [
                recurring(),
                one_off(window_id="a", start_at="2026-05-03T01:00:00Z", end_at="2026-05-03T05:00:00Z"),
            ],
            None,
            [("weekly/2026-05-03T00:00:00Z", "a/one-off", {"API"})],
        ),
        (
            "names and IDs of the same component",
            [one_off(), one_off(window_id="b", status_page="PAGE", components=["C-API"])],
            DIRECTORY,
            [("b/one-off", "once/one-off", {"C-API"})],
        ),
        (
            "names and IDs unresolved stay different",
            [one_off(), one_off(window_id="b", status_page="PAGE", components=["C-API"])],
            None,
            [],
        ),
    ],
)
def test_overlaps(
    case: str,
    windows: list[AnyWindow],
    directory: PageDirectory | None,
    expected: list[tuple[str, str, set[str]]],
) -> None:
    assert pairs(windows, directory) == expected, case


def test_a_recurring_window_longer_than_its_period_overlaps_itself() -> None:
    daily = recurring(window_id="daily", cron="0 0 * * *", timezone="UTC", duration="25h")
    # From the occurrence still running at the range start (Apr 30) to May 14: each meets the next.
    days = [datetime(2026, 4, 30, tzinfo=UTC) + timedelta(days=i) for i in range(15)]
    assert pairs([daily]) == [
        (f"daily/{a:%Y-%m-%d}T00:00:00Z", f"daily/{b:%Y-%m-%d}T00:00:00Z", {"API"})
        for a, b in zip(days, days[1:], strict=False)
    ]


def test_overlap_reports_the_shared_interval() -> None:
    [o] = overlaps(
        [one_off(), one_off(window_id="b", start_at="2026-05-03T03:00:00Z", end_at="2026-05-03T06:00:00Z")],
        z("2026-05-01T00:00:00Z"),
        z("2026-05-15T00:00:00Z"),
    )
    assert (o.start_at, o.end_at) == (z("2026-05-03T03:00:00Z"), z("2026-05-03T04:00:00Z"))
    assert str(o) == (
        "maintenance 'once' (one-off) and 'b' (one-off) both cover API on 'Acme Status' "
        "from 2026-05-03T03:00:00Z to 2026-05-03T04:00:00Z"
    )
