"""Counts for the resilience drills: reduced by default (CI's time budget), full with ``--full``.

    pytest -m resilience --full      # 20 kills, a 60 s outage, 10,000 fuzz cases

The full runs' figures are recorded in ``bench/RESULTS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Scale:
    full: bool
    kills: int
    outage_seconds: float
    fuzz_cases: int


@pytest.fixture
def scale(request: pytest.FixtureRequest) -> Scale:
    if request.config.getoption("--full"):
        return Scale(full=True, kills=20, outage_seconds=60.0, fuzz_cases=10_000)
    return Scale(full=False, kills=3, outage_seconds=3.0, fuzz_cases=1_000)
