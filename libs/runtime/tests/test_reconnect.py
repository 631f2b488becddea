from __future__ import annotations

import asyncio

import nats
from switchboard_contracts.topology import ADVISORIES, DEADLETTER, GATEWAY
from switchboard_devstack.waiting import eventually
from switchboard_runtime.bus import Consumer, ConsumerSpec, Publisher, ensure_streams


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
