"""Events of the agent (stream AGENT, ``agent.<Type>``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..envelope import EventData
from ..registry import registry


class TokenUsage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0


@registry.register
class ReplyGenerated(EventData):
    """The text to send for a turn: the LLM's answer, or the fallback after ReplyFailed."""

    TYPE = "ReplyGenerated"
    VERSION = "1.1"
    turn: int
    text: str
    model: str
    fallback: bool = False
    usage: TokenUsage = TokenUsage()
    latency_ms: float = 0.0
    user_address: str
    business_address: str
    account_sid: str
    # 1.1: why a fallback was sent ("llm_failed", "llm_rejected", "audio_not_understood").
    fallback_reason: str | None = None


@registry.register
class ReplyFailed(EventData):
    """The LLM could not answer; a ReplyGenerated with the fallback text follows."""

    TYPE = "ReplyFailed"
    VERSION = "1.1"
    turn: int
    reason: str
    attempts: int
    # 1.1: the endpoint refused the request (401/403/400...): not retried, needs an operator.
    permanent: bool = False
    model: str | None = None
