# Each target builds its own virtual environment from the project's files first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench screenshots messages

$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python manage.py demo $(DEMO_ARGS)

# Two workers, each file's tests kept together in one (tests/conftest.py: a database and a Redis
# database each); PYTEST_ARGS="-n 0" runs in one process. The modules that write a fixed time
# run a year ahead (tests/dated.py): a test that mixes a fixed date with rows stamped by the real
# clock fails now rather than on main some days after it was written.
PYTEST_ARGS ?= -n 2 --dist loadfile --clock-shift-days=365 --clock-shift-dated

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

# Refresh the translations (locale/) from the code and templates, then compile them. Needs GNU
# gettext (apt-get install gettext); the compiled .mo files are committed, so running the console
# does not, and tests/test_translations.py fails when a .mo lags behind its .po.
MESSAGES_IGNORE := --ignore=.venv --ignore=tests --ignore=bench --ignore=staticfiles --ignore=docs --ignore=var
messages: $(BIN)/.installed
	DJANGO_SETTINGS_MODULE=dlrconsole.settings_test $(BIN)/python manage.py makemessages -l fr -l es --no-location $(MESSAGES_IGNORE)
	DJANGO_SETTINGS_MODULE=dlrconsole.settings_test $(BIN)/python manage.py compilemessages --ignore=.venv
