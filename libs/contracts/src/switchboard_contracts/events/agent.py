"""Events of the agent (stream AGENT, ``agent.<Type>``).

Their ``Nats-Msg-Id`` is ``agent:<conversation_id>:<turn>:<Type>``: one outcome per turn.
"""

from __future__ import annotations

from datetime import datetime

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
    VERSION = "1.4"
    turn: int
    text: str
    model: str
    fallback: bool = False
    """The text is the fallback, not the LLM's answer."""
    usage: TokenUsage = TokenUsage()
    latency_ms: float = 0.0
    """How long the LLM took to answer."""
    user_address: str
    business_address: str
    account_sid: str
    fallback_reason: str | None = None
    """1.1: why a fallback was sent (``llm_failed``, ``llm_rejected``,
    ``audio_not_understood``)."""
    turn_started_at: datetime | None = None
    """1.2: the ReplyRequested's ``turn_started_at``, copied (the sender measures the
    "webhook to reply" SLO from it, ADR 0019)."""
    handoff_reason: str | None = None
    """1.3: the LLM called its ``handoff`` tool, with this reason: the turn is not answered
    by the bot (``text`` is not sent); the conversation hands it to a person (ADR 0022)."""
    after: str | None = None
    """1.4: the ReplyRequested's ``after``, copied: the outbound message of the conversation
    this reply goes out after (the sender waits for it, as for OutboundMessageRequested)."""


@registry.register
class ReplyFailed(EventData):
    """The LLM could not answer; a ReplyGenerated with the fallback text follows."""

    TYPE = "ReplyFailed"
    VERSION = "1.1"
    turn: int
    reason: str
    attempts: int
    """How many times the LLM was called."""
    permanent: bool = False
    """1.1: the endpoint refused the request (401/403/400...): not retried, needs an operator."""
    model: str | None = None
    """Added in 1.1."""
