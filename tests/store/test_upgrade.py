"""A store written by the previous release (ffef016) opens with this one: the migrations apply, its
open incident continues with no second create, and what it recorded reads with today's meaning.

The fixture was written by that release's own code (scripts/make-release-store.py, run with the
release checked out), so this is the file an operator upgrading has on disk."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.domain import IncidentStatus
from bridge.engine.desired import build_desired
from bridge.engine.model import CreateIncident
from bridge.engine.planner import plan
from bridge.rules import load_rules
from bridge.store import store_identity
from bridge.store.sqlite import SQLiteStore, migrations
from tests.conftest import FIXTURES
from tests.rules.directory import directory_from_seed

ROOT = Path(__file__).resolve().parents[2]


def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY version")]


NOW = datetime(2026, 11, 30, 12, 1, tzinfo=UTC)


async def test_the_previous_release_store_continues(tmp_path: Path) -> None:
    path = tmp_path / "statusbridge.db"
    shutil.copy(FIXTURES / "stores" / "release-ffef016.db", path)
    assert _versions(path) == [1, 2, 3, 4]
    store = await SQLiteStore.open(str(path))  # migrates on open
    try:
        assert await store.schema_version() == max(v for v, _ in migrations())
        # It held groups: its creates keep the keys they had (no scope), so a replay still matches.
        assert await store_identity(store) == ""
        assert await store.migrate() == []
        _, alerts = await store.scan_active(now=NOW, ttl=timedelta(hours=8))
        assert [a.labels["alertname"] for a in alerts] == ["APIDown"]
        # The previous release's resolve carries no ending: it reads as a resolve it received.
        endings = await store.alert_endings(["alertmanager:fp-APIDown", "alertmanager:fp-FrontendErrors"])
        assert endings == {"alertmanager:fp-APIDown": "firing", "alertmanager:fp-FrontendErrors": "resolved"}
        published = await store.load_groups()
        (group,) = published.values()
        assert group.open and group.settings is None and group.alerts == ()
        rules = load_rules(ROOT / "rules", directory_from_seed())
        by_id = {(a.source, a.fingerprint): a for a in alerts}
        desired = build_desired(rules.evaluate(alerts).impacts, by_id, published)
        assert set(desired) == {group.key}, "the old record's group key is still the rule's"
        result = plan(desired[group.key], group, NOW)
        assert not any(isinstance(a, CreateIncident) for a in result.actions), result
        assert group.incident_status is IncidentStatus.INVESTIGATING
    finally:
        await store.close()
