"""Waiting in tests on conditions, never on a guessed duration: the one shared copy.

``eventually`` polls until something happened. ``drained`` waits until nothing more *can*
happen: every durable consumer has been delivered everything and has acknowledged it. A
"still exactly one" check runs after ``drained``: a message whose handler failed or crashed
stays unacknowledged until it is redelivered (after its ``ack_wait``, back-off or nak delay)
and handled, so ``drained`` waits past the redelivery the check guards, however long it is,
and no longer.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, overload

from nats.js import JetStreamContext

T = TypeVar("T")


@overload
async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float = ...,
                     interval_s: float = ..., what: str = ...) -> T: ...
@overload
async def eventually(check: Callable[[], T], timeout_s: float = ...,
                     interval_s: float = ..., what: str = ...) -> T: ...
async def eventually(check: Callable[[], Any], timeout_s: float = 20.0,
                     interval_s: float = 0.05, what: str = "condition") -> Any:
    """Poll ``check`` (a plain or an async function) until it answers something truthy, and
    return that."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = check()
        value = await answer if inspect.isawaitable(answer) else answer
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s}s (last: {value!r})")
        await asyncio.sleep(interval_s)


def eventually_sync(check: Callable[[], T], timeout_s: float = 20.0, interval_s: float = 0.05,
                    what: str = "condition") -> T:
    """``eventually`` for a test without an event loop (a plain ``check`` only)."""
    return asyncio.run(eventually(check, timeout_s, interval_s, what))


# Per stream: its last sequence, and per durable consumer what it has not finished.
Snapshot = tuple[tuple[str, int, tuple[tuple[str, int, int], ...]], ...]


async def _snapshot(js: JetStreamContext, streams: Iterable[str] | None) -> Snapshot:
    names = list(streams) if streams is not None else sorted(
        info.config.name for info in await js.streams_info() if info.config.name)
    found = []
    for name in names:
        stream = await js.stream_info(name)
        consumers = tuple(sorted(
            (c.config.durable_name, c.num_pending or 0, c.num_ack_pending or 0)
            for c in await js.consumers_info(name) if c.config.durable_name))
        found.append((name, stream.state.last_seq, consumers))
    return tuple(found)


def _idle(snapshot: Snapshot) -> bool:
    return all(pending == 0 and unacked == 0
               for _, _, consumers in snapshot for _, pending, unacked in consumers)


async def drained(js: JetStreamContext, streams: Iterable[str] | None = None,
                  timeout_s: float = 30.0, interval_s: float = 0.1) -> None:
    """Until every durable consumer of ``streams`` (default: all) has nothing pending and
    nothing unacknowledged, twice in a row with no message stored in between (a handler that
    publishes and then acks between two reads of one snapshot cannot fool it)."""
    streams = list(streams) if streams is not None else None
    previous: Snapshot | None = None

    async def quiet() -> bool:
        nonlocal previous
        current = await _snapshot(js, streams)
        settled = _idle(current) and current == previous
        previous = current
        return settled

    await eventually(quiet, timeout_s, interval_s, what="consumers drained")
