"""Prometheus metrics every service exposes on /metrics."""

from __future__ import annotations

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram


def trace_exemplar(span: trace.Span | None = None) -> dict[str, str] | None:
    """The trace id of ``span`` (default: the current one), as a histogram observation's
    exemplar: a latency on a dashboard links to the trace it measured (served in the
    OpenMetrics format only)."""
    context = (span or trace.get_current_span()).get_span_context()
    return {"trace_id": format(context.trace_id, "032x")} if context.is_valid else None


EVENTS_PUBLISHED = Counter(
    "switchboard_events_published_total", "Events stored in JetStream", ["stream", "type"]
)
PUBLISH_SECONDS = Histogram(
    "switchboard_publish_seconds", "Publish until PubAck", ["stream"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
EVENTS_HANDLED = Counter(
    "switchboard_events_handled_total",
    "Events a consumer finished, by outcome (ok, failed, ignored, dead_lettered)",
    ["consumer", "type", "outcome"],
)
EVENTS_REDELIVERED = Counter(
    "switchboard_events_redelivered_total", "Deliveries after the first", ["consumer"]
)
DEAD_LETTERS = Counter(
    "switchboard_dead_letters_total",
    "Events moved to the dead-letter stream",
    ["consumer", "reason"],
)
HANDLER_SECONDS = Histogram(
    "switchboard_handler_seconds", "Handler latency", ["consumer", "type"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONSUMER_LAG = Gauge(
    "switchboard_consumer_lag",
    "Messages not yet delivered to the consumer (num_pending), read from the server on a timer",
    ["consumer"],
)
CONSUMER_ACK_PENDING = Gauge(
    "switchboard_consumer_ack_pending",
    "Messages delivered to the consumer and not yet acknowledged, read from the server",
    ["consumer"],
)
