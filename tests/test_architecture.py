"""The architecture as the code has it: the documents' paths, and one webhook's path, measured.

ARCHITECTURE.md and the README's layout table name files, modules and functions: each must exist,
every module of the package must have a row in both tables, and the two tables have the same rows.

The path of one Alertmanager webhook that opens an incident is recorded with ``sys.setprofile``
through the real app and the sandbox, from the POST until the sandbox holds the incident: the
``bridge`` modules it enters, and the calls from a lower layer into a higher one (callbacks handed
down by the wiring). Both counts may fall, never grow unnoticed; ARCHITECTURE.md states them.

Nothing here lists modules: the layers come from pyproject.toml's import-linter contract, the
modules from the package and the frames entered, so a module that moves changes nothing here.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import json
import os
import re
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import pytest

from bridge.sandbox.app import SANDBOX_KEY
from bridge.web.resources import RECONCILER
from tests.conftest import SandboxServer, ServerFactory

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bridge"
OUTSIDE = ("bridge.sandbox",)
"""The fake incident.io server runs in the same process; it is not the bridge."""
DELIVERY = ROOT / "tests" / "fixtures" / "payloads" / "alertmanager" / "lifecycle" / "001.json"
"""Alertmanager 0.25's first delivery of the lifecycle scenario: one DiskFull alert firing, basic auth."""
RULES = """
status_page: "Acme Status"
defaults: {open_after: 0s}
rules:
  - name: disk
    matchers: ['alertname = "DiskFull"']
    components: ["Database"]
    status: degraded_performance
    incident:
      name: "Database degradation"
"""

MAX_MODULES = 25
"""Distinct bridge modules one webhook enters on its way to the create call (917999d: 26)."""
MAX_UPWARD = 1
"""Distinct (caller, callee) function pairs where a lower layer calls a higher one (917999d: 7).

Both are ceilings, stated in ARCHITECTURE.md ("One alert, request to API call"): lower them there
and here when the path gets shorter; a change that raises one says why in the same place."""


# --- layers, as pyproject.toml's import-linter contract states them -------------------------------


def layers() -> list[list[str]]:
    """The ``layers`` contract's layers, highest first, each as its module names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = (c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [
        [name.strip() for name in entry.replace("|", ":").split(":") if name.strip()]
        for entry in contract["layers"]
    ]


def layer_of(module: str, layered: list[list[str]]) -> int | None:
    """The index (0 = highest) of the layer whose module is the longest prefix of ``module``."""
    best: tuple[int, int] | None = None
    for index, names in enumerate(layered):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


# --- the documents --------------------------------------------------------------------------------

ARCHITECTURE = ROOT / "ARCHITECTURE.md"
README = ROOT / "README.md"
ARCHITECTURE_LAYOUT = re.compile(r"#+ (\d+\. )?Module layout\b")
"""Its table's paths are relative to bridge/, and a row's other paths to the row's own."""
README_LAYOUT = re.compile(r"#+ Layout$")
"""Its table's paths are relative to the repository."""
LAYER_TABLE = re.compile(r"#+ (\d+\. )?Layers and imports\b")
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
SPAN = re.compile(r"`([^`]+)`")
PATHLIKE = re.compile(r"[\w.\-]+(/[\w.\-]+)*/?")
FILE_TYPES = (".py", ".md", ".yaml", ".yml", ".json", ".toml", ".lock", ".txt", ".sql", ".db")
PATTERN = ("NNNN", "…", "*", "{", "<")
"""A path with one of these names a pattern (``NNNN_name.sql``), not a file."""
DEFINED_IN = re.compile(r"([\w.\-/]+\.py): ?([\w.]+(, ?[\w.]+)*)")
"""``path.py: name, Class.name``: each name is defined in the file."""
DOTTED = re.compile(r"[a-z_]\w*(\.[A-Za-z_]\w*)+")
"""``bridge.engine.model``, ``domain.utcnow``: a module of ours (its ``bridge.`` may be left out), then
names defined in it."""
MEMBER = re.compile(r"[A-Z]\w*\.[A-Za-z_]\w*")
"""``Executor.execute_maintenance``: a class of ours with that member."""
SKIPPED_DIRS = {"__pycache__", "node_modules", "build"}


def spans(text: str) -> list[str]:
    """The backticked spans outside code blocks, whitespace as Markdown renders it."""
    return [" ".join(span.split()) for span in SPAN.findall(FENCE.sub("", text))]


