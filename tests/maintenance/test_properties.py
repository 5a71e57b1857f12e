"""Properties of the window math over random windows and random instants (including DST days).

- phase is monotone in ``now`` and changes exactly at the occurrence's boundaries;
- ``next_wakeups`` is exactly the set of future boundaries up to its last entry (none missing, none
  invented), so a reconciler woken at each one never misses a transition;
- ``desired`` and ``under_maintenance`` agree with a brute-force reading of ``phase``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.maintenance import (
    AnyWindow,
    Phase,
    desired,
    next_wakeups,
    occurrences,
    parse_window,
    phase,
    under_maintenance,
)

BASE = datetime(2026, 6, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
RANK = {Phase.ABSENT: 0, Phase.SCHEDULED: 1, Phase.IN_PROGRESS: 2, Phase.COMPLETE: 3}
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
WIDE = timedelta(days=40)

fast = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

instants = st.integers(min_value=-400 * 86400, max_value=400 * 86400).map(
    lambda s: BASE + timedelta(seconds=s)
)
leads = st.one_of(st.none(), st.integers(min_value=0, max_value=10 * 86400).map(lambda s: f"{s}s"))


@st.composite
def crons(draw: st.DrawFn) -> str:
    minute = draw(st.integers(0, 59))
    hour = draw(st.sampled_from(["*", "*/3", "1-4", "0", "1", "2", "3", "23", "12"]))
    days = draw(
        st.sampled_from(
            [
                ("*", "*"),
                ("*", "sun"),
                ("*", "0"),
                ("*", "1-5"),
                ("*", "sat,sun"),
                ("1", "*"),
                ("15", "*"),
                ("last", "*"),
                ("*", "sun#1"),
                ("*", "sunL"),
            ]
        )
    )
    month = draw(st.sampled_from(["*", "*", "3,10", "11"]))
    return f"{minute} {hour} {days[0]} {month} {days[1]}"


@st.composite
def windows(draw: st.DrawFn, index: int = 0) -> AnyWindow:
    common = {
        "id": f"w{index}",
        "name": f"window {index}",
        "status_page": draw(st.sampled_from(["Acme Status", "Other"])),
        "components": draw(
            st.lists(st.sampled_from(["API", "Database", "Web/Website"]), min_size=1, max_size=3, unique=True)
        ),
    }
    lead = draw(leads)
    if lead is not None:
        common["announce_before"] = lead
    if draw(st.booleans()):
        start = draw(instants)
        length = timedelta(seconds=draw(st.integers(min_value=1, max_value=10 * 86400)))
        return parse_window(common | {"start_at": start.isoformat(), "end_at": (start + length).isoformat()})
    return parse_window(
        common
        | {
            "cron": draw(crons()),
            "timezone": draw(st.sampled_from(ZONES)),
            "duration": f"{draw(st.integers(min_value=60, max_value=3 * 86400))}s",
        }
    )


window_lists = st.integers(1, 3).flatmap(lambda n: st.tuples(*[windows(i) for i in range(n)]).map(list))


@st.composite
def nows(draw: st.DrawFn, among: list[AnyWindow]) -> datetime:
    """A random instant, or one right at (or a tick before) a boundary of an occurrence near it."""
    now = draw(instants)
    if draw(st.booleans()):
        bounds = sorted(
            {b for w in among for o in occurrences(w, now - WIDE, now + WIDE) for b in o.boundaries}
        )
        if bounds:
            return draw(st.sampled_from(bounds)) - draw(st.sampled_from([timedelta(0), US]))
    return now


@fast
@given(st.data())
def test_phase_is_monotone_and_changes_only_at_boundaries(data: st.DataObject) -> None:
    window = data.draw(windows())
    first = data.draw(nows([window]))
    second = first + timedelta(seconds=data.draw(st.integers(0, 30 * 86400)))
    for occ in occurrences(window, first - WIDE, second + WIDE):
        assert RANK[phase(occ, first)] <= RANK[phase(occ, second)]
        for boundary in occ.boundaries:
            assert phase(occ, boundary - US) is not phase(occ, boundary)
        # Between boundaries nothing changes.
        marks = [first, second, *occ.boundaries]
        for a in marks:
            after = [b for b in occ.boundaries if b > a]
            if after:
                assert phase(occ, a) is phase(occ, min(after) - US)


@fast
@given(st.data())
def test_next_wakeups_are_exactly_the_future_boundaries(data: st.DataObject) -> None:
    among = data.draw(window_lists)
    now = data.draw(nows(among))
    limit = data.draw(st.integers(1, 12))
    wakeups = next_wakeups(among, now, limit)

    assert len(wakeups) <= limit
    assert all(now < w for w in wakeups)
    assert all(a < b for a, b in zip(wakeups, wakeups[1:], strict=False))

    def boundaries(until: datetime) -> set[datetime]:
        return {
            b
            for window in among
            for occ in occurrences(window, now, until + US)
            for b in occ.boundaries
            if now < b <= until
        }

    if len(wakeups) == limit:
        assert set(wakeups) == boundaries(wakeups[-1])
    else:  # fewer than asked: there is nothing else ahead at all
        assert set(wakeups) == boundaries(now + timedelta(days=1200))


@fast
@given(st.data())
def test_desired_and_under_maintenance_agree_with_phase(data: st.DataObject) -> None:
    among = data.draw(window_lists)
    now = data.draw(nows(among))
    horizon = timedelta(seconds=data.draw(st.integers(0, 5 * 86400)))
    wanted = desired(among, now, horizon=horizon)

    expected = set()
    running: dict[str, set[str]] = {}
    for window in among:
        for occ in occurrences(window, now - WIDE, now + WIDE):
            p = phase(occ, now)
            if p in (Phase.SCHEDULED, Phase.IN_PROGRESS) or (
                p is Phase.COMPLETE and occ.end_at > now - horizon
            ):
                expected.add((window.id, occ.key, p))
            if p is Phase.IN_PROGRESS:
                running.setdefault(window.status_page, set()).update(window.components)

    assert {(d.window.id, d.occurrence.key, d.phase) for d in wanted} == expected
    assert len(wanted) == len(expected)
    assert [d.occurrence.start_at for d in wanted] == sorted(d.occurrence.start_at for d in wanted)
    assert under_maintenance(among, now) == running


@fast
@given(windows(), instants)
def test_occurrences_are_ordered_distinct_and_whole_minutes(window: AnyWindow, now: datetime) -> None:
    found = occurrences(window, now, now + timedelta(days=60))
    assert [o.start_at for o in found] == sorted({o.start_at for o in found})
    assert len({o.key for o in found}) == len(found)
    for occ in found:
        assert occ.start_at < occ.end_at
        assert occ.start_at.tzinfo is UTC
        if occ.key != "one-off":
            assert occ.start_at.second == 0
            assert occ.end_at - occ.start_at == window.duration  # type: ignore[union-attr]
