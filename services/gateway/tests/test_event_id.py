"""Event ids derived from the fact are uuid5 in the gateway's namespace: a retried webhook
names the same event, in any process, whatever computes the SHA-1."""

from __future__ import annotations

import uuid

from gateway.webhooks import EVENT_NAMESPACE, event_id


def test_event_id_is_uuid5_of_the_fact() -> None:
    for name in ("InboundMessageReceived:SM" + "0" * 32, "DeliveryStatusReported:SMx:read",
                 "", "é€:" + "x" * 300):
        assert event_id(name) == uuid.uuid5(EVENT_NAMESPACE, name)
    assert event_id("a") == event_id("a") != event_id("b")  # the prefix is not consumed
