"""The tenant's handoff webhook (ADR 0022): each handoff event of a tenant's conversations is
POSTed, signed, to the tenant's own system, at least once.

A durable consumer of the conversation's handoff events; for a tenant with a webhook it sends
one JSON body signed with the tenant's secret (``switchboard_tenants.webhook_signature``). A
connection error, a timeout or any answer other than 2xx (redirects are not followed) raises:
the runtime redelivers with the back-off of ``TENANT_WEBHOOK_RETRY_DELAYS_S`` and, after
``TENANT_WEBHOOK_MAX_DELIVER`` deliveries, files the event in the dead-letter stream with the
last error (replayable with ``switchboard-deadletters``). A tenant without a webhook: nothing.

The body carries the event's identity and an allow-list of its payload fields: never the
user's phone number or what they wrote. Each attempt is signed anew (its own timestamp), so a
retry hours later still verifies; receivers deduplicate on ``X-Switchboard-Event-Id``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Protocol

import httpx
from prometheus_client import Counter
from switchboard_contracts import Event
from switchboard_contracts.events.conversation import (
    HandoffClaimed,
    HandoffExpired,
    HandoffReleased,
    HandoffRequested,
)
from switchboard_contracts.topology import CONVERSATION
from switchboard_runtime import Service
from switchboard_runtime.bus import ConsumerSpec, Handlers
from switchboard_runtime.telemetry import get_logger
from switchboard_tenants.webhook_signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

from .settings import SenderSettings

log = get_logger(__name__)

HandoffEvent = HandoffRequested | HandoffClaimed | HandoffReleased | HandoffExpired
WEBHOOK_EVENTS: tuple[type[HandoffEvent], ...] = (
    HandoffRequested, HandoffClaimed, HandoffReleased, HandoffExpired,
)
# What a webhook tells of each event. An allow-list, so that a field added to an event later
# reaches tenants only once someone decided it may (none of these names or quotes the user).
PUBLIC_FIELDS: dict[str, frozenset[str]] = {
    HandoffRequested.TYPE: frozenset({"source", "reason", "operator_id", "turn", "deadline_at"}),
    HandoffClaimed.TYPE: frozenset({"operator_id", "command_id"}),
    HandoffReleased.TYPE: frozenset({"reason", "operator_id", "command_id"}),
    HandoffExpired.TYPE: frozenset({"outcome"}),
}
USER_AGENT = "Switchboard-Webhooks/1"

DELIVERIES = Counter(
    "switchboard_sender_tenant_webhooks_total",
    "Tenant webhook attempts by outcome: delivered (2xx), failed (redelivered later, or "
    "dead-lettered on the last delivery), no_webhook (the tenant has none: nothing sent)",
    ["outcome"],
)


class WebhookFailed(Exception):
    """The tenant's endpoint did not take the event; the runtime redelivers it."""


class WebhookDirectory(Protocol):
    def webhook(self, tenant_id: str) -> tuple[str, str] | None: ...


def webhook_spec(settings: SenderSettings) -> ConsumerSpec:
    return ConsumerSpec(
        durable="sender-tenant-webhooks", stream=CONVERSATION.name,
        filter_subjects=tuple(f"conversation.*.{kind.TYPE}" for kind in WEBHOOK_EVENTS),
        ack_wait_s=30.0, max_deliver=settings.tenant_webhook_max_deliver,
        retry_delays_s=settings.tenant_webhook_retry_delays_s,
        # One slow tenant endpoint must not hold the others' notifications back.
        batch=16, concurrency=16, long_running=True,
    )


def webhook_body(event: Event[HandoffEvent]) -> bytes:
    env = event.envelope
    return json.dumps({
        "type": env.type,
        "event_id": str(env.event_id),
        "occurred_at": env.occurred_at.isoformat(),
        "tenant_id": env.tenant_id,
        "conversation_id": env.conversation_id,
        "correlation_id": env.correlation_id,
        "data": event.data.model_dump(mode="json", include=set(PUBLIC_FIELDS[env.type])),
    }, separators=(",", ":")).encode()


class TenantWebhooks:
    def __init__(self, directory: WebhookDirectory, client: httpx.AsyncClient,
                 clock: Callable[[], float] = time.time) -> None:
        self._directory = directory
        self._client = client
        self._clock = clock

    async def on_handoff_event(self, event: Event[HandoffEvent]) -> None:
        env = event.envelope
        target = self._directory.webhook(env.tenant_id) if env.tenant_id else None
        if target is None:
            DELIVERIES.labels("no_webhook").inc()
            return
        url, secret = target
        body = webhook_body(event)
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json", "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body),
            EVENT_ID_HEADER: str(env.event_id),
        }
        try:
            # Streamed and never read: only the status matters, whatever size the answer is.
            async with self._client.stream("POST", url, content=body,
                                           headers=headers) as response:
                status = response.status_code
        except httpx.HTTPError as exc:
            DELIVERIES.labels("failed").inc()
            # The error's type only: its text names the URL, which may hold a token.
            raise WebhookFailed(f"{type(exc).__name__} calling the tenant's webhook") from None
        if not 200 <= status < 300:
            DELIVERIES.labels("failed").inc()
            raise WebhookFailed(f"the tenant's webhook answered HTTP {status}")
        DELIVERIES.labels("delivered").inc()
        log.info("tenant webhook delivered", status=status)


def attach_tenant_webhooks(
    service: Service, settings: SenderSettings, directory: WebhookDirectory
) -> None:
    """Consume the handoff events for the tenants' webhooks, from a running service."""
    client = httpx.AsyncClient(timeout=settings.tenant_webhook_timeout_s, follow_redirects=False)
    webhooks = TenantWebhooks(directory, client)
    handlers = Handlers()
    for kind in WEBHOOK_EVENTS:
        handlers = handlers.on(kind, webhooks.on_handoff_event)
    service.consume(webhook_spec(settings), handlers)

    async def close(_: Service) -> None:
        await client.aclose()

    service.on_stop(close)
