# Thin targets; the work is in tools/ and the packages. `make run` and `make test` are the two
# commands a fresh machine needs.
PY := .venv/bin/python
# The services default to production; these targets run and test the development set-up.
export ENVIRONMENT ?= development
PYTEST := $(PY) -m pytest
EMAIL ?= a@example.com
ROLE ?= user
DURATION ?= 120
CHAOS_FLAGS ?=

.PHONY: help bootstrap web run test test-local test-unit test-integration test-e2e lint typecheck token asyncapi bench reconcile broker-users broker-definitions chaos

help:
	@echo "make run | web | test | test-unit | test-integration | test-e2e | lint | typecheck | token EMAIL=.. ROLE=.. | asyncapi | bench | chaos DURATION=.. | broker-users"

.venv/.synced: uv.lock pyproject.toml libs/common/pyproject.toml services/*/pyproject.toml tools/bootstrap.sh
	./tools/bootstrap.sh
	@touch $@

bootstrap: .venv/.synced

# The web console (web/ -> web/dist, served by the gateway at /): a clean install from the lockfile.
web:
	cd web && npm ci --no-audit --no-fund && npm run build

run: bootstrap
	@$(PY) tools/webbuild.py  # only when web/dist is missing or older than web/; never fails the run
	$(PY) tools/devstack.py

test: bootstrap
	$(PYTEST) -m "unit or integration or e2e"

test-local: bootstrap  # everything but the tests that restart this machine's RabbitMQ or Redis
	$(PYTEST) -m "(unit or integration or e2e) and not disruptive"

test-unit: bootstrap
	$(PYTEST) -m unit

test-integration: bootstrap
	$(PYTEST) -m integration

test-e2e: bootstrap
	$(PYTEST) -m e2e

lint: bootstrap
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# mypy in strict mode over the sources of libs/common and the services ([tool.mypy] in pyproject.toml).
typecheck: bootstrap
	$(PY) -m mypy

token: bootstrap
	@$(PY) -m gateway.auth.dev_token --email "$(EMAIL)" --role "$(ROLE)"

asyncapi: bootstrap
	$(PY) -m common.asyncapi > docs/asyncapi.json

bench: bootstrap
	PYTHONPATH=tools:. $(PY) bench/compare_bench.py
	PYTHONPATH=tools:. $(PY) bench/credits_bench.py
	PYTHONPATH=tools:. $(PY) bench/chat_bench.py
	PYTHONPATH=tools:. $(PY) bench/ratelimit_bench.py

reconcile: bootstrap
	$(PY) -m credits.reconcile

# One RabbitMQ user per service on the local broker (rabbitmqctl; run as root or the rabbitmq
# user). Idempotent; guest is left alone. Passwords and URLs: .data/broker-users.{json,env}.
broker-users: bootstrap
	PYTHONPATH=tools $(PY) tools/broker_users.py

# The permissions-only definitions the k8s ConfigMap carries (deploy/k8s/rabbitmq-definitions.yaml).
broker-definitions: bootstrap
	$(PY) -m common.bus.definitions --namespace $${BUS_NAMESPACE:-aisaas}

chaos: bootstrap  # a soak under injected faults, then the invariants: make chaos DURATION=600 CHAOS_FLAGS=--broker-faults
	PYTHONPATH=tools:. $(PY) -m chaos --duration $(DURATION) $(CHAOS_FLAGS)
