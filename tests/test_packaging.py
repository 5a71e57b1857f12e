"""Packaging checks that run without a container engine: the Dockerfile passes hadolint and keeps
its promises (multi-stage, BASE argument, non-root, state under a volume, the entrypoint)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
HADOLINT = Path(sys.executable).parent / "hadolint"


def test_hadolint_clean() -> None:
    result = subprocess.run(
        [str(HADOLINT), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    assert re.search(r"^ARG BASE=", DOCKERFILE, re.M)
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) == 2, "multi-stage"
    final = DOCKERFILE.split("\nFROM ")[-1]
    assert "USER ${UID}" in final
    assert 'VOLUME ["/data"]' in final
    assert 'ENTRYPOINT ["statusbridge"]' in final
    assert 'CMD ["serve"]' in final
    assert "gcc" not in final
    assert "build-essential" not in final
