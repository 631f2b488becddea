"""Per-IP (before the signature check) and per-sender (after it) limits, per replica.

The `limits` package's sliding-window counter in memory (O(1) per hit): cheap, and each
replica protects itself. The per-sender limit is what keeps one WhatsApp user from starving
others or running up LLM cost.
"""

from __future__ import annotations

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from .metrics import RATE_LIMITED


class RateLimits:
    def __init__(self, per_ip: str, per_sender: str) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._per_ip: RateLimitItem = parse(per_ip)
        self._per_sender: RateLimitItem = parse(per_sender)

    async def allow_ip(self, ip: str) -> bool:
        return await self._hit(self._per_ip, "ip", ip)

    async def allow_sender(self, tenant_id: str, sender: str) -> bool:
        return await self._hit(self._per_sender, "sender", tenant_id, sender)

    async def _hit(self, item: RateLimitItem, scope: str, *key: str) -> bool:
        allowed = await self._limiter.hit(item, scope, *key)
        if not allowed:
            RATE_LIMITED.labels(scope).inc()
        return allowed
