# Each target builds its own virtual environment from the project's files first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench screenshots

$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python manage.py demo $(DEMO_ARGS)

# Two workers, each file's tests kept together in one (tests/conftest.py: a database and a Redis
# database each); PYTEST_ARGS="-n 0" runs in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=dlrconsole.settings_test

bench: $(BIN)/.installed
	$(BIN)/python bench/ingest_throughput.py

# Refresh the README's screenshots (docs/screenshots/) from the browser tests.
screenshots: $(BIN)/.installed
	DLR_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/browser
