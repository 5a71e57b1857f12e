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


def test_dockerfile_keeps_what_a_real_build_showed() -> None:
    """What `make image-test` found building it (README, "Building and testing the image")."""
    assert not DOCKERFILE.startswith("# syntax="), "a syntax line makes BuildKit fetch a frontend"
    build, final = DOCKERFILE.split("\nFROM ")[1:]
    assert "PIP_INDEX_URL" in build and "type=secret,id=pip" in build, "a private index reaches pip"
    assert "PIP_INDEX_URL" not in final, "index URLs stay out of the final image's history"
    assert "COPY --from=build /wheels" not in final, "wheels are bind-mounted, not a layer"
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in final
    assert "python -m venv --without-pip /opt/statusbridge" in final, "a venv: PEP 668 never applies"
    assert 'chown "${UID}:0" /data' in final and "chmod 0770 /data" in final, "any uid in group 0"
    for label in ("version", "revision", "source"):
        assert f"org.opencontainers.image.{label}=" in final
    # The image runs the versions CI tested: the runtime lock, hash-checked, and nothing resolved.
    assert "--require-hashes --no-deps --find-links /wheels -r /wheels/runtime.lock" in final
    assert "--require-hashes --no-deps --only-binary=:all:" in build


def test_ci_runs_the_image_test_after_the_tests() -> None:
    steps = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert steps[-2:] == ["make test COVERAGE=1", "make image-test"]
