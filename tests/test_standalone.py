"""The repository stands alone: no tracked file points above the repository root, and the data
brought in from outside is what its README says it is.

A clone with nothing beside it must build, test and run; `.ci/run` proves it by running the gates
in such a clone, and this test names the offending file and line before CI gets that far.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
OPENAPI_SHA256 = "5206956aa1f00beb1996b0379b6c4bf9f852d3efa5e29b244c9ed024a46350b7"

# A line carrying this marker holds a path that escapes on purpose: hostile input that a test
# feeds to the code to prove it is refused.
HOSTILE = "outside-root: hostile input"

# Relative paths with at least one `..` segment, as written in code, shell and Markdown links.
_DOTDOT = re.compile(r"(?<![\w.])((?:\.\./)*\.\.(?:/[\w.@+-]+)*/?)(?![\w])")
# Path(__file__)...parents[N]: escapes when N reaches past the root.
_PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
# Documents that live beside the repository, never in it.
_OUTSIDE_NAMES = re.compile(
    r"shared/reference|\.\./shared\b|\bDESIGN\.md\b|\b(?:webhooks|incidentio)-notes\b|\.library\b|/work/"
)
SELF = Path(__file__).resolve()  # this check spells the names it looks for


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = []
    for name in listed:
        path = ROOT / name.decode()
        if (
            not name
            or path.is_symlink()
            or not path.is_file()
            or path == SELF
            or path.is_relative_to(FIXTURES)
        ):
            continue
        data = path.read_bytes()
        if b"\0" not in data:
            files.append(path)
    return files


def escapes(folder: Path, relative: str) -> bool:
    """Whether ``relative``, read from ``folder`` (relative to the root), lands above the root."""
    depth = len(folder.parts)
    for part in relative.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def references_outside(rel: Path, text: str) -> list[str]:
    """The lines of the file at ``rel`` (relative to the root) that refer above the root."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if HOSTILE in line:
            continue
        # `..` resolves from the file's own folder (`$(dirname "$0")/..` in a script, a Markdown
        # link from its page); a Python file's `parents[N]` counts from the file itself.
        hits = [m for m in _DOTDOT.findall(line) if escapes(rel.parent, m)]
        hits += [m for m in _PARENTS.findall(line) if int(m) >= len(rel.parts)]
        hits += _OUTSIDE_NAMES.findall(line)
        if hits:
            found.append(f"{rel}:{number}: {line.strip()}")
    return found


def test_no_tracked_file_refers_above_the_repository_root() -> None:
    offenders = [
        hit
        for path in tracked_text_files()
        for hit in references_outside(path.relative_to(ROOT), path.read_text(errors="replace"))
    ]
    assert offenders == [], "references outside the repository:\n" + "\n".join(offenders)


def test_tracked_links_stay_inside_the_repository() -> None:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    links = [ROOT / name for name in listed.splitlines() if (ROOT / name).is_symlink()]
    for link in links:
        target = link.resolve()
        assert target.is_relative_to(ROOT), f"{link.relative_to(ROOT)} -> {target}"
        assert target.is_file(), f"{link.relative_to(ROOT)} is dangling"


@pytest.mark.parametrize(
    ("where", "line", "bad"),
    [
        ("tests/openapi_contract.py", 'SPEC = Path(__file__).resolve().parents[2] / "shared"', True),
        ("tests/conftest.py", "ROOT = Path(__file__).resolve().parents[1]", False),
        ("README.md", "see ../shared/DESIGN.md", True),
        ("README.md", "the design is in DESIGN.md", True),
        ("bridge/ingest/pull.py", "while firing (webhooks-notes §1.5-1.6)", True),
        (".ci/run", "cd ../../..", True),
        (".ci/run", 'cd "$(dirname "$0")/.."', False),
        ("bridge/maintenance/README.md", "[windows](../../rules/maintenances.yaml)", False),
        ("bridge/maintenance/README.md", "[notes](../../../notes.md)", True),
        ("tests/maintenance/test_cron.py", f'"../../etc/passwd"  # {HOSTILE}', False),
        ("tests/maintenance/test_cron.py", '"../../../etc/passwd"', True),
    ],
)
def test_the_check_itself(where: str, line: str, bad: bool) -> None:
    assert bool(references_outside(Path(where), line)) is bad


def test_the_openapi_fixture_is_the_recorded_extraction() -> None:
    data = (FIXTURES / "openapi" / "incidentio-status-pages.openapi.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == OPENAPI_SHA256
    assert OPENAPI_SHA256 in (FIXTURES / "README.md").read_text()


def test_every_fixture_folder_is_described() -> None:
    readme = (FIXTURES / "README.md").read_text()
    for scenario in sorted(p.name for p in (FIXTURES / "payloads" / "alertmanager").iterdir() if p.is_dir()):
        assert f"`{scenario}`" in readme, scenario
    for example in sorted(p.name for p in (FIXTURES / "payloads" / "grafana").iterdir()):
        assert f"`{example}`" in readme, example
