"""The tenant's handoff webhook, on real NATS with a real HTTP receiver: signed, at least once,
retried with back-off, dead-lettered when it keeps failing, nothing for a tenant without one."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.js import JetStreamContext
from prometheus_client import REGISTRY
from sender.main import build
from sender.settings import SenderSettings
from sender_helpers import TENANT, USER, drained, record
from switchboard_contracts import Envelope, EventData
from switchboard_contracts.events.conversation import (
    HandoffClaimed,
    HandoffRequested,
)
from switchboard_contracts.topology import CONVERSATION
from switchboard_devstack.receiver import receiving
from switchboard_devstack.waiting import eventually
from switchboard_runtime import Service
from switchboard_runtime.bus import Publisher
from switchboard_runtime.deadletters.store import list_dead_letters
from switchboard_tenants import DirectoryPublisher, TokenCipher
from switchboard_tenants.kv import open_bucket
from switchboard_tenants.webhook_signature import verify

SECRET = "whsec-clinic-0123456789abcdef"
DURABLE = "sender-tenant-webhooks"


async def set_webhook(js: JetStreamContext, cipher: TokenCipher, url: str | None) -> None:
    """Publish the tenant as switchboard-tenants would, with (or without) a webhook."""
    tenant = record(cipher).model_copy(update={
        "webhook_url": url,
        "webhook_secret_encrypted": cipher.encrypt(SECRET) if url else None,
    })
    await DirectoryPublisher(await open_bucket(js)).publish(tenant)


@pytest.fixture
def start(nats_url: str, streams: None, cipher: TokenCipher
          ) -> Callable[..., AbstractAsyncContextManager[Service]]:
    """A sender with a quick back-off; the tenant's directory entry must be published first."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Service]:
        settings = SenderSettings(**{
            "nats_url": nats_url, "tenant_webhook_retry_delays_s": (0.2,),
            "tenant_webhook_max_deliver": 3, "tenant_webhook_timeout_s": 2.0, **overrides})
        async with build(settings).running() as service:
            yield service

    return run


def handoff_event(data: EventData) -> Envelope:
    return Envelope.wrap(data, correlation_id="SM" + uuid.uuid4().hex, tenant_id=TENANT,
                         conversation_id="cv" + uuid.uuid4().hex)


async def publish(js: JetStreamContext, envelope: Envelope) -> None:
    await Publisher(js, CONVERSATION.name).publish(
        f"conversation.{envelope.conversation_id}.{envelope.type}", envelope)


def requested() -> Envelope:
    return handoff_event(HandoffRequested(
        source="user", reason="human", turn=2,
        deadline_at=datetime.now(UTC) + timedelta(minutes=15)))


def count(outcome: str) -> float:
    value = REGISTRY.get_sample_value("switchboard_sender_tenant_webhooks_total",
                                      {"outcome": outcome})
    return value or 0.0


async def test_one_signed_notification_per_handoff_event(
    js: JetStreamContext, cipher: TokenCipher, start: Callable[..., Any]
) -> None:
    event, claimed = requested(), handoff_event(HandoffClaimed(operator_id="ann"))
    async with receiving([]) as receiver:
        await set_webhook(js, cipher, receiver.url)
        async with start():
            await publish(js, event)
            await publish(js, claimed)
            await eventually(lambda: len(receiver.requests) >= 2)
            await drained(js, CONVERSATION.name, DURABLE)

    assert len(receiver.requests) == 2  # exactly one each
    by_type = {json.loads(body)["type"]: (headers, body) for headers, body in receiver.requests}
    headers, body = by_type["HandoffRequested"]
    assert verify(SECRET, headers["X-Switchboard-Timestamp"],
                  headers["X-Switchboard-Signature"], body)
    assert not verify("another-secret-0123456789", headers["X-Switchboard-Timestamp"],
                      headers["X-Switchboard-Signature"], body)
    assert headers["X-Switchboard-Event-Id"] == str(event.event_id)
    assert headers["Content-Type"] == "application/json"
    sent = json.loads(body)
    assert {k: sent[k] for k in ("event_id", "tenant_id", "conversation_id", "correlation_id")
            } == {"event_id": str(event.event_id), "tenant_id": TENANT,
                  "conversation_id": event.conversation_id,
                  "correlation_id": event.correlation_id}
    assert datetime.fromisoformat(sent["occurred_at"]) == event.occurred_at
    assert sent["data"]["source"] == "user" and sent["data"]["turn"] == 2
    assert sent["data"]["deadline_at"]
    assert USER.removeprefix("whatsapp:+") not in body.decode()  # never the user's number
    assert json.loads(by_type["HandoffClaimed"][1])["data"] == {
        "operator_id": "ann", "command_id": None}


async def test_a_failing_receiver_gets_it_after_retries(
    js: JetStreamContext, cipher: TokenCipher, start: Callable[..., Any]
) -> None:
    failed, delivered = count("failed"), count("delivered")
    event = requested()
    async with receiving([500, 503]) as receiver:
        await set_webhook(js, cipher, receiver.url)
        async with start():
            await publish(js, event)
            await eventually(lambda: len(receiver.requests) >= 3)
            await drained(js, CONVERSATION.name, DURABLE)

    assert len(receiver.requests) == 3  # two refusals, then taken once
    assert {h["X-Switchboard-Event-Id"] for h, _ in receiver.requests} == {str(event.event_id)}
    headers, body = receiver.requests[-1]
    assert verify(SECRET, headers["X-Switchboard-Timestamp"],
                  headers["X-Switchboard-Signature"], body)
    assert (count("failed") - failed, count("delivered") - delivered) == (2, 1)
    assert (await js.stream_info("DEADLETTER")).state.messages == 0


async def test_a_receiver_that_keeps_failing_ends_in_the_dead_letters_with_the_reason(
    js: JetStreamContext, cipher: TokenCipher, start: Callable[..., Any]
) -> None:
    event = requested()
    async with receiving([500] * 10) as receiver:
        await set_webhook(js, cipher, receiver.url)
        async with start():
            await publish(js, event)
            letters = await eventually(lambda: list_dead_letters(js), timeout_s=20)

    assert len(receiver.requests) == 3  # max_deliver
    [letter] = [item.record for item in letters]
    assert (letter.consumer, letter.event_id, letter.deliveries) == (
        DURABLE, str(event.event_id), 3)
    assert letter.reason == "handler failed 3 times"
    assert letter.error == "WebhookFailed: the tenant's webhook answered HTTP 500"


async def test_an_unreachable_receiver_is_retried_then_dead_lettered(
    js: JetStreamContext, cipher: TokenCipher, start: Callable[..., Any]
) -> None:
    async with receiving([]) as receiver:
        closed = receiver.url  # nothing listens there once the receiver has stopped
    await set_webhook(js, cipher, closed)
    async with start():
        await publish(js, requested())
        letters = await eventually(lambda: list_dead_letters(js), timeout_s=20)
    error = letters[0].record.error or ""
    assert error.startswith("WebhookFailed: ConnectError")
    assert "127.0.0.1" not in error  # the URL (it may hold a token) stays out of the record


async def test_a_tenant_without_a_webhook_gets_nothing(
    js: JetStreamContext, cipher: TokenCipher, start: Callable[..., Any]
) -> None:
    skipped = count("no_webhook")
    async with receiving([]) as receiver:
        await set_webhook(js, cipher, None)
        async with start():
            await publish(js, requested())
            await drained(js, CONVERSATION.name, DURABLE)  # handled and acked
    assert receiver.requests == []
    assert count("no_webhook") - skipped == 1
    assert (await js.stream_info("DEADLETTER")).state.messages == 0
