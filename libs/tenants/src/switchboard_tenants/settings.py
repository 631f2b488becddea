"""Settings every service that reads the tenant directory shares."""

from __future__ import annotations

from typing import ClassVar

from switchboard_runtime import ServiceSettings


class TenantServiceSettings(ServiceSettings):
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = ("nats_url", "sb_tenant_keys_or_file")
    SETTING_NAMES: ClassVar[dict[str, str]] = {
        "sb_tenant_keys_or_file": "SB_TENANT_KEYS or SB_TENANT_KEYS_FILE",
    }

    # Fernet keys for the tenants' auth tokens: inline, or a mounted secret file (either).
    sb_tenant_keys: str | None = None
    sb_tenant_keys_file: str | None = None

    @property
    def sb_tenant_keys_or_file(self) -> str | None:
        return self.sb_tenant_keys or self.sb_tenant_keys_file
