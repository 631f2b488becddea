"""Agent settings (environment variables, see the README)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from switchboard_tenants.models import DEFAULT_LANGUAGE, DEFAULT_MODEL, DEFAULT_SYSTEM_PROMPT
from switchboard_tenants.settings import TenantServiceSettings


class AgentSettings(TenantServiceSettings):
    REQUIRED_IN_PRODUCTION: ClassVar[tuple[str, ...]] = (
        *TenantServiceSettings.REQUIRED_IN_PRODUCTION, "llm_endpoint",
    )
    SETTING_NAMES: ClassVar[dict[str, str]] = {
        "llm_endpoint": "OPENAI_API_KEY (or OPENAI_BASE_URL, for a keyless "
                        "OpenAI-compatible endpoint)",
        **TenantServiceSettings.SETTING_NAMES,
    }
    OUTLASTED_BY_DRAIN: ClassVar[tuple[str, ...]] = ("llm_timeout_s",)

    service_name: str = "agent"
    # The LLM endpoint. With neither set, a local development responder answers in-process.
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    # Defaults for a tenant the directory does not know (a tenant's own settings win).
    llm_model: str = DEFAULT_MODEL
    llm_system_prompt: str = DEFAULT_SYSTEM_PROMPT
    llm_language: str = DEFAULT_LANGUAGE
    # One attempt's timeout (below DRAIN_TIMEOUT_S, so a pod stop never cuts a call), and how
    # many attempts before the fallback text is sent.
    llm_timeout_s: float = Field(default=20.0, gt=0)
    llm_max_attempts: int = Field(default=4, ge=1)
    # Exponential backoff with full jitter between attempts, unless the endpoint says
    # Retry-After (honoured up to llm_retry_after_max_s).
    llm_backoff_base_s: float = Field(default=1.0, ge=0)
    llm_backoff_max_s: float = Field(default=10.0, ge=0)
    llm_retry_after_max_s: float = Field(default=30.0, ge=0)
    # Tokens of prompt (system prompt + history) sent at most; older messages are dropped.
    llm_context_tokens: int = Field(default=3000, ge=100)
    # Longest answer asked for (max_tokens); unset leaves it to the endpoint.
    llm_max_reply_tokens: int | None = Field(default=None, ge=1)
    # Tool rounds per turn (tool results sent back to the model before it is asked again):
    # past them the turn ends with the fallback text (ReplyFailed tool_rounds_exceeded).
    agent_max_tool_rounds: int = Field(default=3, ge=0)

    @field_validator("openai_base_url", "openai_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def llm_endpoint(self) -> str | None:
        """Something to call: a key (OpenAI's default URL) or an explicit base URL."""
        if self.openai_base_url:
            return self.openai_base_url
        return "api.openai.com" if self.openai_api_key else None

    @property
    def dev_responder(self) -> bool:
        """No key and no base URL: answer with the local development responder."""
        return self.llm_endpoint is None
