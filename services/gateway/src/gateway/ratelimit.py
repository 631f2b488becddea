"""Per-IP (before the signature check) and per-sender (after it) limits, across replicas.

Shared counters (switchboard_runtime.limits, docs/adr/0015): each replica decides from the
global count at its last background sync plus its own unsynced hits, so no webhook waits for a
round trip unless its key is bursting. The per-sender limit is what keeps one WhatsApp user
from starving others or running up LLM cost; it counts messages, not deliveries: a webhook
takes a place before it is stored and gives it back unless stored as new, so Twilio's retries
of one MessageSid cost nothing.
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

    async def take_sender(self, tenant_id: str, sender: str) -> bool:
        """Takes a place for one message from this sender, if one is free."""
        return _counted(await self._per_sender.hit(_sender_key(tenant_id, sender)), "sender")

    def give_back_sender(self, tenant_id: str, sender: str) -> None:
        """The message took no place after all: a redelivery, or not stored."""
        self._per_sender.count(_sender_key(tenant_id, sender), -1)


def _sender_key(tenant_id: str, sender: str) -> str:
    return f"{tenant_id}|{sender}"


def _counted(allowed: bool, scope: str) -> bool:
    if not allowed:
        RATE_LIMITED.labels(scope).inc()
    return allowed
