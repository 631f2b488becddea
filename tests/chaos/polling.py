"""Waiting on conditions, never for a fixed time: until something holds, or while it keeps
holding (the "nothing else happened" checks, which must outlast the redelivery they guard)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float, what: str,
                     interval_s: float = 0.2) -> T:
    """Polls ``check`` until it answers something truthy; raises ``TimeoutError`` naming
    ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout_s:.0f} s")
        await asyncio.sleep(interval_s)


async def settles(fingerprint: Callable[[], Awaitable[object]], quiet_s: float,
                  timeout_s: float, what: str, interval_s: float = 0.5) -> float:
    """Polls ``fingerprint`` until it stays the same for ``quiet_s`` seconds (anything that
    happens meanwhile starts the wait again); answers how long that took in all. Raises
    ``TimeoutError`` naming ``what`` when it keeps changing past ``timeout_s``."""
    started = time.monotonic()
    last, since = await fingerprint(), started
    while time.monotonic() - since < quiet_s:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: still changing after {timeout_s:.0f} s")
        await asyncio.sleep(interval_s)
        current = await fingerprint()
        if current != last:
            last, since = current, time.monotonic()
    return time.monotonic() - started
