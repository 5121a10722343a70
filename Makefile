# medbridge: `make demo` and `make test` do all set-up themselves on a fresh Debian machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEBS := krb5-kdc krb5-admin-server krb5-user libkrb5-dev chromium
PYTEST_ARGS ?= -n 2

.PHONY: install debs demo test lint fmt bench chaos clean

# Debian packages: the MIT KDC for the lab's Kerberos, headers for gssapi, chromium for the admin
# portal's browser tests (Playwright drives /usr/bin/chromium). apt-get update runs once.
debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml | debs
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -U pip wheel
	$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

install: debs $(STAMP)

demo: install
	$(VENV)/bin/medbridge demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench

# The bridge's crash test at length: 200 kill -9 runs (the test suite runs 20).
chaos: install
	MEDBRIDGE_CHAOS_RUNS=200 $(PY) -m pytest -p no:xdist -q -m slow --timeout 3600 tests/e2e/test_bridge_chaos.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