@functools.cache
def repository() -> tuple[Path, ...]:
    found: list[Path] = []
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS]
        found += [Path(top) / d for d in dirs] + [Path(top) / f for f in files]
    return tuple(found)


def is_path(span: str) -> bool:
    if span.startswith("/") or not PATHLIKE.fullmatch(span):
        return False
    return "/" in span or span.endswith(FILE_TYPES)


def resolve(span: str, bases: list[Path] | None) -> Path | None:
    """The path ``span`` names: relative to one of ``bases`` when given (a table row's folders),
    else to the repository or the package, or for a bare file or folder name anywhere in the
    repository (prose says `routes.py` where the context says which)."""
    wants_dir = span.endswith("/")
    name = span.rstrip("/")
    for base in bases if bases is not None else [ROOT, ROOT / PACKAGE]:
        candidate = base / name
        if candidate.is_dir() if wants_dir else candidate.exists():
            return candidate
    if bases is None and "/" not in name:
        for candidate in repository():
            if candidate.name == name and (candidate.is_dir() or not wants_dir):
                return candidate
    return None


def _bound(node: ast.stmt) -> list[str]:
    """The names a statement binds in its namespace."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    return []


@functools.cache
def definitions(file: Path) -> frozenset[str]:
    """Names a module defines or imports at its top level, and ``Class.member`` for its classes."""
    names: set[str] = set()
    for node in ast.parse(file.read_text()).body:
        names.update(_bound(node))
        if isinstance(node, ast.ClassDef):
            names.update(f"{node.name}.{member}" for child in node.body for member in _bound(child))
    return frozenset(names)


def module_file(dotted: str) -> Path | None:
    where = ROOT.joinpath(*dotted.split("."))
    for candidate in (where.with_suffix(".py"), where / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def classes() -> dict[str, frozenset[str]]:
    """Class name -> members, over every class defined in the package."""
    found: dict[str, set[str]] = {}
    for file in (ROOT / PACKAGE).rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, set()).update(m for child in node.body for m in _bound(child))
    return {cls: frozenset(members) for cls, members in found.items()}


def check(span: str, bases: list[Path] | None = None) -> tuple[Path | None, str | None]:
    """What ``span`` names, if a file, and what is wrong with it, if anything."""
    if any(mark in span for mark in PATTERN):
        return None, None
    if m := DEFINED_IN.fullmatch(span):
        file = resolve(m[1], bases)
        if file is None:
            return None, f"`{span}`: no file {m[1]}"
        missing = [n.strip() for n in m[2].split(",") if n.strip() not in definitions(file)]
        return file, f"`{span}`: {', '.join(missing)} not defined in {m[1]}" if missing else None
    if is_path(span):
        found = resolve(span, bases)
        return found, None if found is not None else f"`{span}`: no such path"
    if DOTTED.fullmatch(span):
        parts = span.split(".")
        if parts[0] != PACKAGE:
            if module_file(f"{PACKAGE}.{parts[0]}") is None:
                return None, None  # not one of ours (asyncio.Event.set)
            parts = [PACKAGE, *parts]
        for cut in range(len(parts), 1, -1):
            if (file := module_file(".".join(parts[:cut]))) is not None:
                rest = ".".join(parts[cut:])
                return None, f"`{span}`: {rest} not defined in {file.relative_to(ROOT)}" if (
                    rest and rest not in definitions(file)
                ) else None
        return None, f"`{span}`: no such module"
    if MEMBER.fullmatch(span):
        cls, _, member = span.partition(".")
        if cls not in classes():
            return None, f"`{span}`: no class {cls} in {PACKAGE}/"
        return None, None if member in classes()[cls] else f"`{span}`: {cls} has no {member}"
    return None, None


@dataclass
class Table:
    rows: list[tuple[list[str], list[str]]]
    """Per row: the spans of its first cell (the paths), and those of the others."""
    lines: range
    """Where it is in the document, by line index."""


def table(text: str, heading: re.Pattern[str]) -> Table:
    """The first table after the heading that matches."""
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if heading.match(line)), None)
    assert at is not None, f"no heading matching {heading.pattern!r}"
    first = next(i for i in range(at + 1, len(lines)) if lines[i].startswith("|"))
    end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    rows = []
    for line in lines[first + 2 : end]:  # after the header and its --- line
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        rows.append((spans(cells[0]), spans("|".join(cells[1:]))))
    return Table(rows, range(first, end))


def layout(doc: Path, heading: re.Pattern[str], base: Path) -> tuple[list[set[Path]], list[str]]:
    """Per row of the document's layout table, the paths it names; and the problems."""
    named: list[set[Path]] = []
    problems: list[str] = []
    for paths, others in table(doc.read_text(), heading).rows:
        row: set[Path] = set()
        for span in paths:
            found, problem = check(span, [base])
            problems += [f"{doc.name}, layout row {paths}: {problem}"] if problem else []
            row |= {found} if found is not None else set()
        dirs = [p if p.is_dir() else p.parent for p in row] or [base]
        for span in others:
            found, problem = check(span, dirs)
            problems += [f"{doc.name}, layout row {paths}: {problem}"] if problem else []
            row |= {found} if found is not None else set()
        named.append(row)
    return named, problems


