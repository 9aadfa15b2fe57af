# rxvault task runner. `make` or `make help` lists the targets.
# Everything runs in a project-local virtual environment (.venv) created from the
# committed lock file (uv.lock) by `make setup`; no global installs besides uv itself.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this list of targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/rxvault: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $@

.PHONY: setup
setup: $(BIN)/rxvault ## Create .venv with rxvault and its pinned dependencies

.PHONY: demo
demo: setup ## The demo: pharmacy, server, agent, a patient; serves the portal on localhost
	@test -f src/rxvault/web/index.html || $(MAKE) web
	$(BIN)/rxvault demo

.PHONY: lint
lint: setup ## Lint (ruff) and check formatting
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

.PHONY: typecheck
typecheck: setup ## Type-check src/ (mypy --strict)
	$(BIN)/mypy

.PHONY: web
web: ## Build the portal (npm ci, esbuild) into src/rxvault/web/
	cd web && npm ci --no-audit --no-fund && node build.mjs

.PHONY: browser
browser: ## Install Debian's chromium for the browser tests, if missing
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)

.PHONY: unit
unit: setup web browser ## Run the test suite only
	$(BIN)/pytest

.PHONY: test
test: lint typecheck unit ## Set up everything, then lint, type-check and run all tests

.PHONY: soak
soak: setup web browser ## Long forms of the reliability harnesses (hours; see docs/reliability.md)
	$(BIN)/pytest -m long --timeout=0

.PHONY: bench
bench: setup ## Run the benchmarks in bench/ and rewrite bench/README.md
	$(BIN)/python bench/run.py

.PHONY: fmt
fmt: setup ## Format the code and apply safe lint fixes
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

.PHONY: lock
lock: $(UV) ## Re-resolve dependencies into uv.lock
	$(UV) lock --python $(PYTHON)

.PHONY: clean
clean: ## Remove the virtual environments and caches
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache .hypothesis
