# The two commands of the README: `make demo` and `make test`.
# Both create the virtualenv on first use, so they work on a fresh machine with python3 >= 3.11.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

# Exact versions with hashes (CPython 3.11, linux x86_64): the venv installs what CI tested.
LOCK := requirements/dev.lock
PIP_VERSION := 26.3
IMAGE ?= localhost/statusbridge:ci

.PHONY: venv test lint lock lock-upgrade demo sandbox serve clean image image-test

venv: $(VENV)/.installed

# The lock first (every package pinned and hash-checked), then the project itself, editable, with
# no dependency resolution of its own.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Re-resolve requirements/*.lock after a pyproject.toml change, keeping every pin it can;
# `make lock-upgrade` moves every pin to the newest release pyproject.toml allows.
lock: venv
	VENV=$(VENV) scripts/lock

lock-upgrade: venv
	VENV=$(VENV) scripts/lock --upgrade

# The test suite. System packages the end-to-end tests need (Debian's prometheus-alertmanager)
# are installed first when missing. COVERAGE=1 (CI sets it) measures branch coverage and fails
# under the floor in pyproject.toml; it makes pure-Python tests ~2.4 times slower, so a
# developer's run leaves it off.
COVERAGE ?= 0
COV_ARGS := $(if $(filter 1,$(COVERAGE)),--cov --cov-report=term,)

test: venv
	scripts/ensure-system-deps
	$(BIN)/python -m pytest $(COV_ARGS) $(PYTEST_ARGS)

# Quality gates: lint, format, types, import layers, and the lock against pyproject.toml.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bridge tests
	$(BIN)/lint-imports
	VENV=$(VENV) scripts/lock --check

# The container image, built from the Dockerfile with buildah on a Debian bookworm base made with
# debootstrap, and its smoke test with podman (scripts/image-test). As root; no Docker engine and no
# registry. Everything the engine stores is under build/image/. `make test` needs none of this.
image:
	scripts/ensure-image-deps
	scripts/image-build $(IMAGE)

image-test: image
	scripts/image-test $(IMAGE)

demo: venv
	$(BIN)/statusbridge demo

sandbox: venv
	$(BIN)/statusbridge sandbox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
