# The same targets run locally and in CI (.ci/run calls `make lint test`).
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv/bin
BENCH ?=

.PHONY: setup run test bench lint

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --root-user-action=ignore "uv==0.13.8"
	@$(UV) sync --all-packages --locked --quiet

run: setup
	$(VENV)/switchboard-dev run

test: setup
	$(VENV)/pytest -q

bench: setup
	$(VENV)/python -m bench.run $(BENCH)

lint: setup
	$(VENV)/ruff check .
	$(VENV)/mypy libs/contracts/src libs/runtime/src libs/devstack/src libs/tenants/src libs/twilio-sim/src
