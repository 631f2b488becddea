"""Prometheus metrics every service exposes on /metrics."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

# Prometheus keeps one exemplar per bucket, the last: a bucket's exemplar is replaced at most
# this often (the trace of a bucket's first observation after it, so rare slow ones keep theirs).
EXEMPLAR_INTERVAL_S = 1.0


def trace_exemplar(span: trace.Span | None = None) -> dict[str, str] | None:
    """The trace id of ``span`` (default: the current one), as a histogram observation's
    exemplar: a latency on a dashboard links to the trace it measured (served in the
    OpenMetrics format only). None when the trace is not sampled: it is never exported."""
    context = (span or trace.get_current_span()).get_span_context()
    if not (context.is_valid and context.trace_flags.sampled):
        return None
    return {"trace_id": format(context.trace_id, "032x")}


class TracedHistogram:
    """One series of a histogram whose observations carry their trace as exemplar, at most
    once per bucket per EXEMPLAR_INTERVAL_S: an exemplar on every observation (its trace id
    formatted, validated and time-stamped) is work a scrape never reads."""

    def __init__(self, series: Histogram, buckets: Sequence[float]) -> None:
        self._series = series
        self._bounds = tuple(buckets)  # the histogram's; the last bucket is +Inf
        self._due = [0.0] * (len(self._bounds) + 1)

    def observe(self, amount: float, span: trace.Span | None = None) -> None:
        bucket = bisect_left(self._bounds, amount)  # Prometheus: the first bound >= amount
        now = time.monotonic()
        if now >= self._due[bucket]:
            exemplar = trace_exemplar(span)
            if exemplar is not None:
                self._due[bucket] = now + EXEMPLAR_INTERVAL_S
                self._series.observe(amount, exemplar)
                return
        self._series.observe(amount)


EVENTS_PUBLISHED = Counter(
    "switchboard_events_published_total", "Events stored in JetStream", ["stream", "type"]
)
PUBLISH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
PUBLISH_SECONDS = Histogram(
    "switchboard_publish_seconds", "Publish until PubAck", ["stream"], buckets=PUBLISH_BUCKETS,
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
HANDLER_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60)
HANDLER_SECONDS = Histogram(
    "switchboard_handler_seconds", "Handler latency", ["consumer", "type"],
    buckets=HANDLER_BUCKETS,
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
