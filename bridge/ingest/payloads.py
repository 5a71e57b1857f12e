"""Parsing webhook payloads into normalized alerts: Alertmanager (version 4) and Grafana (version 1).

Pure functions of the decoded JSON and the receive time. They reject only what is truly malformed,
because a rejected delivery is re-sent by Alertmanager at every ``group_interval`` and its resolve
is never sent: unknown extra fields are fine (newer senders add them). Every rejection names the
field, e.g. ``alerts[3].startsAt: not an RFC 3339 time``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bridge.domain import ZERO_TIME, Alert, AlertStatus, Source


class PayloadError(Exception):
    """A payload that will never be accepted: answered 422 (or 400 for syntax) with the field."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.status = status
        self.detail = message


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's ``LabelSet.Fingerprint()``: FNV-1a 64 over sorted name/0xff/value/0xff."""
    data = b"".join(
        part for name in sorted(labels) for part in (name.encode(), b"\xff", labels[name].encode(), b"\xff")
    )
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def text(value: str, field: str) -> str:
    """``value`` if it can be stored anywhere: UTF-8 encodable (no lone surrogates) and without NUL.

    JSON lets ``"\\ud800"`` and ``"\\u0000"`` through; neither is valid UTF-8 text for SQLite or
    PostgreSQL, so they are the sender's mistake (422), not a store failure (5xx).
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # from None: the encoding error holds the webhook's text (UnicodeEncodeError.object).
        raise PayloadError("not valid Unicode text (lone surrogate)", field=field) from None
    if "\x00" in value:
        raise PayloadError("contains a NUL character", field=field)
    return value


def _shown(key: str) -> str:
    """A key as it can be shown in a field path, whatever it contains."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def str_map(value: Any, field: str, *, required: bool) -> dict[str, str]:
    """``value`` as a dict of storable strings (``{}`` when absent and not required); raises PayloadError
    naming ``field`` (and the key) otherwise.
    """
    if value is None:
        if required:
            raise PayloadError("is required", field=field)
        return {}
    if not isinstance(value, dict):
        raise PayloadError("must be an object of strings", field=field)
    for k, v in value.items():
        if not isinstance(v, str):
            raise PayloadError("must be a string", field=f"{field}.{_shown(k)}")
        # ASCII without NUL is storable text: the common case skips the encoding checks.
        if not (k.isascii() and v.isascii()) or "\x00" in k or "\x00" in v:
            where = f"{field}.{_shown(k)}"
            text(k, where)
            text(v, where)
    return dict(value)


# RFC 3339 ``date-time`` (the ``T`` may be a space or lower case, as RFC 3339 §5.6 allows). Go's
# RFC3339Nano drops trailing zeros, so the fraction has 0 to 9 digits; Python keeps microseconds.
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_time(value: Any, field: str, *, required: bool) -> datetime | None:
    """An RFC 3339 time in UTC; ``None`` when absent or Go's zero time (Alertmanager's "no end")."""
    if value is None or value == "":
        if required:
            raise PayloadError("is required", field=field)
        return None
    if not isinstance(value, str):
        raise PayloadError("not an RFC 3339 time", field=field)
    parsed = _instant(value)
    if isinstance(parsed, str):
        raise PayloadError(parsed, field=field)
    return None if parsed <= ZERO_TIME else parsed


@functools.lru_cache(maxsize=1024)
def _instant(value: str) -> datetime | str:
    """The UTC instant ``value`` names, or why it names none. Memoized: the alerts of a webhook
    mostly share their times, and a storm repeats them."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return "not an RFC 3339 time"
    date, clock, fraction, offset = match.groups()
    micros = (fraction or "")[:6].ljust(6, "0")
    try:
        parsed = datetime.fromisoformat(f"{date}T{clock}.{micros}{offset.upper()}")
        # A valid local time near year 1 or 9999 may have no UTC equivalent in a datetime.
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return "not a valid time (out of range)"


def _alert(raw: Any, where: str, source: Source, received_at: datetime) -> Alert:
    if not isinstance(raw, dict):
        raise PayloadError("must be an object", field=where)
    status = raw.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError("must be 'firing' or 'resolved'", field=f"{where}.status")
    labels = str_map(raw.get("labels"), f"{where}.labels", required=True)
    annotations = str_map(raw.get("annotations"), f"{where}.annotations", required=False)
    # Grafana's test notifications carry the zero time: keep it, so the instance stays one instance.
    starts_at = parse_time(raw.get("startsAt"), f"{where}.startsAt", required=True) or ZERO_TIME
    ends_at = parse_time(raw.get("endsAt"), f"{where}.endsAt", required=False)
    fp = raw.get("fingerprint")
    if fp is not None and (not isinstance(fp, str) or len(fp) > 128):
        raise PayloadError("must be a string of at most 128 characters", field=f"{where}.fingerprint")
    if fp:
        text(fp, f"{where}.fingerprint")
    elif not labels:
        raise PayloadError(
            "is empty and there is no fingerprint: the alert cannot be identified", field=f"{where}.labels"
        )
    url = raw.get("generatorURL")
    if url is None:
        url = ""
    if not isinstance(url, str):
        raise PayloadError("must be a string", field=f"{where}.generatorURL")
    text(url, f"{where}.generatorURL")
    firing = status == "firing"
    return Alert(
        source=source,
        fingerprint=fp or fingerprint(labels),
        labels=labels,
        annotations=annotations,
        status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
        starts_at=starts_at,
        # A resolve without an end time (none, or the zero time) ended no later than we heard of it.
        ends_at=None if firing else (ends_at or received_at),
        generator_url=url,
        received_at=received_at,
    )


def _alerts(body: Any, source: Source, received_at: datetime) -> list[Alert]:
    raw = body.get("alerts")
    if not isinstance(raw, list):
        raise PayloadError("must be an array", field="alerts")
    return [_alert(a, f"alerts[{i}]", source, received_at) for i, a in enumerate(raw)]


def parse_alertmanager(body: Any, received_at: datetime) -> list[Alert]:
    """The alerts of an Alertmanager webhook body (version 4), received at ``received_at``; raises
    PayloadError naming the field for anything else.
    """
    if not isinstance(body, dict):
        raise PayloadError("the payload must be a JSON object")
    version = body.get("version")
    if version != "4":
        raise PayloadError(
            f'unsupported Alertmanager webhook version {version!r} (expected "4")', field="version"
        )
    return _alerts(body, Source.ALERTMANAGER, received_at)


def parse_grafana(body: Any, received_at: datetime) -> list[Alert]:
    """The alerts of a Grafana unified alerting webhook body (version 1 or none); raises PayloadError for
    legacy alerting or anything else malformed.
    """
    if not isinstance(body, dict):
        raise PayloadError("the payload must be a JSON object")
    if "alerts" not in body and ("evalMatches" in body or "ruleName" in body):
        raise PayloadError(
            "legacy Grafana alerting (before 8) is not supported: use a unified alerting webhook contact point",
            field="version",
        )
    version = body.get("version")
    if version is not None and version != "1":
        raise PayloadError(f'unsupported Grafana webhook version {version!r} (expected "1")', field="version")
    return _alerts(body, Source.GRAFANA, received_at)


def parse_any(body: Any, received_at: datetime) -> list[Alert]:
    """Either kind, told apart by ``version`` (for offline tools such as ``test-rules``)."""
    if isinstance(body, dict) and body.get("version") == "4":
        return parse_alertmanager(body, received_at)
    return parse_grafana(body, received_at)
