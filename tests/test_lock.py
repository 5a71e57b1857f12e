"""requirements/*.lock against pyproject.toml, offline.

`make lint` (scripts/lock --check) re-resolves with uv and compares; this is the part that needs no
index: every requirement pyproject.toml states is pinned, hashed and satisfied, and the runtime lock
is the dev lock's subset, version for version (the image runs what the tests ran).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# The lock's target: CPython 3.11 on linux x86_64.
ENV = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}


def _pins(name: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    text = (ROOT / "requirements" / name).read_text()
    pins: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=\S)", text):
        if block.startswith("#") or not block.strip():
            continue
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        assert match, f"{name}: not an exact pin: {block.splitlines()[0]}"
        pins[canonicalize_name(match[1])] = (match[2], block.count("--hash=sha256:"))
    return pins


def _wanted(extras: list[str]) -> list[Requirement]:
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return [r for r in found if r.marker is None or r.marker.evaluate({**ENV, "extra": ""})]


DEV = _pins("dev.lock")
RUNTIME = _pins("runtime.lock")


@pytest.mark.parametrize(
    ("lock", "extras"), [(DEV, ["test", "lint"]), (RUNTIME, [])], ids=["dev.lock", "runtime.lock"]
)
def test_every_requirement_is_pinned_and_satisfied(
    lock: dict[str, tuple[str, int]], extras: list[str]
) -> None:
    for req in _wanted(extras):
        name = canonicalize_name(req.name)
        assert name in lock, f"{req} is not in the lock: run `make lock`"
        assert req.specifier.contains(lock[name][0], prereleases=True), (
            f"{req} is pinned at {lock[name][0]}: run `make lock`"
        )


def test_every_pin_has_hashes() -> None:
    for name, (version, hashes) in {**DEV, **RUNTIME}.items():
        assert hashes, f"{name}=={version} has no --hash (pip --require-hashes refuses it)"


def test_runtime_lock_is_the_dev_lock_subset() -> None:
    for name, (version, _) in RUNTIME.items():
        dev = DEV.get(name)
        assert dev is not None, f"{name} is in runtime.lock only"
        assert dev[0] == version, f"{name}: runtime.lock {version}, dev.lock {dev[0]}"
    # and it holds nothing the tests or the linters alone need
    assert not {"pytest", "mypy", "ruff", "uv"} & set(RUNTIME)
