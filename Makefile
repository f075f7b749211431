# satchel: the README's commands. uv is bootstrapped into .tools/ when missing;
# no Python build is ever downloaded (the machine's python3 is used).
SHELL := /bin/bash
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
# the interpreter itself, not a shim in front of it: uv would rebuild .venv for a shim path
export UV_PYTHON ?= $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/uv/bin/uv)
SYNC_STAMP := .venv/.synced
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test check lint typecheck docs docs-examples dist bench sync clean

$(TOOLS)/uv/bin/uv:
	$(PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/python -m pip install --quiet uv

$(SYNC_STAMP): $(UV) pyproject.toml uv.lock packages/*/pyproject.toml
	$(UV) sync --all-packages --all-extras --frozen
	@touch $@

sync: $(SYNC_STAMP)

# the demo's own environment, from the lock: satchel, satchel-sqlite and the `demo` group
# (starlette, uvicorn), about a dozen packages; .venv and its dev toolchain are left alone
DEMO_ENV := .venv-demo

demo: $(UV)
	UV_PROJECT_ENVIRONMENT=$(DEMO_ENV) $(UV) sync --frozen --no-dev --group demo --package satchel-sqlite --quiet
	$(DEMO_ENV)/bin/python -m examples.shop --host $(HOST) --port $(PORT) $(DEMO_ARGS)

# two worker processes, a test file to each at a time: the suite mostly waits on servers
# and expiry, so the waits overlap (TEST_WORKERS=0 runs it in one process)
TEST_WORKERS ?= 2

test: $(SYNC_STAMP)
	$(UV) run --frozen --no-sync python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

lint: $(SYNC_STAMP)
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync ruff format --check .

typecheck: $(SYNC_STAMP)
	$(UV) run --frozen --no-sync mypy packages/core/src packages/conformance/src packages/storage-sqlite/src packages/storage-redis/src packages/storage-mongo/src packages/codec-crypto/src packages/core/tests/typing/usage.py packages/core/tests/typing/integrations_usage.py

docs: $(SYNC_STAMP)
	$(UV) run --frozen --no-sync mkdocs build --strict --site-dir site

# every python block of the README, docs/ and the package READMEs runs as pasted (CONTRIBUTING.md)
docs-examples: $(SYNC_STAMP)
	$(UV) run --frozen --no-sync python -m pytest -q -p no:randomly tests/test_readme.py tests/test_docs_*.py \
		tests/test_packaging.py::test_every_package_readme_example_runs_as_pasted \
		tests/test_packaging.py::test_the_core_readme_example_counts_visits

check: lint typecheck docs docs-examples dist

# every wheel and sdist into dist/, then the checks an index upload would make
dist: $(SYNC_STAMP)
	rm -rf dist
	$(UV) build --all-packages --out-dir dist --quiet
	$(UV) run --frozen --no-sync twine check --strict dist/*

bench: $(SYNC_STAMP)
	$(UV) run --frozen --no-sync python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf .venv $(DEMO_ENV) $(TOOLS) site dist
