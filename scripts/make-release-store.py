#!/usr/bin/env python3
"""Write tests/fixtures/stores/release-ffef016.db with that release's own code.

    git worktree add /tmp/old ffef016
    cd /tmp/old && PYTHONPATH=/tmp/old python <repo>/scripts/make-release-store.py OUT.db

Run it with the old release first on the path: the point is the file that release writes.
"""

import asyncio
import sys
from datetime import UTC, datetime

from bridge.domain import Alert, AlertStatus, ComponentStatus, IncidentStatus, PublishedGroup, Source
from bridge.store.sqlite import SQLiteStore

T = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def alert(name, status):
    return Alert(
        Source.ALERTMANAGER,
        f"fp-{name}",
        {"alertname": name, "env": "prod", "severity": "critical"},
        {},
        AlertStatus(status),
        T,
        None if status == "firing" else T,
        "",
        T,
    )


async def main(path):
    store = await SQLiteStore.open(path)
    await store.migrate()
    await store.upsert_alerts([alert("APIDown", "firing"), alert("FrontendErrors", "firing")])
    await store.upsert_alerts([alert("FrontendErrors", "resolved")])
    await store.save_group(
        PublishedGroup(
            key='api-availability{service=""}',
            episode=1,
            status_page_id="01HSANDBOXPAGE000000000000",
            incident_id="01INCIDENTFROMOLDRELEASE00",
            incident_status=IncidentStatus.INVESTIGATING,
            components={"01HCOMPAPI0000000000000000": ComponentStatus.FULL_OUTAGE},
            name="Api is degraded",
            update_count=1,
            opened_at=T,
            last_published_at=T,
        )
    )
    await store.close()


asyncio.run(main(sys.argv[1]))
