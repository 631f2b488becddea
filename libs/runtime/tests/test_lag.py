"""switchboard_consumer_lag follows the server, also while no message is delivered."""

from __future__ import annotations

import asyncio
from unittest import mock

from nats.js import JetStreamContext
from prometheus_client import REGISTRY
from switchboard_contracts.topology import GATEWAY
from switchboard_devstack.waiting import eventually
from switchboard_runtime.bus import Consumer, ConsumerSpec, Publisher

SUBJECT = "gateway.InboundMessageReceived"


def gauge(name: str, consumer: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"consumer": consumer})


async def test_lag_shows_the_backlog_of_a_stuck_handler_and_returns_to_zero(
    streams: JetStreamContext, make_inbound
) -> None:
    release = asyncio.Event()

    async def stuck(event) -> None:
        await release.wait()

    spec = ConsumerSpec(durable="test-lag", stream=GATEWAY.name, filter_subjects=(SUBJECT,),
                        ack_wait_s=30.0, batch=4, lag_interval_s=0.2)
    consumer = Consumer(streams, spec, {"InboundMessageReceived": stuck})
    await consumer.start()
    try:
        publisher = Publisher(streams, GATEWAY.name)
        for _ in range(30):
            await publisher.publish(SUBJECT, make_inbound())
        # One fetch (at most a batch of 4) delivered, the handler stuck on its first; the rest
        # waits, and is reported although nothing more is delivered.
        def backlog() -> bool:
            lag = gauge("switchboard_consumer_lag", "test-lag")
            delivered = gauge("switchboard_consumer_ack_pending", "test-lag")
            return lag is not None and delivered is not None and 1 <= delivered <= 4 and (
                lag + delivered == 30)

        await eventually(backlog)
        assert gauge("switchboard_consumer_lag", "test-lag-replay") == 0
        release.set()
        await eventually(lambda: gauge("switchboard_consumer_lag", "test-lag") == 0
                         and gauge("switchboard_consumer_ack_pending", "test-lag") == 0)
    finally:
        release.set()
        await consumer.stop()


async def test_lag_reporting_survives_nats_errors(streams: JetStreamContext, make_inbound) -> None:
    spec = ConsumerSpec(durable="test-lag-errors", stream=GATEWAY.name,
                        filter_subjects=(SUBJECT,), lag_interval_s=0.1)
    consumer = Consumer(streams, spec, {})
    real = streams.consumer_info
    failures = 0

    async def flaky(stream: str, durable: str, *args, **kwargs):
        nonlocal failures
        if failures < 3:
            failures += 1
            raise TimeoutError("nats: timeout")
        return await real(stream, durable, *args, **kwargs)

    with mock.patch.object(streams, "consumer_info", flaky):
        await consumer.start()
        try:
            await Publisher(streams, GATEWAY.name).publish(SUBJECT, make_inbound())
            # Three rounds failed; the next ones report again.
            await eventually(lambda: failures == 3
                             and gauge("switchboard_consumer_lag", "test-lag-errors") == 0)
        finally:
            await consumer.stop()
