"""Per-IP (before the signature check) and per-sender (after it) limits, across replicas.

Shared counters (switchboard_runtime.limits, docs/adr/0015): each replica decides from the
global count at its last background sync plus its own unsynced hits, so no webhook waits for a
round trip unless its key is bursting. The per-sender limit is what keeps one WhatsApp user
from starving others or running up LLM cost; it counts messages, not deliveries: a webhook is
checked first and counted only once stored as new, so Twilio's retries of one MessageSid cost
nothing.
"""

from __future__ import annotations

from switchboard_runtime.limits import Rate, SharedCounters

from .metrics import RATE_LIMITED


class RateLimits:
    def __init__(self, counters: SharedCounters, per_ip: str, per_sender: str) -> None:
        self._per_ip = counters.limit("ip", Rate.parse(per_ip))
        self._per_sender = counters.limit("sender", Rate.parse(per_sender))

    async def allow_ip(self, ip: str) -> bool:
        """Checks and counts one request from ``ip``."""
        return _counted(await self._per_ip.hit(ip), "ip")

    async def sender_may_send(self, tenant_id: str, sender: str) -> bool:
        """Whether one more message from this sender fits; counts nothing."""
        return _counted(await self._per_sender.allowed(_sender_key(tenant_id, sender)), "sender")

    def count_sender(self, tenant_id: str, sender: str) -> None:
        """One new message from this sender (not a redelivery)."""
        self._per_sender.count(_sender_key(tenant_id, sender))


def _sender_key(tenant_id: str, sender: str) -> str:
    return f"{tenant_id}|{sender}"


def _counted(allowed: bool, scope: str) -> bool:
    if not allowed:
        RATE_LIMITED.labels(scope).inc()
    return allowed
