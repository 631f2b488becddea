from __future__ import annotations

import pytest
from nats.js.errors import BadRequestError
from switchboard_contracts.topology import GATEWAY
from switchboard_runtime.bus import Publisher, stream_config

# JetStream's answer when the Nats-Expected-Stream header names another stream than the one
# that stores the subject ("expected stream does not match").
STREAM_NOT_MATCH = 10060


async def test_same_msg_id_is_stored_once(streams, make_inbound) -> None:
    publisher = Publisher(streams, GATEWAY.name)
    first = make_inbound(sid="SM" + "1" * 32)
    again = make_inbound(sid="SM" + "1" * 32)  # a retried webhook: new event_id, same fact

    ack1 = await publisher.publish("gateway.InboundMessageReceived", first, msg_id="SM" + "1" * 32)
    ack2 = await publisher.publish("gateway.InboundMessageReceived", again, msg_id="SM" + "1" * 32)

    assert not ack1.duplicate
    assert ack2.duplicate
    assert ack2.seq == ack1.seq
    info = await streams.stream_info(GATEWAY.name)
    assert info.state.messages == 1


async def test_default_msg_id_is_the_event_id(streams, make_inbound) -> None:
    publisher = Publisher(streams, GATEWAY.name)
    event = make_inbound()
    await publisher.publish("gateway.InboundMessageReceived", event)
    assert (await publisher.publish("gateway.InboundMessageReceived", event)).duplicate


async def test_publish_to_a_stream_the_service_does_not_own_fails(streams, make_inbound) -> None:
    publisher = Publisher(streams, "DEADLETTER")
    with pytest.raises(BadRequestError) as refused:
        await publisher.publish("gateway.InboundMessageReceived", make_inbound())
    assert refused.value.err_code == STREAM_NOT_MATCH
    assert (await streams.stream_info(GATEWAY.name)).state.messages == 0


def test_stream_settings_are_overridable_by_env(monkeypatch) -> None:
    monkeypatch.setenv("SB_STREAM_GATEWAY_REPLICAS", "3")
    monkeypatch.setenv("SB_STREAM_DEFAULT_STORAGE", "memory")
    monkeypatch.setenv("SB_STREAM_GATEWAY_MAX_AGE_DAYS", "2")
    config = stream_config(GATEWAY)
    assert config.num_replicas == 3
    assert config.storage.value == "memory"
    assert config.max_age == 2 * 86400
