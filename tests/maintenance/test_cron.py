"""Crontab lines: cron's weekday numbering, the day-field rule, and the DST decisions, as tables.

DST dates used (2026): Europe/Berlin springs forward on Sun 29 March at 02:00 CET (01:00Z) and falls
back on Sun 25 October at 03:00 CEST (01:00Z); America/New_York springs forward on Sun 8 March at
02:00 EST (07:00Z) and falls back on Sun 1 November at 02:00 EDT (06:00Z).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

import pytest

from bridge.maintenance.cron import CronError, parse_cron, parse_timezone


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def starts(expression: str, timezone: str, since: str, count: int) -> list[str]:
    schedule = parse_cron(expression, timezone)
    return [t.isoformat().replace("+00:00", "Z") for t in islice(schedule.starts(z(since)), count)]


@pytest.mark.parametrize(
    ("case", "expression", "timezone", "since", "expected"),
    [
        # Spring forward: the nonexistent 02:30 is read before the jump (01:30Z = 03:30 CEST), once.
        (
            "berlin daily 02:30 across spring forward",
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T00:00:00Z",
            ["2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"],
        ),
        # Fall back: 02:30 happens twice; the occurrence starts at the first (CEST) instant only.
        (
            "berlin daily 02:30 across fall back",
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-24T00:00:00Z",
            ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        ),
        (
            "berlin weekly sunday 02:00 across spring forward",
            "0 2 * * sun",
            "Europe/Berlin",
            "2026-03-20T00:00:00Z",
            ["2026-03-22T01:00:00Z", "2026-03-29T01:00:00Z", "2026-04-05T00:00:00Z"],
        ),
        (
            "berlin weekly sunday 02:00 across fall back",
            "0 2 * * sun",
            "Europe/Berlin",
            "2026-10-20T00:00:00Z",
            ["2026-10-25T00:00:00Z", "2026-11-01T01:00:00Z", "2026-11-08T01:00:00Z"],
        ),
        (
            "new york daily 02:30 across spring forward",
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T00:00:00Z",
            ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"],
        ),
        (
            "new york daily 01:30 across fall back",
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T00:00:00Z",
            ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        ),
        (
            "new york weekly sunday 02:00 across spring forward",
            "0 2 * * 0",
            "America/New_York",
            "2026-03-02T00:00:00Z",
            ["2026-03-08T07:00:00Z", "2026-03-15T06:00:00Z"],
        ),
        # Hourly: the skipped 02:00 and the real 03:00 CEST are one instant (01:00Z), not two.
        (
            "berlin hourly across spring forward",
            "0 * * * *",
            "Europe/Berlin",
            "2026-03-29T00:00:00Z",
            ["2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"],
        ),
        # Hourly: the repeated 02:00 (01:00Z) does not start a second time, leaving a 2h gap.
        (
            "berlin hourly across fall back",
            "0 * * * *",
            "Europe/Berlin",
            "2026-10-24T23:00:00Z",
            ["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"],
        ),
        (
            "monthly on the 1st at 03:00 UTC",
            "0 3 1 * *",
            "UTC",
            "2026-01-15T00:00:00Z",
            ["2026-02-01T03:00:00Z", "2026-03-01T03:00:00Z", "2026-04-01T03:00:00Z"],
        ),
        (
            "first sunday of the month",
            "0 2 * * sun#1",
            "UTC",
            "2026-01-01T00:00:00Z",
            ["2026-01-04T02:00:00Z", "2026-02-01T02:00:00Z", "2026-03-01T02:00:00Z"],
        ),
        # The last Sunday of March and October are the EU's DST days themselves.
        (
            "last sunday of march and october in berlin",
            "0 2 * 3,10 sunL",
            "Europe/Berlin",
            "2026-01-01T00:00:00Z",
            ["2026-03-29T01:00:00Z", "2026-10-25T00:00:00Z", "2027-03-28T01:00:00Z"],
        ),
        (
            "last day of the month",
            "0 22 last * *",
            "UTC",
            "2026-02-01T00:00:00Z",
            ["2026-02-28T22:00:00Z", "2026-03-31T22:00:00Z", "2026-04-30T22:00:00Z"],
        ),
        (
            "leap day only",
            "0 0 29 2 *",
            "UTC",
            "2026-01-01T00:00:00Z",
            ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
        ),
    ],
)
def test_starts(case: str, expression: str, timezone: str, since: str, expected: list[str]) -> None:
    assert starts(expression, timezone, since, len(expected)) == expected, case


@pytest.mark.parametrize(
    ("day_of_week", "weekdays"),
    [
        # cron numbers from Sunday (0 and 7); APScheduler 3.x would make 0 a Monday.
        ("0", {"Sun"}),
        ("7", {"Sun"}),
        ("sun", {"Sun"}),
        ("SUN", {"Sun"}),
        ("1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("mon-fri", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("5-7", {"Fri", "Sat", "Sun"}),
        ("mon-sun", {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
        ("*/2", {"Sun", "Tue", "Thu", "Sat"}),
        ("1-5/2", {"Mon", "Wed", "Fri"}),
        ("6,0", {"Sat", "Sun"}),
        ("*", {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
    ],
)
def test_weekdays_have_crons_numbering(day_of_week: str, weekdays: set[str]) -> None:
    schedule = parse_cron(f"0 12 * * {day_of_week}", "UTC")
    seen = {t.strftime("%a") for t in islice(schedule.starts(z("2026-06-01T00:00:00Z")), 30)}
    assert seen == weekdays


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("0 2 * *", "has 4 fields; expected 5"),
        ("0 2 * * * *", "has 6 fields"),
        ("*/15 2 * * *", "at most once an hour"),
        ("0,30 2 * * *", "at most once an hour"),
        ("60 2 * * *", "must be one number 0-59"),
        ("0 24 * * *", "higher than the maximum"),
        ("0 2 32 * *", "higher than the maximum"),
        ("0 2 * 13 *", "higher than the maximum"),
        ("0 2 * * 8", "is not 0-7 or sun-sat"),
        ("0 2 * * funday", "is not 0-7 or sun-sat"),
        ("0 2 * * 5-1", "runs backwards"),
        ("0 2 * * 3/2", "a step needs a range"),
        ("0 2 * * */0", "positive number"),
        ("0 2 * * sun#6", "n-th weekday"),
        ("0 2 1 * sun", "restricts both day-of-month and day-of-week"),
        ("0 2 1-7 * sun#1", "restricts both"),
        ("0 2 30 2 *", "never fires"),
        ("0 2 31 4,6,9,11 *", "never fires"),
    ],
)
def test_refused_expressions(expression: str, fragment: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expression, "UTC")
    assert fragment in str(caught.value)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "/usr/share/zoneinfo/UTC"])
def test_bad_time_zones(name: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_timezone(name)


def test_starts_are_strictly_increasing_and_not_before_since() -> None:
    schedule = parse_cron("0 * * * *", "Europe/Berlin")
    since = z("2026-10-24T12:34:56Z")
    seen = list(islice(schedule.starts(since), 48))
    assert seen[0] == z("2026-10-24T13:00:00Z")
    assert all(a < b for a, b in zip(seen, seen[1:], strict=False))
    assert all(t.tzinfo is UTC for t in seen)
