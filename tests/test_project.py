"""The project's own bookkeeping: one version, extras that exist, packaging that agrees with the code."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import requires
from pathlib import Path

import yaml

import bridge

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
CHART = yaml.safe_load((ROOT / "helm/statusbridge/Chart.yaml").read_text())
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")


def test_the_package_reports_the_pyproject_version() -> None:
    assert bridge.__version__ == VERSION, "reinstall (make venv) after changing [project] version"
    out = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"statusbridge {VERSION}"


def test_chart_app_version_follows_the_package() -> None:
    assert CHART["appVersion"] == VERSION, "helm/statusbridge/Chart.yaml appVersion"


def test_chart_version_is_its_own_semver() -> None:
    # Bumped independently of the app (a template change is a chart release of its own); it is
    # only required to be a SemVer 2 string, as Helm requires.
    assert isinstance(CHART["version"], str)
    assert SEMVER.match(CHART["version"]), CHART["version"]


def test_helm_readme_image_tag_follows_the_package() -> None:
    readme = (ROOT / "helm/statusbridge/README.md").read_text()
    tags = re.findall(r"ghcr\.io/statusbridge/statusbridge:([^\s\"'`]+)", readme)
    assert tags, "the helm README shows the image with a tag"
    assert set(tags) == {VERSION}


def test_no_other_hard_coded_package_version() -> None:
    # The version is written once; bridge/ reads it from the installed metadata.
    for path in (ROOT / "bridge").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"__version__\s*=\s*[\"']\d+\.\d+\.\d+", text), path


def test_install_hints_name_extras_that_exist() -> None:
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    for path in (ROOT / "bridge").rglob("*.py"):
        for extra in re.findall(r"statusbridge\[([\w,-]+)\]", path.read_text()):
            assert set(extra.split(",")) <= extras, f"{path}: statusbridge[{extra}]"


def test_asyncpg_is_a_core_dependency() -> None:
    # The image installs core dependencies only, and the chart's replicas use a postgresql:// store.
    core = [r for r in requires("statusbridge") or [] if "extra ==" not in r]
    assert any(re.match(r"asyncpg\b", r) for r in core), core


def _make_lint_commands() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the Makefile has a lint target"
    commands = [line.strip() for line in recipe[1].splitlines()]
    return [c.replace("$(BIN)/", ".venv/bin/").replace("VENV=$(VENV) ", "") for c in commands]


def test_pre_commit_runs_the_make_lint_gates() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"] * len(config["repos"]), (
        "local hooks only: CI and developers may have no git host to clone hook repositories from"
    )
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert {hook["language"] for hook in hooks} == {"system"}
    entries = [" ".join([hook["entry"], *hook.get("args", [])]) for hook in hooks]
    assert entries == _make_lint_commands()
    assert all(hook.get("pass_filenames") is False for hook in hooks), "each gate runs on the whole tree"
    pre_commit = Path(sys.executable).parent / "pre-commit"
    if pre_commit.exists():
        result = subprocess.run(
            [str(pre_commit), "validate-config", str(ROOT / ".pre-commit-config.yaml")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
