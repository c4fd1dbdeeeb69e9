# The two commands of the README's quick start:
#   make demo   - set everything up, then run `sciwm demo`
#   make test   - set everything up, then run the test suite (what .ci/run calls)

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sciwm-installed

.PHONY: setup demo test integration lint bench clean

setup: $(STAMP)

# torch first, pinned: pip then takes the CPU build from local disk instead of a multi-GB CUDA one.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,bench,browser,postgres]"
	touch $(STAMP)

demo: setup
	$(BIN)/sciwm demo

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Tests against real servers (Slurm, PostgreSQL, a Prefect server, a browser) on loopback.
# Each .ci/services/install-*.sh installs one service's packages (idempotent); the tests'
# fixtures start and stop the servers themselves.
integration: setup
	for s in .ci/services/install-*.sh; do [ -e "$$s" ] || continue; bash "$$s" || exit 1; done
	$(BIN)/python -m pytest -q -p no:cacheprovider -m integration tests

lint: setup
	$(BIN)/ruff check sciwm surrogates scheduler lab_connectors flows tests
	$(BIN)/ruff format --check sciwm surrogates scheduler lab_connectors flows tests

bench: setup
	$(BIN)/sciwm bench campaign --out bench-campaign.json

clean:
	rm -rf $(VENV) .sciwm mlflow.db mlruns reports
