# DocuElevate: `make run` starts everything on this machine; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test test-packages test-fast check lint format typecheck migrations-check system-packages bench clean help

help:
	@echo "make run    - install what is needed, migrate, start web + worker + beat (VERBOSE=1: all logs)"
	@echo "make test   - run the whole test suite"
	@echo "make test-fast - the tests that start no process and run no system program (a few minutes)"
	@echo "make check  - lint, format check, type check, migrations check, then the test suite"
	@echo "make lint   - ruff check and ruff format --check"
	@echo "make bench  - the quick benchmarks (minutes each; they read ../shared/corpus)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when a requirements file changes.
$(VENV)/.base-installed: requirements/base.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.dev-installed: requirements/base.txt requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/base.txt -r requirements/dev.txt
	touch $@ $(VENV)/.base-installed

system-packages:
	@scripts/install-system-packages.sh

# VERBOSE=1 shows every process's own start-up lines (Celery's banner, gunicorn's boot).
run: system-packages $(VENV)/.base-installed
	$(BIN)/python scripts/run_embedded.py $(if $(VERBOSE),--verbose)

# Only the tests need these: the deployment tests validate the compose files and the nginx
# configuration with the real programs, the browser tests drive Debian's Chromium, and the
# SFTP and IMAP tests start Debian's sshd and Dovecot.
TEST_SYSTEM_PACKAGES := docker-compose nginx openssl chromium openssh-server dovecot-core dovecot-imapd

test: test-packages $(VENV)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-packages:
	@scripts/install-system-packages.sh $(TEST_SYSTEM_PACKAGES)

# The tests that start no process and run no system program: conftest.py marks the others slow.
# Their documents are still rendered in the fonts the base system packages install.
test-fast: system-packages $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# mypy loads the settings; a debug process needs no SESSION_SECRET.
typecheck: $(VENV)/.dev-installed
	DEBUG=true $(BIN)/mypy .
	DEBUG=true $(BIN)/mypy bench/search.py

# A model change without its migration fails here, not on a production migrate. The
# WORKDIR is a throwaway one: the check reads models, never a database.
migrations-check: $(VENV)/.dev-installed
	DEBUG=true WORKDIR=$$(mktemp -d) $(BIN)/python manage.py makemigrations --check --dry-run

check: lint typecheck migrations-check test

# The benchmarks that need no PostgreSQL and no seeded archive, each printing its ratios
# against a baseline timed in the same run; the others (bench/api.py, bench/search.py,
# bench/ingest.py, bench/soak.py, ...) run on their own, see the README.
BENCH_QUICK := pipeline.py throughput.py upload.py conversion.py load.py

bench: system-packages $(VENV)/.dev-installed
	@set -e; for script in $(BENCH_QUICK); do echo "== bench/$$script"; $(BIN)/python bench/$$script; echo; done

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache .ruff_cache
