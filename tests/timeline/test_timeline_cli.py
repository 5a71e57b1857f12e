"""``statusbridge test-timeline`` as users run it in their CI, and the virtual clock under it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.store.sqlite import SQLiteStore
from bridge.timeline import load_timeline, run_timeline
from bridge.timeline.clock import VirtualTimeLoop

PASSING = """\
version: 1
name: an outage opens an incident
rules:
  status_page: Acme Status
  rules:
    - name: api
      matchers: ['alertname = "APIDown"']
      components: [API]
      status: full_outage
      incident: {name: API outage}
events:
  - at: 0s
    alertmanager: {alerts: [{labels: {alertname: APIDown}}]}
expect:
  - at: 10s
    incidents: [{name: API outage, status: investigating, components: {API: full_outage}}]
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bridge.cli", "test-timeline", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_exit_0_when_every_expectation_holds(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(PASSING)
    result = cli("ok.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout


def test_exit_1_with_both_timelines_side_by_side(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(PASSING.replace("status: investigating", "status: monitoring"))
    result = cli(str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL" in out and "0 passed, 1 failed" in out
    assert "incident 1 status: 'investigating', expected 'monitoring'" in out
    assert "expected" in out and "| actual" in out
    assert "create investigating API=full_outage 'API outage'" in out  # the public writes
    assert "api: actions: create investigating" in out  # the planner's trace


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (PASSING.replace("version: 1", "version: 2"), 1, "version"),
        (PASSING.replace("  - at: 10s", "  - at: soon"), 15, "invalid duration 'soon'"),
        (PASSING.replace("alertmanager: {alerts", "alertmanagr: {alerts"), 13, "Extra inputs"),
        (PASSING + "  - {at: 1s, bogus: 1}\n", 17, "bogus"),
        ("version: 1\nname: [unclosed\n", 3, "not valid YAML"),
    ],
)
def test_exit_2_names_the_file_and_the_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    (tmp_path / "t.yaml").write_text(text)
    result = cli("t.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"t.yaml:{line}:" in result.stderr, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_the_same_timeline_gives_the_same_public_timeline(tmp_path: Path) -> None:
    path = Path(__file__).resolve().parents[1] / "timelines" / "lifecycle-open-update-monitor-resolve.yaml"
    first = run_timeline(load_timeline(path), path)
    second = run_timeline(load_timeline(path), path)
    writes = first.report.split("public writes")[1].split("planner")[0]
    assert writes == second.report.split("public writes")[1].split("planner")[0]
    assert "0.25s  create investigating" in writes


def test_no_virtual_time_passes_while_the_store_works(tmp_path: Path) -> None:
    """The clock waits for aiosqlite's threads: 200 reads while a timer is due finish at t=0."""
    import asyncio

    loop = VirtualTimeLoop(datetime(2026, 1, 1, tzinfo=UTC))

    async def main() -> list[float]:
        store = await SQLiteStore.open(str(tmp_path / "s.db"))
        await store.migrate()
        ticks: list[float] = []

        async def ticker() -> None:
            for _ in range(3):
                await asyncio.sleep(60)
                ticks.append(loop.time())

        task = asyncio.create_task(ticker())
        for _ in range(200):
            before = loop.time()
            await store.get_control("x")
            assert loop.time() == before
        await task
        await store.close()
        return ticks

    try:
        assert loop.run_until_complete(main()) == [60.0, 120.0, 180.0]
        assert loop.now() == datetime(2026, 1, 1, 0, 3, tzinfo=UTC)
    finally:
        loop.close()
