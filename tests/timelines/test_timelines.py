"""Every timeline in this folder, run through the real pipeline on virtual time.

A timeline that shows a known bug lands before its fix, marked here ``xfail(strict=True)``; the
fix removes the mark, so a fix that does not fix, or a bug that comes back, fails the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.timeline import load_timeline, run_timeline

HERE = Path(__file__).resolve().parent
FILES = sorted(HERE.glob("*.yaml"))

KNOWN_BUGS: dict[str, str] = {}
"""File name -> the bug it shows, for timelines whose fix has not landed yet."""


def _param(path: Path) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[path.name])] if path.name in KNOWN_BUGS else []
    return pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in FILES])
def test_timeline(path: Path) -> None:
    result = run_timeline(load_timeline(path), path)
    assert result.passed, "\n".join(result.failures) + "\n\n" + result.report


def test_known_bugs_name_existing_timelines() -> None:
    assert set(KNOWN_BUGS) <= {p.name for p in FILES}