def package_modules() -> set[Path]:
    """Every module of the package: each .py file, and each package (a folder with __init__.py)."""
    return {
        file.parent if file.name == "__init__.py" else file
        for file in (ROOT / PACKAGE).rglob("*.py")
        if "__pycache__" not in file.parts
    }


def covered(rows: list[set[Path]]) -> set[Path]:
    """The paths the rows name, and their folders (``migrations/sqlite/`` names ``migrations``)."""
    return {q for row in rows for p in row for q in (p, *p.parents)}


def test_the_check_finds_stale_names() -> None:
    ingest = ROOT / PACKAGE / "ingest"
    assert check("bridge/engine/planner.py") == (ROOT / PACKAGE / "engine" / "planner.py", None)
    assert check("engine/planner.py: plan, PlannerError")[1] == (
        "`engine/planner.py: plan, PlannerError`: PlannerError not defined in engine/planner.py"
    )
    assert check("bridge/web_nowhere.py")[1] == "`bridge/web_nowhere.py`: no such path"
    assert check("routes.py", [ingest])[0] == ingest / "routes.py"
    assert check("planner.py", [ingest])[1] == "`planner.py`: no such path", "a row names its own files"
    assert check("planner.py")[0] == ROOT / PACKAGE / "engine" / "planner.py", "prose may name any file"
    assert check("bridge.engine.nowhere")[1] == (
        "`bridge.engine.nowhere`: nowhere not defined in bridge/engine/__init__.py"
    )
    assert check("bridge.nowhere")[1] == "`bridge.nowhere`: no such module"
    assert check("domain.utcnow") == (None, None)
    assert check("domain.nowhere")[1] == "`domain.nowhere`: nowhere not defined in bridge/domain.py"
    assert check("Executor.nowhere")[1] == "`Executor.nowhere`: Executor has no nowhere"
    assert check("Nowhere.execute")[1] == "`Nowhere.execute`: no class Nowhere in bridge/"
    assert check("asyncio.Event.set") == (None, None), "not ours"
    assert check("NNNN_name.sql") == (None, None), "a pattern"


def test_architecture_names_what_exists() -> None:
    text = ARCHITECTURE.read_text()
    lines = text.splitlines()
    in_table = table(text, ARCHITECTURE_LAYOUT).lines
    rest = "\n".join(line for i, line in enumerate(lines) if i not in in_table)
    problems = [f"ARCHITECTURE.md: {p}" for span in spans(rest) if (p := check(span)[1])]
    problems += layout(ARCHITECTURE, ARCHITECTURE_LAYOUT, ROOT / PACKAGE)[1]
    problems += layout(README, README_LAYOUT, ROOT)[1]
    assert not problems, "stale names in the documents:\n" + "\n".join(problems)


def test_every_module_has_a_row_in_both_layouts() -> None:
    modules = package_modules()
    problems = []
    for doc, heading, base in (
        (ARCHITECTURE, ARCHITECTURE_LAYOUT, ROOT / PACKAGE),
        (README, README_LAYOUT, ROOT),
    ):
        missing = sorted(str(m.relative_to(ROOT)) for m in modules - covered(layout(doc, heading, base)[0]))
        problems += [f"{doc.name}'s layout table does not name: {', '.join(missing)}"] if missing else []
    assert not problems, "\n".join(problems)


