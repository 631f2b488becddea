"""Gateway settings (environment variables, see the README)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import ClassVar

from pydantic import field_validator
from switchboard_runtime import ServiceSettings


class GatewaySettings(ServiceSettings):
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = (
        "nats_url", "public_base_url", "sb_tenant_keys_or_file",
    )
    INSECURE_FLAGS: ClassVar[tuple[str, ...]] = ("allow_unsigned_webhooks",)
    SETTING_NAMES: ClassVar[dict[str, str]] = {
        "sb_tenant_keys_or_file": "SB_TENANT_KEYS or SB_TENANT_KEYS_FILE"
    }

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
    publish_timeout_s: float = 5.0
    # Either is enough; checked together by REQUIRED_IN_PRODUCTION.
    sb_tenant_keys: str | None = None
    sb_tenant_keys_file: str | None = None

    @property
    def sb_tenant_keys_or_file(self) -> str | None:
        return self.sb_tenant_keys or self.sb_tenant_keys_file

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        cidrs = (cidr.strip() for cidr in self.trusted_proxies.split(","))
        return [ip_network(cidr) for cidr in cidrs if cidr]
