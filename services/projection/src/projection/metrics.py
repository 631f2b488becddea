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
