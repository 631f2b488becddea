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
    turn: int
    text: str
    model: str
    fallback: bool = False
    usage: TokenUsage = TokenUsage()
    latency_ms: float = 0.0
    user_address: str
    business_address: str
    account_sid: str


@registry.register
class ReplyFailed(EventData):
    """The LLM could not answer; a ReplyGenerated with the fallback text follows."""

    TYPE = "ReplyFailed"
    turn: int
    reason: str
    attempts: int
