"""Gateway settings (environment variables, see the README)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import ClassVar

from pydantic import field_validator
from switchboard_tenants.settings import TenantServiceSettings


class GatewaySettings(TenantServiceSettings):
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = (
        "nats_url", "public_base_url", "sb_tenant_keys_or_file",
    )
    INSECURE_FLAGS: ClassVar[tuple[str, ...]] = ("allow_unsigned_webhooks",)

    service_name: str = "gateway"
    # The URL Twilio calls, as Twilio sees it (scheme and host, no path), e.g.
    # https://hooks.example.com. Signatures are checked against it.
    public_base_url: str | None = None
    # Proxies/load balancers whose X-Forwarded-Proto/Host are believed (comma-separated CIDRs),
    # used only when PUBLIC_BASE_URL is unset.
    trusted_proxies: str = ""
    # Development only: accept webhooks without a valid signature. Refused in production.
    allow_unsigned_webhooks: bool = False
    max_body_bytes: int = 64 * 1024
    ip_rate_limit: str = "300/second"
    sender_rate_limit: str = "20/minute"
    # How long a stored MessageSid is remembered, so that a retry refused by the per-sender
    # limit still gets 200 (Twilio's retries come within minutes).
    stored_sids_ttl_s: float = 86400.0
    publish_timeout_s: float = 5.0
    # One publish's wait for its PubAck; unanswered ones are retried until PUBLISH_TIMEOUT_S.
    publish_attempt_timeout_s: float = 1.0

    @field_validator("database_url", mode="before")
    @classmethod
    def _no_database(cls, _: object) -> None:
        # The gateway uses no Postgres. A DATABASE_URL shared by every process (the dev stack
        # and the fault suite give one) made it open a pool and fail /readyz while Postgres
        # was down, so balancers took no webhooks from Twilio (reliability finding 6).
        return None

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        cidrs = (cidr.strip() for cidr in self.trusted_proxies.split(","))
        return [ip_network(cidr) for cidr in cidrs if cidr]
