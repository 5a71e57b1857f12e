"""No test outside the desired-state tests builds a ``DesiredGroup`` by hand.

A past review found lifecycle bugs that green tests missed: planner tests modelled "every alert
resolved" as a ``DesiredGroup`` with no components, but the real producer,
``bridge.engine.desired.build_desired``, returns no entry for such a group, so the planner gets
``None``. Tests downstream of the desired state take it from ``build_desired`` over evaluated
alerts (``tests/engine/realdesired.py``); only the tests of ``build_desired`` itself may build one.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = frozenset({"tests/engine/test_desired.py"})
"""The desired-state tests: they check build_desired's output against groups they build."""
NAME = "DesiredGroup"
WHY = (
    "builds a DesiredGroup by hand; the real producer (bridge.engine.desired.build_desired) returns "
    "no entry (None) for a group with no firing alerts, so a hand-built one can model inputs the "
    "planner never receives. Get DesiredGroups from build_desired over evaluated alerts "
    "(tests/engine/realdesired.py)."
)
_PASSES_THE_CLASS_OK = frozenset({"isinstance", "issubclass"})


def _refers_to_class(node: ast.AST, aliases: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in aliases
    return isinstance(node, ast.Attribute) and node.attr == NAME


def hand_built(source: str, filename: str = "<string>") -> list[int]:
    """Sorted line numbers where ``source`` constructs a DesiredGroup: ``DesiredGroup(...)``,
    ``model.DesiredGroup(...)``, an alias from ``import ... as``, or the class handed to a factory
    (``st.builds(DesiredGroup, ...)``, ``partial(DesiredGroup, ...)``). ``dataclasses.replace`` of
    a group that came from build_desired is fine; so is naming the class in types and isinstance."""
    tree = ast.parse(source, filename)
    aliases = {NAME}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            aliases.update(a.asname for a in node.names if a.name == NAME and a.asname)
        elif isinstance(node, ast.Assign) and _refers_to_class(node.value, aliases):
            aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return sorted(
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and _constructs(node, aliases)
    )


def _constructs(call: ast.Call, aliases: set[str]) -> bool:
    if _refers_to_class(call.func, aliases):
        return True
    if isinstance(call.func, ast.Name) and call.func.id in _PASSES_THE_CLASS_OK:
        return False
    return any(_refers_to_class(arg, aliases) for arg in call.args)


def _test_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "--", "tests/*.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        out = []
    if not out:  # not a git checkout (a source tarball, an image): every Python file under tests/
        out = [p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py")]
    return sorted(out)


def test_no_test_outside_the_desired_state_tests_builds_a_desired_group() -> None:
    files = _test_files()
    assert "tests/engine/test_planner.py" in files
    found = [
        f"{rel}:{line}"
        for rel in files
        if rel not in ALLOWED and (ROOT / rel).exists()
        for line in hand_built((ROOT / rel).read_text(encoding="utf-8"), rel)
    ]
    assert not found, "\n".join(f"{where}: {WHY}" for where in found)


def test_the_checker_catches_hand_built_groups() -> None:
    source = """
from dataclasses import replace
from functools import partial
from hypothesis import strategies as st
from bridge.engine import model
from bridge.engine.model import DesiredGroup
from bridge.engine.model import DesiredGroup as DG

Quiet = DesiredGroup

def quiet() -> DesiredGroup:
    return DesiredGroup(key="g", status_page_id="p", rule="r", name="n", message="m", resolved_message="r")

a = model.DesiredGroup(key="g", status_page_id="p", rule="r", name="n", message="m", resolved_message="r")
b = DG(key="g", status_page_id="p", rule="r", name="n", message="m", resolved_message="r")
c = st.builds(DesiredGroup)
d = partial(model.DesiredGroup, key="g")
e = Quiet(key="g")
ok_replace = replace(a, name="other")
ok_check = isinstance(a, DesiredGroup)
"""
    assert hand_built(source) == [12, 14, 15, 16, 17, 18]


def test_the_allow_list_is_only_the_desired_state_tests() -> None:
    assert ALLOWED == {"tests/engine/test_desired.py"}
    assert (ROOT / "tests/engine/test_desired.py").exists()
