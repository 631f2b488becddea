"""Conversation service settings (environment variables, see the README)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from switchboard_runtime import ServiceSettings


class ConversationSettings(ServiceSettings):
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = ("nats_url", "sb_tenant_keys_or_file")
    SETTING_NAMES: ClassVar[dict[str, str]] = {
        "sb_tenant_keys_or_file": "SB_TENANT_KEYS or SB_TENANT_KEYS_FILE"
    }

    service_name: str = "conversation"
    # A conversation without user or assistant messages for this long is closed; the next
    # user message starts a new session (with a fresh context).
    conversation_idle_close_s: float = Field(86400.0, gt=0)
    # How many of the latest messages a ReplyRequested carries as the agent's context.
    conversation_context_messages: int = Field(20, ge=1)
    # Concurrent writers on one conversation: how often to reload and decide again before
    # giving the event back to the consumer (which retries it later).
    conversation_max_conflicts: int = Field(10, ge=1)
    # The tenant directory (for the tenant's language) decrypts auth tokens on load.
    sb_tenant_keys: str | None = None
    sb_tenant_keys_file: str | None = None

    @property
    def sb_tenant_keys_or_file(self) -> str | None:
        return self.sb_tenant_keys or self.sb_tenant_keys_file
