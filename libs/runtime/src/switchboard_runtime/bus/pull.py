"""Batches from a durable pull consumer, with one inbox subscription and a callback.

nats-py's ``fetch`` waits for each message with a task and a timer of its own: about 30-60 us
of CPU per message, against about 7 us here. This speaks JetStream's pull protocol directly:
a request on ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`` asks for up to ``batch``
messages, and the server answers on the request's reply subject with the messages, then a
status when it could not fill the batch (404 no messages, 408 request timeout, 409 ...).

Two kinds of request:
- ``no_wait`` (``fetch(batch)``): answered at once with what is available; a caught-up caller
  asks again after a pause (the projection).
- a long poll (``fetch(batch, wait_s=...)``): the server holds the request until a message
  comes (delivered at once) or ``wait_s`` passes, and sends an idle heartbeat meanwhile. No
  heartbeat for two intervals, or a reconnect of the client, means the request was lost (a
  restarted server forgets it): ``fetch`` returns [] and the next call asks again. nats-py
  subscribes the inbox again by itself after a reconnect.

Each request gets its own reply subject under the inbox, so a late status of an earlier
request is never taken for the current one's. Every delivered message is kept, in delivery
order, until a ``fetch`` returns it (also one arriving after its request ended): the
projection acknowledges a batch with one ``AckPolicy.ALL`` ack, which must never cover a
message it has not seen. ``stop`` hands back what was delivered and not taken (to be nak'd);
a message the server sent just before it saw the inbox go is redelivered after ``ack_wait``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

STATUS = "Status"
HEARTBEAT = "100"
# The statuses that only say a request ended: nothing (more) to deliver, or it expired.
ENDED_QUIETLY = frozenset({"404", "408"})


@dataclass(slots=True)
class _Request:
    reply: str
    remaining: int  # messages it can still bring
    heard_at: float  # when the server last sent something for it
    reconnects: int  # the client's reconnect count when it was sent


class PullFetcher:
    def __init__(self, nc: NATS, stream: str, durable: str, *, api_prefix: str = "$JS.API",
                 heartbeat_s: float = 5.0, check_s: float = 1.0) -> None:
        self._nc = nc
        self._next = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._heartbeat_s = heartbeat_s
        self._check_s = check_s  # how often a waiting long poll checks it is still alive
        self._sub: Subscription | None = None
        self._delivered: list[Msg] = []
        self._open: _Request | None = None
        self._sent = 0
        self._stopped = False
        self._wake = asyncio.Event()
        self.status: str | None = None  # of the last request that ended ("404": nothing)

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_message)

    async def stop(self) -> list[Msg]:
        """Stop receiving; returns the messages delivered and not taken (nak them)."""
        self._stopped = True
        self._wake.set()  # a fetch waiting meanwhile returns []
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        left, self._delivered = self._delivered, []
        return left

    async def fetch(self, batch: int, wait_s: float | None = None) -> list[Msg]:
        """Up to ``batch`` messages in delivery order, [] when none came. Without ``wait_s``
        only those available now (the caller bounds the wait for the answer with
        ``asyncio.timeout``); with it, waits up to ``wait_s`` for the first one."""
        if not self._delivered and not self._stopped:
            if self._open is None or self._open.reconnects != self._reconnects():
                await self._request(batch, wait_s)
            # A no_wait answer is taken whole (it comes at once); a long poll returns with
            # its first message(s).
            await self._until_answered(whole=wait_s is None)
        taken, self._delivered = self._delivered[:batch], self._delivered[batch:]
        return taken

    def _reconnects(self) -> int:
        return int(self._nc.stats["reconnects"])

    async def _request(self, batch: int, wait_s: float | None) -> None:
        self._sent += 1
        reply = f"{self._inbox}.{self._sent}"
        body: dict[str, object] = {"batch": batch}
        if wait_s is None:
            body["no_wait"] = True
        else:
            body["expires"] = int(wait_s * 1e9)
            body["idle_heartbeat"] = int(self._heartbeat_s * 1e9)
        self.status = None
        self._open = _Request(reply, batch, asyncio.get_running_loop().time(), self._reconnects())
        await self._nc.publish(self._next, json.dumps(body).encode(), reply=reply)

    async def _until_answered(self, whole: bool) -> None:
        loop = asyncio.get_running_loop()
        while self._open is not None and not self._stopped and (whole or not self._delivered):
            self._wake.clear()
            try:
                async with asyncio.timeout(self._check_s):
                    await self._wake.wait()
            except TimeoutError:
                request = self._open
                if request is not None and (
                    request.reconnects != self._reconnects()
                    or loop.time() - request.heard_at > 2 * self._heartbeat_s
                ):
                    self._open = None  # lost with the connection or the server: ask again

    async def _on_message(self, msg: Msg) -> None:
        request = self._open
        if msg.data or not msg.headers or STATUS not in msg.headers:
            self._delivered.append(msg)
            if request is not None:
                request.heard_at = asyncio.get_running_loop().time()
                request.remaining -= 1
                if request.remaining <= 0:  # batch filled: the server sends nothing more
                    self._open = None
            self._wake.set()
            return
        if request is None or msg.subject != request.reply:
            return  # an earlier request's end (or heartbeat)
        status = msg.headers[STATUS]
        if status == HEARTBEAT:
            request.heard_at = asyncio.get_running_loop().time()
            return
        self.status, self._open = status, None
        self._wake.set()
