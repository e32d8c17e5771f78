# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench soak clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	VENV=$(VENV) bash scripts/run-dev.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The service beside a bare baseline app, same gunicorn and PostgreSQL, driven by wrk
# (apt-get install wrk); prints a table and writes bench/results.json (see bench/run.py).
bench: $(VENV)/.dev
	$(BIN)/python bench/run.py

# A few minutes of mixed load with a failing downstream and a PostgreSQL restart, then
# an audit of answers, deliveries and counters (see scripts/soak.py).
soak: $(VENV)/.dev
	$(BIN)/python scripts/soak.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
