from __future__ import annotations

import uuid

import pytest
from nats.js import JetStreamContext
from switchboard_contracts import Envelope
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.topology import ADVISORIES, DEADLETTER, GATEWAY
from switchboard_runtime.bus import ensure_streams


def inbound(body: str = "hello there", sid: str | None = None) -> Envelope:
    sid = sid or "SM" + uuid.uuid4().hex
    data = InboundMessageReceived(
        message_sid=sid,
        account_sid="AC" + "0" * 32,
        from_address="whatsapp:+14155550101",
        to_address="whatsapp:+14155550199",
        body=body,
    )
    return Envelope.wrap(data, correlation_id=sid, tenant_id="tenant-a")


@pytest.fixture
def make_inbound():
    return inbound


@pytest.fixture
async def streams(js: JetStreamContext) -> JetStreamContext:
    await ensure_streams(js, (GATEWAY, DEADLETTER, ADVISORIES))
    return js
