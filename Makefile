# Two commands for a newcomer (see README.md):
#   make demo   set up .venv from the lock, then run the platform on embedded defaults (offline)
#   make test   set up .venv from the lock, then run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: setup demo test lint bench-ingest lock

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/time2bet demo

# The test files run on TEST_WORKERS processes (pytest-xdist), each file on one of them (--dist loadfile: a module's
# fixtures, such as the runbook tests' platform, are built once); most tests wait on real servers, so two workers
# on two cores halve the run. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Lint (ruff's default rules, configured in pyproject.toml [tool.ruff]); run by .ci/run before the tests.
LINT_PATHS := time2bet time2bet_assets bento_service ui tests bench deploy .ci
lint: setup
	$(BIN)/ruff check $(LINT_PATHS)

bench-ingest: setup
	$(BIN)/python bench/ingest.py --root ../shared/data/football-data

# Re-resolve the lock after changing dependencies in pyproject.toml (needs the package index).
lock:
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  -c ../shared/env/known-good-py311.txt -o requirements.lock
