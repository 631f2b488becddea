"""Composition root: the gateway service, wired from its settings."""

from __future__ import annotations

from switchboard_contracts.topology import GATEWAY
from switchboard_runtime import Service
from switchboard_tenants import TenantDirectory, TokenCipher

from .ratelimit import RateLimits
from .settings import GatewaySettings
from .webhooks import Webhooks


def build(settings: GatewaySettings | None = None) -> Service:
    settings = settings or GatewaySettings()
    cipher = TokenCipher.from_env()  # fail at start-up, naming the setting, not per request
    service = Service(settings, owns=(GATEWAY,))
    service.app.title = "Switchboard gateway"

    @service.on_start
    async def wire(svc: Service) -> None:
        directory = TenantDirectory(svc.js, cipher)
        await directory.start()
        svc.add_check("tenants", lambda: directory.synced)
        webhooks = Webhooks(settings, svc.nc, directory, svc.publisher(GATEWAY),
                            RateLimits(settings.ip_rate_limit, settings.sender_rate_limit))
        svc.app.router.routes.extend(webhooks.routes())

        @svc.on_stop
        async def close(_: Service) -> None:
            await directory.stop()

    return service


def main() -> None:
    build().run()
