"""The pure part of the Alertmanager pull: which alerts to correct in the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bridge.domain import Alert, AlertStatus, Source
from bridge.ingest.pull import PulledAlert, parse_api_alerts, reconcile_with_pull

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)


def alert(fp: str, starts: datetime = T0) -> Alert:
    return Alert(Source.ALERTMANAGER, fp, {"alertname": fp}, {}, AlertStatus.FIRING, starts, None, "", T0)


def test_missing_from_alertmanager_is_resolved() -> None:
    (change,) = reconcile_with_pull([alert("a")], [], NOW, silenced_counts_as_resolved=True)
    assert change.status is AlertStatus.RESOLVED
    assert change.ends_at == NOW


def test_still_active_refreshes_ttl_even_with_millisecond_start() -> None:
    stored = alert("a", T0 + timedelta(microseconds=746270))
    pulled = PulledAlert(
        replace(alert("a", T0 + timedelta(milliseconds=746)), received_at=NOW), silenced=False
    )
    (change,) = reconcile_with_pull([stored], [pulled], NOW, silenced_counts_as_resolved=True)
    assert change.starts_at == stored.starts_at
    assert change.received_at == NOW
    assert change.firing


def test_lost_firing_is_added_and_silenced_counts_as_configured() -> None:
    pulled = [
        PulledAlert(alert("new"), silenced=False),
        PulledAlert(alert("quiet"), silenced=True, suppressed_by="silence-1"),
    ]
    changes = reconcile_with_pull([alert("quiet")], pulled, NOW, silenced_counts_as_resolved=True)
    # A silenced instance is suppressed, not resolved: it fires again when the silence ends.
    assert {(c.fingerprint, c.status, c.suppressed_by) for c in changes} == {
        ("new", AlertStatus.FIRING, ""),
        ("quiet", AlertStatus.FIRING, "silence-1"),
    }
    changes = reconcile_with_pull([alert("quiet")], pulled, NOW, silenced_counts_as_resolved=False)
    assert {(c.fingerprint, c.status, c.suppressed_by) for c in changes} == {
        ("new", AlertStatus.FIRING, ""),
        ("quiet", AlertStatus.FIRING, ""),
    }


def test_a_suppressed_instance_fires_again_and_a_gone_one_ends_as_gone() -> None:
    quiet = replace(alert("quiet"), suppressed_by="silence-1")
    changes = reconcile_with_pull(
        [quiet, alert("old")],
        [PulledAlert(alert("quiet"), silenced=False)],
        NOW,
        silenced_counts_as_resolved=True,
    )
    by_fp = {c.fingerprint: c for c in changes}
    assert by_fp["quiet"].status is AlertStatus.FIRING and by_fp["quiet"].suppressed_by == ""
    assert by_fp["old"].status is AlertStatus.RESOLVED and by_fp["old"].ended_by == "gone"


def test_parse_api_alerts_skips_garbage() -> None:
    body = [
        {
            "labels": {"alertname": "A"},
            "startsAt": "2026-11-23T12:00:00.123Z",
            "fingerprint": "f",
            "status": {"state": "active"},
        },
        {"labels": {"alertname": "B"}, "startsAt": "2026-11-23T12:00:00Z", "status": {"state": "suppressed"}},
        {"labels": "nope"},
        "junk",
    ]
    got = parse_api_alerts(body, NOW)
    assert [(p.alert.fingerprint, p.silenced) for p in got][0] == ("f", False)
    assert got[1].silenced is True
    assert len(got) == 2
