# make serve: install and start SpaceHub with embedded defaults · make test: install everything and run every test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Python caches compiled modules (and pytest its rewritten test modules) even where the environment says not to:
# without the cache every test worker, server and CLI call compiles SpaceHub and its dependencies again.
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

.PHONY: install serve test test-fast test-pods lint fmt bench system-deps runtime-deps
install: $(STAMP)

system-deps:
	./scripts/install-system-deps

runtime-deps:
	./scripts/install-system-deps --runtime

serve: install runtime-deps
	$(BIN)/spacehub serve $(ARGS)

test: install system-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

# unit and in-process tests only: nothing marked slow (end-to-end: the e2e, compat and bench folders, and every test
# that starts a live server or the Kubernetes control plane, marked by tests/conftest.py), a short fuzz run; under 2 min
test-fast: install system-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -n 2 -m "not slow" $(PYTEST_ARGS)

# the Kubernetes pod tier alone: a real kubelet on containerd runs the Spaces (docs/kubernetes.md, "The pod tier")
test-pods: install system-deps
	$(BIN)/pytest -n 2 -m pods $(PYTEST_ARGS) tests/k8s tests/runtime/backends/test_contract.py tests/bench/test_k8s_wake_bench.py

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff format --check src tests bench

fmt: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install system-deps
	$(BIN)/python bench/hub_bench.py
