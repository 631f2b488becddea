"""Projection and read API metrics, beside the runtime's."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "switchboard_projection_events_total",
    "Stream messages the projection took, by outcome: applied, skipped (at or below the "
    "checkpoint: a redelivery), ignored (timer definitions), dead_lettered",
    ["stream", "outcome"],
)
BATCH_SECONDS = Histogram(
    "switchboard_projection_batch_seconds",
    "One batch: its transaction (read-model writes and checkpoint) until commit",
    ["stream"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_EVENTS = Histogram(
    "switchboard_projection_batch_events", "Events per batch", ["stream"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
)
WRITER = Gauge(
    "switchboard_projection_writer",
    "1 while this replica holds the writer lease and projects; 0 while it stands by (it "
    "serves the read API either way)",
)
LAG = Gauge(
    "switchboard_projection_lag",
    "Messages of the stream not yet delivered to the projection (at the last batch)",
    ["stream"],
)
CHECKPOINT = Gauge(
    "switchboard_projection_checkpoint", "Last stream sequence written", ["stream"]
)
RETRIES = Counter(
    "switchboard_projection_batch_retries_total",
    "Batches retried because the database failed or was unreachable", ["stream", "error"],
)
STALLED = Gauge(
    "switchboard_projection_stalled",
    "1 while the stream's current batch waits for the database to come back", ["stream"],
)
STATUSES_IGNORED = Counter(
    "switchboard_projection_statuses_ignored_total",
    "Delivery status events without a tenant, not applied (a status is scoped by its tenant)",
)
FOREIGN_STATUSES = Counter(
    "switchboard_projection_foreign_statuses_total",
    "Delivery statuses of one tenant naming another tenant's message: kept under the reporting "
    "tenant, never applied to the other's message",
)
API_REQUESTS = Counter(
    "switchboard_read_api_requests_total", "Read API requests by route and status code",
    ["route", "status"],
)
API_SECONDS = Histogram(
    "switchboard_read_api_seconds", "Read API request latency", ["route"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
COMMANDS = Counter(
    "switchboard_operator_commands_total",
    "Operator commands forwarded to the conversation service, by command and outcome: "
    "accepted, refused, unanswered (503), invalid_answer",
    ["command", "outcome"],
)
# People in the loop (ADR 0022). No tenant label: no projection metric has one (the agent's
# and the sender's do); the operator queue per tenant is in the operator API.
HANDOFF_WAIT_SECONDS = Histogram(
    "switchboard_handoff_wait_seconds",
    "How long a handoff waited for a person: from HandoffRequested to the step that ended the "
    "wait (outcome claimed; expired: released to the bot at the tenant's deadline; released: "
    "by an operator or a close, unclaimed), by source (user, agent, operator: a take-over "
    "waits ~0). Observed once per handoff, when the projection first writes its end "
    "(handoff_waits.py), whatever it re-applies later",
    ["source", "outcome"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)
HANDOFFS_WAITING = Gauge(
    "switchboard_handoffs_waiting",
    "Conversations waiting for a person now (mode waiting, in the read model: the operator "
    "queue), every tenant; every replica reports the same value (use max)",
)
HANDOFF_OLDEST_WAITING_SECONDS = Gauge(
    "switchboard_handoff_oldest_waiting_seconds",
    "Age of the oldest conversation waiting for a person (0 when none waits), from the read "
    "model; every replica reports the same value (use max)",
)