def test_readme_layout_has_architectures_rows() -> None:
    package = ROOT / PACKAGE
    modules = package_modules()

    def rows(doc: Path, heading: re.Pattern[str], base: Path) -> set[frozenset[str]]:
        """Each row as the modules it names (data files and what is beside the package left out)."""
        return {
            frozenset(str(p.relative_to(package)) for p in row if p in modules)
            for row in layout(doc, heading, base)[0]
        } - {frozenset()}

    ours = rows(ARCHITECTURE, ARCHITECTURE_LAYOUT, package)
    theirs = rows(README, README_LAYOUT, ROOT)
    assert ours == theirs, (
        f"rows only in ARCHITECTURE.md: {sorted(map(sorted, ours - theirs))}; "
        f"only in README.md: {sorted(map(sorted, theirs - ours))}"
    )


def test_layer_table_is_pyprojects() -> None:
    rows = table(ARCHITECTURE.read_text(), LAYER_TABLE).rows
    documented = [sorted(s for s in others if s.startswith(PACKAGE)) for _, others in rows]
    assert documented == [sorted(names) for names in layers()], (
        "ARCHITECTURE.md's layer table differs from pyproject.toml's layers contract"
    )


def test_every_module_is_in_a_layer() -> None:
    """import-linter checks only the modules a contract names: one in no layer is unchecked."""
    package = ROOT / "bridge"
    modules = sorted(
        f"bridge.{p.stem if p.suffix == '.py' else p.name}"
        for p in package.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()
    )
    layered = layers()
    assert [m for m in modules if layer_of(m, layered) is None] == [], "modules in no layer of pyproject.toml"


# --- the recorder ---------------------------------------------------------------------------------

Function = tuple[str, str, int]
"""(module, qualified name, first line): two lambdas of one function differ only by their line."""


def _ours(module: str) -> bool:
    return (module == PACKAGE or module.startswith(PACKAGE + ".")) and not module.startswith(OUTSIDE)


def show(fn: Function) -> str:
    module, name, line = fn
    return f"{module}:{name}" + (f"@{line}" if "<lambda>" in name else "")


def _comprehension(fn: Function) -> bool:
    return fn[1].rsplit(".", 1)[-1] in ("<genexpr>", "<listcomp>", "<dictcomp>", "<setcomp>")


