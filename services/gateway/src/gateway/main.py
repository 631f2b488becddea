"""Composition root: the gateway service, wired from its settings."""

from __future__ import annotations

from switchboard_contracts.topology import GATEWAY
from switchboard_runtime import Service
from switchboard_runtime.bus import RetryingPublisher
from switchboard_runtime.limits import attach_limits
from switchboard_tenants import TokenCipher, attach_directory

from .handlers import Webhooks, starting_routes
from .ledgers import SentMessages, StoredMessages
from .ratelimit import RateLimits
from .settings import GatewaySettings


def build(settings: GatewaySettings | None = None) -> Service:
    settings = settings or GatewaySettings()
    cipher = TokenCipher.from_env()  # fail at start-up, naming the setting, not per request
    service = Service(settings, owns=(GATEWAY,))
    service.app.title = "Switchboard gateway"
    starting = starting_routes()
    # First in the router: it tries routes in order, and every webhook would otherwise be
    # matched against the health, metrics and docs routes first (~2 us each).
    service.app.router.routes[:0] = starting

    @service.on_start
    async def wire(svc: Service) -> None:
        directory = await attach_directory(svc, cipher)
        limits = RateLimits(await attach_limits(svc), settings.ip_rate_limit,
                            settings.sender_rate_limit)
        stored = await StoredMessages.open(svc.nc, settings.stored_sids_ttl_s)
        # PUBLISH_TIMEOUT_S bounds the wait for the PubAck, then Twilio gets a 503 (ADR 0004);
        # within it, "no responders" (a leader election) and an attempt unanswered after
        # PUBLISH_ATTEMPT_TIMEOUT_S are retried.
        publisher = RetryingPublisher(svc.js, GATEWAY.name, timeout_s=settings.publish_timeout_s,
                                      attempt_timeout_s=settings.publish_attempt_timeout_s)
        webhooks = Webhooks(settings, svc.nc, directory, publisher, limits, stored,
                            SentMessages(svc.js))
        routes = svc.app.router.routes
        for placeholder, route in zip(starting, webhooks.routes(), strict=True):
            routes[routes.index(placeholder)] = route  # same path, same place

    return service


def main() -> None:
    build().run()
