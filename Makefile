# The project's commands. `make demo` and `make test` are the two a newcomer needs (README).
SHELL := /bin/bash
PY := .venv/bin/python
PACKAGES := shared services/ingest services/dispatcher services/dialer services/status clients/batchcalls_cli

.PHONY: help install up down status demo test test-unit k8s-validate check fmt bench-ingest bench-dispatch bench-dialer bench-status bench-pipeline bench-layouts chaos

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

install: ## install the Python environment and the Debian packages the stack needs
	@scripts/install.sh

up: install ## start Kafka, FerretDB, the gateway and the four services on loopback; waits until healthy
	@stack/stack.sh up

down: ## stop everything `make up` started
	@stack/stack.sh down

status: ## one line per part of the local stack
	@stack/stack.sh status

demo: install ## start the stack and run a sample batch with the simulated provider
	@scripts/demo.sh

test: install ## unit + integration + e2e against the real stack (started and stopped as needed)
	@scripts/test.sh

test-unit: install ## the unit tests only: no broker, no database
	@$(PY) -m pytest -m unit -q

k8s-validate: install ## render every kustomize overlay and validate it offline (schemas, CRDs, code wiring, alerts)
	@$(PY) -m pytest -p no:cacheprovider -q tests/unit/deploy

check: install ## ruff, mypy --strict and the import contracts; changes nothing
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy $(PACKAGES)
	@.venv/bin/lint-imports

fmt: install ## fix what ruff can fix
	@$(PY) -m ruff check --fix .
	@$(PY) -m ruff format .

bench-ingest: up ## upload a 20 MB CSV through the gateway → bench/results/ingest.json
	@$(PY) -m bench.ingest

bench-dispatch: up ## limits, fairness, cancel, memory and throughput → bench/results/dispatch.json
	@$(PY) -m bench.dispatch

bench-dialer: up ## one dialer process, simulated provider → bench/results/dialer.json
	@$(PY) -m bench.dialer

bench-status: up ## projection and query API at 100,000 contacts → bench/results/status.json
	@$(PY) -m bench.status

bench-pipeline: up ## 100,000 contacts from upload to all terminal, instant calls → bench/results/pipeline.json
	@$(PY) -m bench.pipeline

bench-layouts: up ## the dispatcher's document layouts on FerretDB (ADR 0025) → bench/results/layouts.json
	@$(PY) -m bench.layouts

chaos: up ## a seeded fault-injection run → bench/results/chaos.json
	@$(PY) -m bench.chaos
