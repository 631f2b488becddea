from __future__ import annotations

import asyncio
import contextlib

import nats
from switchboard_contracts.topology import ADVISORIES, DEADLETTER, GATEWAY
from switchboard_devstack.waiting import eventually
from switchboard_runtime.bus import (
    Consumer,
    ConsumerSpec,
    Publisher,
    current_delivery,
    ensure_streams,
)


async def test_consumer_keeps_consuming_after_a_server_restart(nats_server, make_inbound
                                                               ) -> None:
    # nats.py #504: pull subscriptions can go silent after a restart; the loop must recover.
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await ensure_streams(js, (GATEWAY, DEADLETTER, ADVISORIES))
    seen: list[str] = []

    async def handle(event) -> None:
        seen.append(event.data.body)

    spec = ConsumerSpec(durable="survivor", stream=GATEWAY.name, filter_subjects=("gateway.>",))
    consumer = Consumer(js, spec, {"InboundMessageReceived": handle})
    await consumer.start()
    publisher = Publisher(js, GATEWAY.name)
    await publisher.publish("gateway.InboundMessageReceived", make_inbound("before"))
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.05)

    nats_server.stop()
    await eventually(lambda: not nc.is_connected, what="the client saw the server go")
    nats_server.start()
    for _ in range(100):
        if nc.is_connected:
            break
        await asyncio.sleep(0.1)
    await publisher.publish("gateway.InboundMessageReceived", make_inbound("after"))
    for _ in range(300):
        if "after" in seen:
            break
        await asyncio.sleep(0.05)
    await consumer.stop()
    await nc.close()
    assert seen == ["before", "after"]


async def test_a_restart_under_a_busy_consumer_loses_nothing_and_repeats_only_redeliveries(
        nats_server, make_inbound) -> None:
    # The server restarts while the consumer has a batch in hand (its acks and pull request
    # are lost with the connection), then more events come: each is handled, and handled
    # again only as a redelivery (delivery number > 1), never twice as a first delivery.
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await ensure_streams(js, (GATEWAY, DEADLETTER, ADVISORIES))
    handled: list[tuple[str, int]] = []
    restarted = asyncio.Event()

    async def handle(event) -> None:
        delivery = current_delivery()
        assert delivery is not None
        handled.append((event.data.body, delivery.number))
        if len(handled) == 5:  # mid-batch: the rest of it is in hand when the server goes
            nats_server.stop()
            nats_server.start()
            restarted.set()

    spec = ConsumerSpec(durable="busy", stream=GATEWAY.name, filter_subjects=("gateway.>",),
                        batch=16, ack_wait_s=2.0)
    publisher = Publisher(js, GATEWAY.name)
    before = [f"before {i}" for i in range(30)]
    for body in before:
        await publisher.publish("gateway.InboundMessageReceived", make_inbound(body))
    consumer = Consumer(js, spec, {"InboundMessageReceived": handle})
    await consumer.start()
    await eventually(restarted.is_set, what="the server restarted under the consumer")
    await eventually(lambda: nc.stats["reconnects"] >= 1, what="the client reconnected",
                     timeout_s=30)

    async def stream_back() -> bool:
        with contextlib.suppress(Exception):
            return bool(await js.stream_info(GATEWAY.name))
        return False

    await eventually(stream_back, what="JetStream back with the stream", timeout_s=30)
    after = [f"after {i}" for i in range(10)]
    for body in after:
        await publisher.publish("gateway.InboundMessageReceived", make_inbound(body))
    expected = set(before + after)
    await eventually(lambda: {body for body, _ in handled} == expected,
                     what="every event handled", timeout_s=60)
    await consumer.stop()
    await nc.close()
    firsts = [body for body, number in handled if number == 1]
    assert len(firsts) == len(set(firsts)), "an event handled twice as a first delivery"
