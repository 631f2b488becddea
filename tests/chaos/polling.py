"""Waiting until nothing changes any more, for longer than the redelivery it guards (the
"nothing else happened" checks). Waiting until something happened is devstack's
``switchboard_devstack.waiting.eventually`` (raising ``AssertionError`` when it does not)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
