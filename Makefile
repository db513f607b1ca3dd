# Two commands for a fresh machine: `make dev` (run the platform) and `make test` (run the tests).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
UV_VERSION := 0.13.8
UV := python3 -m uv

.PHONY: help setup python services-install services-up services-down services-status dev test chaos lint bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

python: .venv/.synced  ## the pinned Python environment (.venv from uv.lock)
.venv/.synced: pyproject.toml uv.lock
	@python3 -m uv --version 2>/dev/null | grep -q $(UV_VERSION) || python3 -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) sync --frozen --quiet
	@touch $@

services-install:  ## install/build the local services (cached under .local/)
	./infra/services.sh install

setup: python services-install  ## everything `dev` and `test` need

services-up: python  ## start PostgreSQL+TimescaleDB and Kafka, migrate, create topics
	./infra/services.sh up
	$(PY) -m stock_assets.cli init

services-down:  ## stop everything the project started
	./infra/dev.sh stop
	./infra/services.sh down

services-status:  ## what runs where
	./infra/services.sh status

dev: setup services-up  ## run the platform (Ctrl-C stops the apps; `make services-down` stops all)
	./infra/dev.sh run

# STOCK_KAFKA_PROFILE=replicated (dev, test, services-up/down): a 3-broker Kafka (RF 3, min ISR 2).
test: setup services-up  ## the test suite against the real services (without the chaos_slow scenarios)
	$(PY) -m pytest -m "not chaos_slow" $(PYTEST_ARGS)

chaos: setup  ## every chaos scenario on private PostgreSQL/Kafka instances -> bench/results/chaos.json
	$(PY) -m stock_assets_tests.chaos $(CHAOS_ARGS)

lint: python  ## ruff + mypy
	.venv/bin/ruff check stock_assets stock_assets_tests spark dash_app bench
	.venv/bin/ruff format --check stock_assets stock_assets_tests spark dash_app bench
	.venv/bin/mypy stock_assets spark dash_app bench

bench: setup services-up  ## every benchmark under bench/ (results in bench/results/)
	@for b in $$(ls bench/*.py | grep -v -e __init__ -e harness); do \
		echo "== $$b"; $(PY) -m bench.$$(basename $$b .py) || exit 1; done

clean: services-down  ## stop services and remove local state (keeps the build cache)
	rm -rf .local/data .local/log .local/run .local/dagster
