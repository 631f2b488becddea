"""Conversation service settings (environment variables, see the README)."""

from __future__ import annotations

from pydantic import Field
from switchboard_tenants.settings import TenantServiceSettings


class ConversationSettings(TenantServiceSettings):
    service_name: str = "conversation"
    # A conversation without user or assistant messages for this long is closed; the next
    # user message starts a new session (with a fresh context).
    conversation_idle_close_s: float = Field(86400.0, gt=0)
    # How many of the latest messages a ReplyRequested carries as the agent's context.
    conversation_context_messages: int = Field(20, ge=1)
    # Concurrent writers on one conversation: how often to reload and decide again before
    # giving the event back to the consumer (which retries it later).
    conversation_max_conflicts: int = Field(10, ge=1)
    # Every turn ends (ADR 0016): a reply not here this long after its request is replaced
    # by the fallback text. Longer than the agent's whole LLM budget for one request
    # (LLM_MAX_ATTEMPTS x LLM_TIMEOUT_S + backoffs: 4 x 30 s + up to 3 x 30 s by default).
    conversation_turn_deadline_s: float = Field(300.0, gt=0)
    # A voice note whose transcript is not here this long after its request counts as not
    # transcribed. Enough for a few minutes of audio with the base model, the download and
    # a redelivery; raise it with the transcription's TRANSCRIPTION_MAX_AUDIO_S.
    conversation_transcript_deadline_s: float = Field(600.0, gt=0)
    # Conversations kept in memory with their version (a stale copy is caught by the
    # version check on append and reloaded), and the public view bucket's replicas.
    conversation_cache_size: int = Field(10_000, ge=1)
    conversation_view_replicas: int | None = Field(None, ge=1)  # unset: SB_KV_REPLICAS
