# The two commands of README.md: `make dev` runs liqstream, `make test` runs the test suite.
# Both install what they need first (a virtualenv in .venv, Apache Kafka jars via Maven).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install kafka-jars dev test lint bench fuzz

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

kafka-jars: install
	$(BIN)/liqstream kafka --fetch-only

dev: kafka-jars
	$(BIN)/liqstream dev

lint: install
	$(BIN)/ruff check stream tests bench
	$(BIN)/ruff format --check stream tests bench
	$(BIN)/mypy stream

test: kafka-jars lint
	$(BIN)/pytest

bench: kafka-jars
	$(BIN)/python -m bench

# 100,000 mutated venue frames through every feed's parser and `liqstream normalize`: prints
# tracebacks and lost lines (both must be 0). `make test` runs a bounded count
# (tests/collectors/test_fuzz.py). FRAMES=... SEED=... to vary it.
FRAMES ?= 100000
SEED ?= 15
fuzz: install
	$(BIN)/python -m tests.collectors.fuzzing --frames $(FRAMES) --seed $(SEED)
