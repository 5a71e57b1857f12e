"""Pulling active alerts from Alertmanager's API v2, to heal what webhooks cannot.

Alertmanager never sends the resolve of a notification that was not delivered, nor of an alert that
was silenced or inhibited while firing (bridge/ingest/README.md §1.7). With ``STATUSBRIDGE_ALERTMANAGER_URL``
set, the bridge asks Alertmanager on every reconcile interval which alerts are active and makes the
store agree: an alert the store thinks is firing but Alertmanager no longer has is resolved (as
``gone``); one Alertmanager has that the store lacks (a lost firing notification) is added;
suppressed ones (silenced or inhibited) stop counting until Alertmanager reports them active again,
unless ``STATUSBRIDGE_SILENCED_COUNTS_AS_RESOLVED=false``. Matching is by fingerprint: the
API reports ``startsAt`` in milliseconds where webhooks carry nanoseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bridge import pacing
from bridge.domain import ENDED_GONE, Alert, AlertStatus, Source
from bridge.ingest.payloads import PayloadError, fingerprint, parse_time, str_map
from bridge.observability import get_logger
from bridge.store.base import Store

log = get_logger(__name__)


class PullError(Exception):
    """Alertmanager's alert list could not be fetched or read; the message names the URL and why."""


@dataclass(frozen=True)
class PulledAlert:
    """An alert as Alertmanager's API reports it now, with whether (and by what) it is suppressed."""

    alert: Alert
    silenced: bool
    """Suppressed: silenced or inhibited (Alertmanager's ``state: suppressed``)."""
    suppressed_by: str = ""
    """The silences and inhibiting alerts, comma separated."""


def parse_api_alerts(body: Any, now: datetime) -> list[PulledAlert]:
    """The alerts of a ``GET /api/v2/alerts`` answer; malformed entries are logged and skipped,
    unprocessed ones left out. Raises PullError when the answer is not a list.
    """
    if not isinstance(body, list):
        raise PullError("Alertmanager's /api/v2/alerts did not answer a list")
    out = []
    for i, raw in enumerate(body):
        if not isinstance(raw, dict):
            continue
        try:
            labels = str_map(raw.get("labels"), f"[{i}].labels", required=True)
            starts = parse_time(raw.get("startsAt"), f"[{i}].startsAt", required=True)
        except PayloadError as exc:
            log.warning("skipping an alert Alertmanager reported", error=str(exc))
            continue
        state = (raw.get("status") or {}).get("state", "active")
        if state == "unprocessed":
            continue
        annotations = raw.get("annotations") if isinstance(raw.get("annotations"), dict) else {}
        alert = Alert(
            source=Source.ALERTMANAGER,
            fingerprint=str(raw.get("fingerprint") or fingerprint(labels)),
            labels=labels,
            annotations={k: str(v) for k, v in (annotations or {}).items()},
            status=AlertStatus.FIRING,
            starts_at=starts or now,
            ends_at=None,
            generator_url=str(raw.get("generatorURL") or ""),
            received_at=now,
        )
        status = raw.get("status") or {}
        by = [str(x) for key in ("silencedBy", "inhibitedBy") for x in (status.get(key) or [])]
        suppressed = state == "suppressed"
        out.append(
            PulledAlert(
                alert, silenced=suppressed, suppressed_by=",".join(by) or ("suppressed" if suppressed else "")
            )
        )
    return out


async def fetch_active(
    session: aiohttp.ClientSession, base_url: str, now: datetime, *, within: float = pacing.PULL_TIMEOUT
) -> list[PulledAlert]:
    """The active alerts Alertmanager at ``base_url`` reports, within ``within`` seconds; raises PullError
    for a connection error, a timeout, a non-200 answer or a body that is not JSON.
    """
    url = base_url.rstrip("/") + "/api/v2/alerts"
    try:
        async with session.get(
            url, params={"active": "true"}, timeout=aiohttp.ClientTimeout(total=within)
        ) as resp:
            if resp.status != 200:
                raise PullError(f"GET {url}: {resp.status}")
            return parse_api_alerts(await resp.json(content_type=None), now)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise PullError(f"GET {url}: {type(exc).__name__}: {exc}") from exc


def reconcile_with_pull(
    stored: Sequence[Alert],
    pulled: Sequence[PulledAlert],
    now: datetime,
    *,
    silenced_counts_as_resolved: bool,
) -> list[Alert]:
    """The alerts to upsert so that the store agrees with Alertmanager (pure).

    ``stored`` holds the firing instances, suppressed ones included. An instance Alertmanager no
    longer lists is resolved as ``gone``; a suppressed one is marked so (it stops counting, and
    is not resolved); one listed active and unsuppressed fires (again). An instance a webhook
    resolved is not in ``stored`` and never fires again from here: resolved is terminal, and the
    API's millisecond ``startsAt`` makes any re-add an older instance than the resolved one.
    """
    listed = {p.alert.fingerprint: p for p in pulled}
    mine = {a.fingerprint: a for a in stored if a.source is Source.ALERTMANAGER and a.firing}
    changes: list[Alert] = []
    for fp, alert in mine.items():
        if fp not in listed:
            changes.append(
                replace(alert, status=AlertStatus.RESOLVED, ends_at=now, received_at=now, ended_by=ENDED_GONE)
            )
    for fp, p in listed.items():
        suppressed = p.suppressed_by if p.silenced and silenced_counts_as_resolved else ""
        have = mine.get(fp)
        if have is not None and abs(have.starts_at - p.alert.starts_at) < timedelta(seconds=1):
            # The same instance: refresh its TTL, and follow its suppression both ways.
            changes.append(replace(have, received_at=now, suppressed_by=suppressed))
        elif have is None or p.alert.starts_at > have.starts_at:
            changes.append(replace(p.alert, suppressed_by=suppressed))
    return changes


async def pull_once(
    session: aiohttp.ClientSession,
    base_url: str,
    store: Store,
    now: datetime,
    *,
    ttl: timedelta,
    silenced_counts_as_resolved: bool,
) -> int:
    """One pull; returns how many alerts changed status in the store."""
    pulled = await fetch_active(session, base_url, now)
    stored = await store.active_alerts(now=now, ttl=ttl)
    changes = reconcile_with_pull(
        stored, pulled, now, silenced_counts_as_resolved=silenced_counts_as_resolved
    )
    if not changes:
        return 0
    result = await store.upsert_alerts(changes)
    if result.changed:
        log.info("alertmanager pull corrected the store", changed=result.changed)
    return result.changed
