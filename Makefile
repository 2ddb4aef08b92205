# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast test-integration test-e2e test-durations lint bench simulator clean

$(STAMP): pyproject.toml simulator/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./simulator
	@touch $(STAMP)

# dagster-dbt reads the manifest when the definitions load: parse the dbt project first.
MANIFEST := dbt_project/target/manifest.json
$(MANIFEST): $(STAMP) $(shell find dbt_project/models dbt_project/macros dbt_project/tests -type f) dbt_project/dbt_project.yml
	cd dbt_project && ../$(BIN)/dbt parse --quiet --profiles-dir .

install: $(STAMP) $(MANIFEST)

demo: install
	$(BIN)/bitbucket-access demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Three tiers (README, "Development"), on one worker more than there are cores: much of the suite waits (the image
# test's package downloads, the daemon's cron ticks, Dagster's servers starting, Chromium), and with one worker
# per core a core idled meanwhile. A module's tests run on one worker (they may share a module fixture), the
# longest modules first (tests/durations.json, kept in that order by --no-loadscope-reorder).
WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: install  ## pure code, the client and extraction against the simulator, dbt unit tests: under 2 minutes
	$(PYTEST) tests/fast

test-integration: install
	$(PYTEST) tests/integration

test-e2e: install
	$(PYTEST) tests/e2e

test: install lint  ## everything: what CI runs
	$(PYTEST) --durations=15

test-durations: install  ## remake tests/durations.json from a whole run (it orders the modules)
	$(PYTEST) --junitxml=.pytest-durations.xml
	$(BIN)/python -m tests.support.durations .pytest-durations.xml

bench: install
	$(BIN)/python bench/simulator_throughput.py

simulator: install
	$(BIN)/bitbucket-access simulator --org demo --port 7990

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
