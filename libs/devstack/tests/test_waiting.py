"""The shared waiting helpers: ``drained`` waits past a redelivery, however long its delay."""

from __future__ import annotations

import asyncio
import time

import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StreamConfig
from switchboard_devstack.waiting import drained, eventually

ACK_WAIT_S = 1.5


async def test_eventually_returns_the_first_truthy_answer() -> None:
    answers = iter([None, [], ["found"]])

    async def check() -> list[str] | None:
        return next(answers)

    assert await eventually(check, interval_s=0) == ["found"]


async def test_eventually_fails_naming_what_it_waited_for() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="the reply not met within"):
        await eventually(never, timeout_s=0.1, interval_s=0.02, what="the reply")


async def test_drained_waits_until_an_unacknowledged_message_is_redelivered_and_handled(
        js: JetStreamContext) -> None:
    await js.add_stream(StreamConfig(name="WORK", subjects=["work.>"]))
    subscription = await js.pull_subscribe(
        "work.>", durable="worker", config=ConsumerConfig(ack_wait=ACK_WAIT_S))
    await js.publish("work.one", b"1")
    handled: list[int] = []

    async def worker() -> None:
        """Drops the first delivery (a crashed handler), acks the redelivery."""
        while len(handled) < 2:
            for msg in await subscription.fetch(1, timeout=5):
                handled.append(msg.metadata.num_delivered)
                if msg.metadata.num_delivered > 1:
                    await msg.ack()

    working = asyncio.create_task(worker())
    await eventually(lambda: asyncio.sleep(0, handled))  # the first delivery is in hand
    started = time.monotonic()
    await drained(js, ["WORK"])
    # Not before the redelivery was handled: a check made now sees everything that will happen.
    assert handled == [1, 2]
    assert time.monotonic() - started >= ACK_WAIT_S * 0.8
    await working


async def test_drained_returns_at_once_when_nothing_is_left(js: JetStreamContext) -> None:
    await js.add_stream(StreamConfig(name="WORK", subjects=["work.>"]))
    subscription = await js.pull_subscribe("work.>", durable="worker")
    await js.publish("work.one", b"1")
    [msg] = await subscription.fetch(1, timeout=5)
    await msg.ack()
    started = time.monotonic()
    await drained(js)
    assert time.monotonic() - started < ACK_WAIT_S
