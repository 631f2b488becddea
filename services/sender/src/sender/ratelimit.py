"""Per sender number pacing before each Messages API call (WhatsApp: 80 msg/s by default).

Per replica and in memory: each call takes the next free slot for its number, 1/rate
seconds after the previous one, and waits for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class SenderPacer:
    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate_per_s
        self._clock = clock
        self._next: dict[str, float] = {}

    def reserve(self, key: str) -> float:
        """Take the next slot for ``key``; answers how long to wait for it."""
        now = self._clock()
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + self._interval
        return slot - now

    async def wait(self, key: str) -> float:
        delay = self.reserve(key)
        if delay > 0:
            await asyncio.sleep(delay)
        return delay