@dataclass
class Profile:
    """Frames entered (the profile's ``call`` events: a call, or a coroutine or generator resumed)
    while ``active``; the caller is the frame right below, when it is ours too."""

    active: bool = False
    entered: set[Function] = field(default_factory=set)
    calls: set[tuple[Function, Function]] = field(default_factory=set)
    threads: set[str] = field(default_factory=set)
    """Threads other than the event loop's that entered bridge code."""

    def hook(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or not self.active:
            return
        module = frame.f_globals.get("__name__", "")
        if not _ours(module):
            return
        code = frame.f_code
        callee = (module, code.co_qualname, code.co_firstlineno)
        self.entered.add(callee)
        if threading.current_thread() is not threading.main_thread():
            self.threads.add(threading.current_thread().name)
        below = frame.f_back
        if below is not None and _ours(caller_module := below.f_globals.get("__name__", "")):
            c = below.f_code
            self.calls.add(((caller_module, c.co_qualname, c.co_firstlineno), callee))


@dataclass
class WebhookPath:
    modules: dict[str, list[str]]
    """Module -> the functions of it entered (comprehensions left out)."""
    upward: list[tuple[Function, Function]]
    """Calls from a lower layer into a higher one: callbacks the wiring handed down."""
    iterated: list[tuple[Function, Function]]
    """A higher layer's generator expression iterated below (``max(... for ...)``): not a call."""
    unlayered: list[str]
    threads: list[str]

    @classmethod
    def of(cls, profile: Profile, layered: list[list[str]]) -> WebhookPath:
        bottom = len(layered)  # a module in no layer counts as the lowest

        def rank(module: str) -> int:
            found = layer_of(module, layered)
            return bottom if found is None else found

        modules: dict[str, list[str]] = {}
        for fn in sorted(profile.entered):
            names = modules.setdefault(fn[0], [])
            if not _comprehension(fn):
                names.append(show(fn).split(":", 1)[1])
        up = sorted((a, b) for a, b in profile.calls if rank(a[0]) > rank(b[0]))
        return cls(
            modules=modules,
            upward=[(a, b) for a, b in up if not _comprehension(b)],
            iterated=[(a, b) for a, b in up if _comprehension(b)],
            unlayered=[m for m in modules if layer_of(m, layered) is None],
            threads=sorted(profile.threads),
        )

    def report(self) -> str:
        lines = [f"{len(self.modules)} bridge modules entered (with the functions entered):"]
        lines += [f"  {m}: {', '.join(names)}" for m, names in self.modules.items()]
        lines.append(f"{len(self.upward)} calls from a lower layer into a higher one (caller -> callee):")
        lines += [f"  {show(a)} -> {show(b)}" for a, b in self.upward]
        lines.append("not counted, a higher layer's generator expression iterated below:")
        lines += [f"  {show(a)} -> {show(b)}" for a, b in self.iterated] or ["  none"]
        lines.append(f"modules in no layer (counted as the lowest): {', '.join(self.unlayered) or 'none'}")
        lines.append(
            f"threads besides the event loop's running bridge code: {', '.join(self.threads) or 'none'}"
        )
        return "\n".join(lines)


def _delivery() -> tuple[bytes, dict[str, str]]:
    captured = json.loads(DELIVERY.read_text())
    headers = {k: v for k, v in captured["headers"] if k.lower() not in ("host", "content-length")}
    return captured["body_raw"].encode(), headers


THAW_AFTER = 15.0
"""Real seconds the loop's clock stands still while recording (see below); the path takes well under 1."""


async def one_webhook(
    server_factory: ServerFactory, sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WebhookPath:
    """Start the daemon against the sandbox, POST one delivery, record until the incident exists."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    profile = Profile()
    # Threads get the hook when they start: aiosqlite's workers start with the store. It records
    # only while active.
    previous = threading.getprofile()
    threading.setprofile(profile.hook)
    try:
        server = await server_factory(
            rules_path=str(rules),
            incidentio_api_key=sandbox.writer_token,
            incidentio_base_url=sandbox.url,
            webhook_auth=None,
            webhook_basic_username="amuser",  # the delivery's credentials
            webhook_basic_password="ampass",
            coalesce_window="0s",
            reconcile_interval="1h",
        )
    finally:
        threading.setprofile(previous)
    server.clock.now = sandbox.clock.now
    reconciler = server.app[RECONCILER]
    # The start-up pass and the pause after it (pacing.MIN_PASS_INTERVAL) are over: the loop
    # waits for a change.
    while reconciler.last is None:
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    page = sandbox.app[SANDBOX_KEY].state
    assert not page.incidents

    done = asyncio.Event()
    forward = sandbox.record

    def record(exchange: Any) -> None:  # every API exchange of the sandbox, once answered
        if profile.active and page.incidents:
            sys.setprofile(None)
            profile.active = False
            done.set()
        forward(exchange)

    monkeypatch.setattr(sandbox, "record", record)
    # While recording, the loop's clock stands still, so no timer fires (the rules watcher's and the
    # lease loop's 2 s ticks, APScheduler): the window holds what the webhook causes, nothing else.
    # Were the path ever to wait for a timer, the clock moves again after THAW_AFTER and the test
    # says so.
    loop = asyncio.get_running_loop()
    real_time = loop.time
    frozen = real_time()
    thaw = time.monotonic() + THAW_AFTER

    def stopped_clock() -> float:
        return frozen if time.monotonic() < thaw else real_time()

    body, headers = _delivery()
    with monkeypatch.context() as patch:
        patch.setattr(loop, "time", stopped_clock)
        profile.active = True
        sys.setprofile(profile.hook)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    server.url + "/webhooks/alertmanager", data=body, headers=headers
                ) as r:
                    assert r.status == 200, await r.text()
            await asyncio.wait_for(done.wait(), timeout=2 * THAW_AFTER)
        finally:
            sys.setprofile(None)
            profile.active = False
    assert time.monotonic() < thaw, "the path waited for a timer: the loop's clock had to move again"
    assert len(page.incidents) == 1
    return WebhookPath.of(profile, layers())


@pytest.mark.real_time(
    "profiles the ordinary loop with its clock stopped, after waiting out the start-up pass's pause; "
    "the virtual loop would jump to the next timer while idle and put the 2 s ticks on the path"
)
async def test_one_webhook_path_stays_short(
    server_factory: ServerFactory, sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await one_webhook(server_factory, sandbox, tmp_path, monkeypatch)
    print("\n" + path.report())  # noqa: T201 (pytest -s shows what was measured)
    assert len(path.modules) <= MAX_MODULES, path.report()
    assert len(path.upward) <= MAX_UPWARD, path.report()
