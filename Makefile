# The two commands of the README: `make demo` and `make test`.
# Both create the virtualenv on first use, so they work on a fresh machine with python3 >= 3.11.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

IMAGE ?= localhost/statusbridge:ci

.PHONY: venv test lint demo sandbox serve clean image image-test

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $@

# The test suite. System packages the end-to-end tests need (Debian's prometheus-alertmanager)
# are installed first when missing.
test: venv
	scripts/ensure-system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Quality gates: lint, format, types, import layers.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bridge
	$(BIN)/lint-imports

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
