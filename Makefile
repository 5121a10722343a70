# medbridge: `make demo` and `make test` do all set-up themselves on a fresh Debian machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEBS := krb5-kdc krb5-admin-server krb5-user libkrb5-dev chromium
# Only `make chaos` and `make scale-test` need these: they start private PostgreSQL and Redis
# instances (initdb, redis-server on free ports), and the scale test the load balancer.
CHAOS_DEBS := postgresql redis-server
SCALE_DEBS := $(CHAOS_DEBS) haproxy
PYTEST_ARGS ?= -n 2

.PHONY: install debs chaos-debs scale-debs demo test lint fmt bench test-times chaos scale-test clean

# Debian packages: the MIT KDC for the lab's Kerberos, headers for gssapi, chromium for the admin
# portal's browser tests (Playwright drives /usr/bin/chromium). apt-get update runs once.
debs:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(DEBS)"

chaos-debs:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(CHAOS_DEBS)"

scale-debs:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(SCALE_DEBS)"

.PHONY: apt-install
apt-install:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
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

# The functional tests on a base revision and on this tree, one after the other: which got
# slower (bench/test_times.py; prints a table, writes bench/results/test_times.json).
BASE ?= 3e68398
TESTS ?= tests
test-times: install
	$(PIP) install -q 'aiosqlite>=0.20'  # the default base (3e68398) imports it; we no longer do
	$(PY) -m bench.test_times --base $(BASE) $(TESTS) $(PYTEST_ARGS)

# The chaos battery: PostgreSQL and Redis restarts and kill -9 of messenger nodes under load
# (private PostgreSQL and Redis on free ports), then the bridge's crash test at length (200
# kill -9 runs; the test suite runs 20) and lab throttling and outages during sync. Prints a
# table, writes bench/results/chaos.{json,png}; fails on any loss or duplicate.
CHAOS_BRIDGE_RUNS ?= 200
chaos: install chaos-debs
	CHAOS_BRIDGE_RUNS=$(CHAOS_BRIDGE_RUNS) $(PY) -m bench.chaos

# Two messenger nodes behind HAProxy (deploy/haproxy.cfg) on a private PostgreSQL and Redis,
# the load through the balancer and a kill -9 of one node mid-run; bench/results/scale.json.
scale-test: install scale-debs
	$(PY) -m bench.scale

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
