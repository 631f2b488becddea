from __future__ import annotations

import asyncio
import gc
import json
import weakref

import nats
import nats.errors
import pytest
from nats.js.errors import BadRequestError, NoStreamResponseError
from switchboard_contracts.topology import GATEWAY
from switchboard_runtime.bus import Publisher, ensure_streams, stream_config

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


async def test_a_subject_no_stream_stores_is_no_stream_response(streams, make_inbound) -> None:
    with pytest.raises(NoStreamResponseError):
        await Publisher(streams, GATEWAY.name).publish("nowhere.x", make_inbound())


async def test_no_answer_is_a_nats_timeout(nc, streams, make_inbound) -> None:
    await nc.subscribe("silent.x")  # takes the message, never answers
    with pytest.raises(nats.errors.TimeoutError):
        await Publisher(streams, GATEWAY.name, timeout_s=0.3).publish("silent.x", make_inbound())


async def test_concurrent_publishes_each_get_their_own_puback(streams, make_inbound) -> None:
    publisher = Publisher(streams, GATEWAY.name)
    events = [make_inbound(sid=f"SM{i:032d}") for i in range(50)]
    acks = await asyncio.gather(*(publisher.publish("gateway.InboundMessageReceived", e)
                                  for e in events))
    stored = [await streams.get_msg(GATEWAY.name, ack.seq) for ack in acks]
    assert [json.loads(m.data)["event_id"] for m in stored] == [str(e.event_id) for e in events]


async def test_a_closed_connection_is_not_kept_alive_by_its_ack_waiter(
        nats_url, make_inbound) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, (GATEWAY,))
    await Publisher(js, GATEWAY.name).publish("gateway.InboundMessageReceived", make_inbound())
    gone = weakref.ref(nc)
    await nc.close()
    del nc, js
    gc.collect()
    assert gone() is None
