# paddock: `make run` serves on the embedded defaults; `make test` runs the whole suite.
# Both install what they need into .venv first (idempotent: a stamp per pyproject change).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first, pinned, so pip never resolves a multi-GB CUDA build by accident.
TORCH := torch==2.13.0

.PHONY: run test lint install install-test redis-server clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[worker]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[worker,test,ray]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# The queue tests start a real redis-server on a free port; install it from Debian if missing.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	}

run: install
	$(BIN)/paddock serve

test: install-test redis-server
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check server model tests benchmarks loadtests
	$(BIN)/ruff format --check server model tests benchmarks loadtests

clean:
	rm -rf $(VENV) paddock-data .pytest_cache .ruff_cache
