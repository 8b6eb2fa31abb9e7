SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# The first Python 3.11 or newer on PATH.
PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: install run test lint format bench check-migrations browser-deps

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: Python 3.11 or newer is required" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

# axe-core and the Nu Html Checker for the browser tests (node_modules/ is git-ignored).
# --ignore-scripts: vnu-jar's install script would download a Java; apt's is used.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund

browser-deps: node_modules/.package-lock.json

run: $(STAMP)
	@export DJANGO_DEBUG=$${DJANGO_DEBUG:-1} PATH="$(BIN):$$PATH"; \
	set -e; \
	python manage.py migrate --noinput; \
	python manage.py load_demo; \
	python manage.py ensure_admin; \
	echo "Monitor: http://127.0.0.1:8000/  (admin: http://127.0.0.1:8000/admin/)  Ctrl-C stops."; \
	exec honcho start -f Procfile

test: $(STAMP)
	@export DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-insecure-test-only-key} PATH="$(BIN):$$PATH"; \
	python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-migrations: $(STAMP)
	DJANGO_SECRET_KEY=check $(BIN)/python manage.py makemigrations --check --dry-run

bench: $(STAMP)
	@export DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-insecure-bench-only-key} PATH="$(BIN):$$PATH"; \
	python -m bench
