from __future__ import annotations

import asyncio
import time

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from switchboard_runtime.bus.pull import PullFetcher


async def _consumer(js: JetStreamContext, name: str) -> PullFetcher:
    await js.add_stream(name=name, subjects=[f"{name.lower()}.>"])
    await js.add_consumer(name, ConsumerConfig(durable_name="d", ack_policy=AckPolicy.EXPLICIT))
    fetcher = PullFetcher(js._nc, name, "d", heartbeat_s=0.3, check_s=0.1)
    await fetcher.start()
    return fetcher


async def test_an_idle_long_poll_sends_one_request_and_lives_on_heartbeats(nc, js) -> None:
    fetcher = await _consumer(js, "IDLE")
    sent = nc.stats["out_msgs"]
    started = time.monotonic()
    # 2 s is several times the lost-request limit (2 heartbeats): only heartbeats keep it.
    assert await fetcher.fetch(10, wait_s=2.0) == []
    assert time.monotonic() - started > 1.5
    assert fetcher.status == "408"  # it expired at the server, not lost and asked again
    assert nc.stats["out_msgs"] - sent == 1
    await fetcher.stop()


async def _request_sent(nc, before: int) -> None:
    deadline = time.monotonic() + 10
    while nc.stats["out_msgs"] == before:
        assert time.monotonic() < deadline, "no pull request sent"
        await asyncio.sleep(0.01)


async def test_a_long_poll_delivers_a_new_message_at_once(nc, js) -> None:
    fetcher = await _consumer(js, "FRESH")
    before = nc.stats["out_msgs"]
    waiting = asyncio.create_task(fetcher.fetch(10, wait_s=30.0))
    await _request_sent(nc, before)  # then published: delivered to the waiting request
    await js.publish("fresh.x", b"hello")
    started = time.monotonic()
    msgs = await asyncio.wait_for(waiting, 10)
    assert [m.data for m in msgs] == [b"hello"]
    assert time.monotonic() - started < 5  # not at the poll's end (30 s)
    await msgs[0].ack()
    await fetcher.stop()


async def test_no_wait_takes_the_whole_answer_in_order(js) -> None:
    fetcher = await _consumer(js, "BACKLOG")
    for i in range(250):
        await js.publish("backlog.x", str(i).encode())
    first = await fetcher.fetch(200)
    assert [m.data for m in first] == [str(i).encode() for i in range(200)]
    rest = await fetcher.fetch(200)
    assert [m.data for m in rest] == [str(i).encode() for i in range(200, 250)]
    assert fetcher.status == "404"  # the batch was not filled: the server said so
    assert await fetcher.fetch(200) == []
    await fetcher.stop()


async def test_stop_returns_at_once_from_a_long_poll(nc, js) -> None:
    fetcher = await _consumer(js, "STOPPED")
    before = nc.stats["out_msgs"]
    waiting = asyncio.create_task(fetcher.fetch(10, wait_s=30.0))
    await _request_sent(nc, before)
    assert await fetcher.stop() == []
    assert await asyncio.wait_for(waiting, 5) == []
