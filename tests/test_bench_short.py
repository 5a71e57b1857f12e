"""Benchmarks are not timed tests: CI runs them in their short mode only to prove they work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ingest_benchmark_runs_short() -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "bench" / "ingest.py"), "--short"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT / "bench",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ratio statusbridge (SQLite) / bare aiohttp" in result.stdout
    assert "peak RSS" in result.stdout


def test_storm_benchmark_runs_short() -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "bench" / "storm.py"), "--short"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT / "bench",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "429s received           0" in result.stdout
    assert "duplicate incidents     0" in result.stdout
