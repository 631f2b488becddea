"""PubAcks awaited on one inbox subscription per connection.

nats-py's ``request`` (which ``js.publish`` uses) makes a token from random bytes, a future
with a done callback and an ``asyncio.wait_for`` per request: about 20 us of CPU per publish
more than this, measured in a publish loop against the server. Here each request gets a reply
subject under one wildcard inbox subscription (subscribed again by nats-py after a
reconnect), and the answer is handed to its future by subject.

The answer's meaning is nats-py's: a 503 status is "no stream" (``NoStreamResponseError``), an
``error`` in the JSON is an ``APIError`` (its ``err_code`` tells, e.g., a wrong last sequence),
and no answer within the timeout is ``nats.errors.TimeoutError``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import weakref

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError

STATUS = "Status"
NO_RESPONDERS = "503"
_PUB_ACK_FIELDS = frozenset(field.name for field in dataclasses.fields(PubAck))


class AckWaiter:
    def __init__(self, nc: NATS) -> None:
        # Weakly: the registry below keeps a waiter as long as its connection lives, so the
        # waiter must not keep the connection alive itself.
        self._nc = weakref.ref(nc)
        self._inbox = nc.new_inbox()
        self._sent = 0
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._subscribed = False
        self._subscribing = asyncio.Lock()

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str],
                      timeout_s: float) -> PubAck:
        """Publish to JetStream and return its PubAck (raises as ``js.publish`` does)."""
        nc = self._nc()
        if nc is None:
            raise nats.errors.ConnectionClosedError
        if not self._subscribed:
            async with self._subscribing:
                if not self._subscribed:
                    await nc.subscribe(f"{self._inbox}.*", cb=self._on_answer)
                    self._subscribed = True
        self._sent += 1
        reply = f"{self._inbox}.{self._sent}"
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Msg] = loop.create_future()
        self._waiting[reply] = answer
        # A timer that fails the answer: less work than asyncio.timeout's cancellation.
        expiry = loop.call_later(timeout_s, _expire, answer)
        try:
            await nc.publish(subject, payload, reply=reply, headers=headers)
            msg = await answer
        finally:
            expiry.cancel()
            self._waiting.pop(reply, None)
        return _pub_ack(msg)

    async def _on_answer(self, msg: Msg) -> None:
        answer = self._waiting.pop(msg.subject, None)
        if answer is not None and not answer.done():
            answer.set_result(msg)


def _expire(answer: asyncio.Future[Msg]) -> None:
    if not answer.done():
        answer.set_exception(nats.errors.TimeoutError())


def _pub_ack(msg: Msg) -> PubAck:
    if not msg.data and msg.headers and msg.headers.get(STATUS) == NO_RESPONDERS:
        raise NoStreamResponseError
    answer = json.loads(msg.data)
    if "error" in answer:
        raise APIError.from_error(answer["error"])
    if answer.keys() <= _PUB_ACK_FIELDS:  # from_response's result, without its field scan
        return PubAck(**answer)
    return PubAck.from_response(answer)


_WAITERS: weakref.WeakKeyDictionary[NATS, AckWaiter] = weakref.WeakKeyDictionary()


def ack_waiter(nc: NATS) -> AckWaiter:
    """The connection's waiter (one subscription, whatever the number of publishers)."""
    waiter = _WAITERS.get(nc)
    if waiter is None:
        waiter = _WAITERS[nc] = AckWaiter(nc)
    return waiter
