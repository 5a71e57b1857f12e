"""Crontab expressions for recurring maintenance windows, with classic cron meaning and one DST rule.

APScheduler 3.x is the clock, but its ``CronTrigger.from_crontab`` differs from the crontab an operator
writes in two ways that would put a publicly announced maintenance on the wrong day:

- it numbers weekdays from Monday (``0 2 * * 0`` would be a Monday, not a Sunday), a mistake its own
  documentation owns up to and only fixes in 4.x;
- it requires day-of-month *and* day-of-week to match, where cron fires when *either* does.

So this module reads the five fields itself, gives them cron's meaning, refuses what would be ambiguous
(both day fields restricted), and builds a :class:`CronTrigger` from explicit keyword fields.

Daylight saving time, decided once here (and table-tested in ``tests/maintenance``):

- a wall-clock time that does not exist (spring forward) is read as if the clock had not jumped yet:
  02:30 Europe/Berlin on the last Sunday of March is 01:30 UTC, which the clocks show as 03:30 CEST.
  The maintenance still happens that week, shifted by the gap (PEP 495 ``fold=0``);
- a wall-clock time that happens twice (fall back) starts one occurrence, at its first instant.

Both rules are "read the wall time with ``fold=0``", which is what :meth:`CronSchedule.starts` does to
every fire time; two fire times that then name the same instant are one occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
"""Day names in cron's numbering: Sunday is 0 (and 7)."""

_NTH = {"1": "1st", "2": "2nd", "3": "3rd", "4": "4th", "5": "5th", "L": "last"}

_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)
"""Where the "does it ever fire" check starts; any expression that fires at all fires within 28 years."""


class CronError(ValueError):
    """An expression that is not a crontab line this module accepts; the message says why."""


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA time zone (``Europe/Berlin``); raises :class:`ValueError` naming the bad text."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a time zone is required, e.g. Europe/Berlin or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin, America/New_York or UTC"
        ) from exc


def _weekday(text: str, *, upper: bool = False) -> int:
    """A cron weekday (``0``-``7`` or ``sun``-``sat``) as 0..6 (Sunday 0); 7 only as a range's end."""
    lowered = text.lower()
    if lowered in _CRON_DAYS:
        # "mon-sun" ends on Sunday the way "1-7" does.
        return 7 if upper and lowered == "sun" else _CRON_DAYS.index(lowered)
    if text.isdigit() and 0 <= int(text) <= 7:
        value = int(text)
        return value if upper else value % 7
    raise CronError(f"day-of-week {text!r} is not 0-7 or sun-sat")


def _weekdays(text: str) -> str | None:
    """The day-of-week field in APScheduler's vocabulary (names), or ``None`` for ``*``."""
    if text in ("*", "?"):
        return None
    days: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"day-of-week step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first, last = _weekday(first_text), _weekday(last_text, upper=True)
            if first > last:
                raise CronError(f"day-of-week range {base!r} runs backwards (Sunday is 0 or 7)")
        elif step_text:
            raise CronError(f"day-of-week {item!r}: a step needs a range or '*', e.g. 1-5/2")
        else:
            first = last = _weekday(base)
        days.update(d % 7 for d in range(first, last + 1, step))
    # APScheduler's names are unambiguous whatever its numbering; order them from Monday for display.
    return ",".join(_CRON_DAYS[d] for d in sorted(days, key=lambda d: (d - 1) % 7))


def _nth_weekday(text: str) -> str | None:
    """``sun#1`` (first Sunday) or ``sunL`` (last Sunday) as APScheduler's day expression."""
    m = re.fullmatch(r"([A-Za-z]{3}|\d)(?:#([1-5])|(L))", text)
    if m is None:
        if "#" in text or text.upper().endswith("L"):
            raise CronError(
                f"day-of-week {text!r}: write the n-th weekday as e.g. sun#1 (first Sunday) or sunL (last)"
            )
        return None
    day = _weekday(m.group(1))
    return f"{_NTH[m.group(2) or 'L']} {_CRON_DAYS[day]}"


@dataclass(frozen=True)
class CronSchedule:
    """A validated crontab line in a time zone: the start instants of a recurring window."""

    expression: str
    timezone: ZoneInfo
    trigger: Any = field(repr=False, compare=False)
    """The APScheduler 3.x :class:`CronTrigger` (cron meaning already applied)."""

    def starts(self, since: datetime) -> Iterator[datetime]:
        """Start instants (aware UTC, strictly increasing) at or after ``since``, without end.

        Fire times are wall-clock times read with ``fold=0`` (see the module docstring), so a
        repeated hour yields its first instant once and a skipped hour yields the shifted instant.
        """
        last: datetime | None = None
        raw = self.trigger.get_next_fire_time(None, since.astimezone(self.timezone))
        while raw is not None:
            instant = raw.replace(fold=0).astimezone(UTC)
            if instant >= since and (last is None or instant > last):
                last = instant
                yield instant
            raw = self.trigger.get_next_fire_time(raw, raw)


def parse_cron(expression: str, timezone: str | ZoneInfo = "UTC") -> CronSchedule:
    """Parse a five-field crontab line (minute hour day-of-month month day-of-week).

    Accepted: cron's syntax for each field (``*``, ``a-b``, ``*/n``, ``a-b/n``, lists, month and day
    names; day-of-week 0-7 with Sunday as 0 or 7), ``last`` as day-of-month, and ``sun#2`` / ``sunL``
    as day-of-week for the n-th / last weekday of the month. Refused, with a message saying why:
    a minute field that is not one number (a window may start at most once an hour), restricting both
    day-of-month and day-of-week (cron's "either" rule is rarely what a maintenance means), and an
    expression that never fires (``0 0 30 2 *``).
    """
    zone = timezone if isinstance(timezone, ZoneInfo) else parse_timezone(timezone)
    if not isinstance(expression, str):
        raise CronError("a cron expression is a string such as '0 2 * * sun'")
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(
            f"cron expression {expression!r} has {len(fields)} fields; expected 5: "
            "minute hour day-of-month month day-of-week, e.g. '0 2 * * sun'"
        )
    minute, hour, day, month, day_of_week = fields
    if not minute.isdigit() or int(minute) > 59:
        raise CronError(
            f"cron minute {minute!r} must be one number 0-59: a recurring window starts at most once an hour"
        )
    nth = _nth_weekday(day_of_week)
    weekdays = None if nth is not None else _weekdays(day_of_week)
    day_restricted = day not in ("*", "?")
    if (nth is not None or weekdays is not None) and day_restricted:
        raise CronError(
            f"cron expression {expression!r} restricts both day-of-month and day-of-week; cron would "
            "start on either, which is rarely meant: keep one of them '*' (for 'the first Sunday' "
            "write '* * sun#1' as the last three fields)"
        )
    kwargs: dict[str, str] = {"minute": minute, "hour": hour, "month": month}
    if nth is not None:
        kwargs["day"] = nth
    elif day_restricted:
        kwargs["day"] = day
    if weekdays is not None:
        kwargs["day_of_week"] = weekdays
    try:
        trigger = CronTrigger(**kwargs, timezone=zone)
    except ValueError as exc:
        raise CronError(f"cron expression {expression!r}: {exc}") from exc
    if trigger.get_next_fire_time(None, _REFERENCE) is None:
        raise CronError(f"cron expression {expression!r} never fires (no such date)")
    return CronSchedule(expression=expression, timezone=zone, trigger=trigger)
