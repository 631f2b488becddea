"""Per sender number pacing before each Messages API call (WhatsApp: 80 msg/s by default).

Two parts: in this replica, each call takes the next free slot for its number, 1/rate seconds
after the previous one, and waits for it; then it takes a slot in the number's current second
against the count every replica shares (switchboard_runtime.limits, docs/adr/0015), waiting
1/rate more while that second is full. The shared check syncs before every call after the
first (a burst of 1): one NATS round trip is nothing beside a Twilio call, and it keeps the
whole fleet within rate + replicas per second. Without NATS, each replica paces alone.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from switchboard_runtime.limits import Rate, SharedCounters


class SenderPacer:
    def __init__(self, rate_per_s: float, counters: SharedCounters | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate_per_s
        self._clock = clock
        self._next: dict[str, float] = {}
        # Whole calls per second; a rate under 1/s is paced by the local slots alone.
        self._shared = counters.limit("number", Rate(max(1, math.floor(rate_per_s)), 1),
                                      burst=1) if counters is not None else None

    def reserve(self, key: str) -> float:
        """Take the next slot for ``key``; answers how long to wait for it."""
        now = self._clock()
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + self._interval
        return slot - now

    async def wait(self, key: str) -> float:
        """Wait for a slot of ``key`` here and across replicas; answers how long it took."""
        delay = self.reserve(key)
        if delay > 0:
            await asyncio.sleep(delay)
        while self._shared is not None and not await self._shared.hit(key):
            await asyncio.sleep(self._interval)
            delay += self._interval
        return delay
