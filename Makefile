# Everything needs only Python 3.10+ and make: the venv is created on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install install-dev benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## demo: install, generate data, build on DuckDB, check, sync to data/outbox, summarise
demo: install
	$(BIN)/phasegate demo

## test: install dev extras, lint, run the whole suite (DuckDB always; Postgres when reachable)
test: install-dev
	$(BIN)/ruff check python tests benchmarks
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check python tests benchmarks
	$(BIN)/ruff format --check python tests benchmarks

benchmark: install-dev
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf target dbt_packages logs data .phasegate integration_tests/target integration_tests/dbt_packages
