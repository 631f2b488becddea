"""RetryingPublisher on a real nats-server: "no responders" then stored, an unanswered
attempt then a duplicate PubAck counted as stored, and the deadline respected.

An unanswered attempt is made real by pausing the server (SIGSTOP): the attempt's message
waits in the socket, and is stored once the server runs again (SIGCONT), after its waiter
gave up."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import nats.errors
import pytest
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError, NoStreamResponseError
from switchboard_contracts import Envelope
from switchboard_contracts.topology import GATEWAY
from switchboard_devstack.embedded import NatsServer
from switchboard_devstack.waiting import eventually
from switchboard_runtime.bus import Publisher, RetryingPublisher

SUBJECT = "gateway.InboundMessageReceived"


@contextmanager
def paused(server: NatsServer) -> Iterator[None]:
    pid = server._proc.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


class Attempts:
    """Counts the attempts that reached the publisher (each one is a publish on the wire)."""

    def __init__(self, retrying: RetryingPublisher, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        inner: Publisher = retrying._publisher
        publish = inner.publish

        async def counted(*args: object, **kwargs: object) -> object:
            self.count += 1
            return await publish(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(inner, "publish", counted)


async def stored(js: JetStreamContext) -> int:
    return (await js.stream_info(GATEWAY.name)).state.messages


async def test_no_responders_is_retried_until_the_stream_answers(
        js: JetStreamContext, make_inbound, monkeypatch: pytest.MonkeyPatch) -> None:
    retrying = RetryingPublisher(js, GATEWAY.name, timeout_s=20.0, attempt_timeout_s=1.0)
    attempts = Attempts(retrying, monkeypatch)
    event: Envelope = make_inbound()
    # No stream stores the subject yet: "no responders" at once, as during an election.
    publish = asyncio.create_task(retrying.publish(SUBJECT, event, msg_id="SM1"))
    await eventually(lambda: attempts.count >= 2, what="a retry after no responders")
    await js.add_stream(StreamConfig(name=GATEWAY.name, subjects=["gateway.>"]))
    result = await publish
    assert not result.duplicate
    assert await stored(js) == 1


async def test_a_duplicate_after_an_unanswered_attempt_counts_as_stored(
        js: JetStreamContext, streams, nats_server: NatsServer, make_inbound,
        monkeypatch: pytest.MonkeyPatch) -> None:
    retrying = RetryingPublisher(js, GATEWAY.name, timeout_s=30.0, attempt_timeout_s=0.3)
    attempts = Attempts(retrying, monkeypatch)
    with paused(nats_server):
        publish = asyncio.create_task(retrying.publish(SUBJECT, make_inbound(), msg_id="SM2"))
        # The first attempt is written and gives up unanswered; a later one is waiting.
        await eventually(lambda: attempts.count >= 2, what="an attempt after a timeout")
    # The first attempt's message is stored now; the waiting one is answered "duplicate".
    result = await publish
    assert result.ack.duplicate  # what the stream said...
    assert not result.duplicate  # ...but it was our own unanswered write
    assert await stored(js) == 1


async def test_a_duplicate_without_an_unanswered_attempt_is_a_duplicate(
        streams, make_inbound) -> None:
    retrying = RetryingPublisher(streams, GATEWAY.name, timeout_s=5.0, attempt_timeout_s=1.0)
    assert not (await retrying.publish(SUBJECT, make_inbound(), msg_id="SM3")).duplicate
    assert (await retrying.publish(SUBJECT, make_inbound(), msg_id="SM3")).duplicate


async def test_no_responders_past_the_deadline_raises_no_later_than_it(
        js: JetStreamContext, make_inbound) -> None:
    retrying = RetryingPublisher(js, GATEWAY.name, timeout_s=0.5, attempt_timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(NoStreamResponseError):
        await retrying.publish(SUBJECT, make_inbound(), msg_id="SM4")
    assert 0.25 <= time.monotonic() - started <= 0.5 + 0.2  # retried, then gave up in time


async def test_an_unanswered_last_attempt_ends_with_the_deadline(
        streams, nats_server: NatsServer, make_inbound) -> None:
    # The first attempt gives up at 0.7 s; the second starts at 0.75 s with 0.25 s left of
    # the deadline: it ends with the deadline (1 s), not a whole attempt later (1.45 s).
    retrying = RetryingPublisher(streams, GATEWAY.name, timeout_s=1.0, attempt_timeout_s=0.7)
    with paused(nats_server):
        started = time.monotonic()
        with pytest.raises(nats.errors.TimeoutError):
            await retrying.publish(SUBJECT, make_inbound(), msg_id="SM5")
        elapsed = time.monotonic() - started
    assert 0.95 <= elapsed <= 1.0 + 0.25


async def test_a_refusal_by_the_stream_is_not_retried(streams, make_inbound) -> None:
    retrying = RetryingPublisher(streams, "DEADLETTER", timeout_s=5.0, attempt_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(BadRequestError):  # expected stream does not match
        await retrying.publish(SUBJECT, make_inbound(), msg_id="SM6")
    assert time.monotonic() - started < 1.0
