"""Benchmarks are not timed tests: CI runs them in their short mode only to prove they work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("ingest.py", ["ratio statusbridge (SQLite) / bare aiohttp", "rules match all", "rules match none"]),
        ("storm.py", ["429s received           0", "duplicate incidents     0", "wrong final state: 0"]),
        ("latency.py", ["statusbridge (SQLite)", "convergence, group published just before"]),
        (
            "scale.py",
            [
                "scale, rules match all (20 groups)",
                "scale, rules match 1 % of the alerts",
                "ack p99 / bare aiohttp p99",
                "memory per held alert, peak - idle (KB)",
                "not on the page within 60 s: 0; failed webhooks 0",
            ],
        ),
    ],
)
def test_benchmark_runs_short(script: str, expected: list[str]) -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "bench" / script), "--short"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT / "bench",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for text in expected:
        assert text in result.stdout
