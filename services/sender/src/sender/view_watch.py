"""The conversation's view, pushed to the handlers waiting on it (issue 13, the pipeline).

A reply's first part waits for the conversation's decision on its turn, which the conversation
writes to the view within milliseconds, in parallel with us. Instead of re-reading the view
(5, 10, 20 ms apart) the replica follows every write to the bucket with one ordered push
consumer that starts at the newest write (``DeliverPolicy.NEW``: no replay of the bucket), and
wakes the handlers waiting on that conversation. Only the keys being waited on are kept (the
view each waiter last saw), so memory is bounded by the handlers in flight.

The watcher speeds things up; it decides nothing: each wait starts with a direct read, a
pushed view replaces the one in hand only if it is newer (``version``), and the direct read is
repeated on a doubling delay, so a watcher that is not running yet (the conversation service
creates the bucket), has stopped or lags costs time, never a wrong decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from switchboard_contracts.conversation_view import VIEW_BUCKET, ConversationView, view_key
from switchboard_runtime.telemetry import get_logger

from . import metrics

log = get_logger(__name__)

VIEW_STREAM = f"KV_{VIEW_BUCKET}"
KEY_PREFIX = f"$KV.{VIEW_BUCKET}."
REREAD_S = 0.005  # the first direct re-read without a watcher; then doubled
REREAD_WATCHED_S = 0.05  # with one: a safety net for a pushed write that does not come
RETRY_WATCH_S = 5.0  # a watcher that could not start is tried again this long after

ViewReader = Callable[[str], Awaitable[ConversationView | None]]
Settled = Callable[[ConversationView | None], bool]


class _Waiter:
    """One handler waiting on a conversation: the newest view pushed since it last looked."""

    def __init__(self) -> None:
        self.pushed: ConversationView | None = None
        self.woken = asyncio.Event()


def _newer(held: ConversationView | None, seen: ConversationView | None
           ) -> ConversationView | None:
    if seen is None:
        return held
    return seen if held is None or seen.version >= held.version else held


class ViewWatch:
    def __init__(self, js: JetStreamContext, read: ViewReader, enabled: bool = True) -> None:
        self._js = js
        self._read = read
        self._enabled = enabled
        self._waiting: dict[str, set[_Waiter]] = {}
        self._sub: Subscription | None = None
        self._next_try = 0.0

    @property
    def watching(self) -> bool:
        return self._sub is not None

    async def settled(self, conversation_id: str, settled: Settled, within_s: float
                      ) -> ConversationView | None:
        """The conversation's view once ``settled`` says so, or the last one seen after
        ``within_s`` (None: none written)."""
        await self.watch()
        key = view_key(conversation_id)
        waiter = _Waiter()
        self._waiting.setdefault(key, set()).add(waiter)  # before the read: no write missed
        try:
            view = await self._read(conversation_id)
            deadline = time.monotonic() + within_s
            delay = REREAD_WATCHED_S if self.watching else REREAD_S
            while not settled(view):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(waiter.woken.wait(), min(delay, left))
                except TimeoutError:
                    metrics.VIEW_LOOKS.labels("reread").inc()
                    view = _newer(view, await self._read(conversation_id))
                    delay *= 2
                    continue
                metrics.VIEW_LOOKS.labels("pushed").inc()
                waiter.woken.clear()
                view = _newer(view, waiter.pushed)
            return view
        finally:
            waiters = self._waiting[key]
            waiters.discard(waiter)
            if not waiters:
                del self._waiting[key]

    async def stop(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()

    async def watch(self) -> None:
        """Start following the bucket's writes, unless it runs or was tried moments ago."""
        if not self._enabled or self._sub is not None or time.monotonic() < self._next_try:
            return
        self._next_try = time.monotonic() + RETRY_WATCH_S
        try:
            self._sub = await self._js.subscribe(
                f"{KEY_PREFIX}>", stream=VIEW_STREAM, cb=self._on_write, ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW, inactive_threshold=300.0)
        except NotFoundError:  # no bucket yet: the conversation service creates it
            return
        except Exception:  # a watcher only saves time: read directly meanwhile
            log.warning("cannot watch the conversations' views; reading them directly",
                        exc_info=True)
            return
        log.info("watching the conversations' views")

    async def _on_write(self, msg: Msg) -> None:
        key = msg.subject[len(KEY_PREFIX):]
        waiters = self._waiting.get(key)
        if not waiters or not msg.data:  # nobody waits on it, or a delete
            return
        try:
            view = ConversationView.from_bytes(msg.data)
        except ValueError:
            log.warning("a view that does not parse ignored")
            return
        for waiter in waiters:
            waiter.pushed = _newer(waiter.pushed, view)
            waiter.woken.set()
