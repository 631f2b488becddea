"""Gateway metrics, beside the runtime's."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "switchboard_gateway_webhooks_total",
    "Webhooks by endpoint and outcome (accepted, duplicate, orphaned, rejected_<reason>)",
    ["endpoint", "outcome"],
)
RATE_LIMITED = Counter(
    "switchboard_gateway_rate_limited_total", "Requests refused by a rate limit", ["scope"]
)
WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0)
WEBHOOK_SECONDS = Histogram(
    "switchboard_gateway_webhook_seconds", "Webhook handling time until the answer", ["endpoint"],
    buckets=WEBHOOK_BUCKETS,
)
