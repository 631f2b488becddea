"""Events of the Conversation aggregate (stream CONVERSATION).

All events of one conversation live on ``conversation.<conversation_id>.<Type>`` and are
appended with the expected-last-subject-sequence check over ``conversation.<id>.>``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ..envelope import EventData
from ..registry import registry
from .gateway import Media


class ContextMessage(BaseModel):
    """One message of the history the agent answers from."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: str  # "user" or "assistant"
    content: str
    at: datetime


@registry.register
class ConversationStarted(EventData):
    TYPE = "ConversationStarted"
    user_address: str
    business_address: str
    account_sid: str
    session: int = 1  # a conversation closed for idleness starts again as the next session


@registry.register
class UserMessageAppended(EventData):
    TYPE = "UserMessageAppended"
    message_sid: str
    text: str = ""
    media: list[Media] = Field(default_factory=list)
    message_type: str | None = None
    received_at: datetime
    # The turn that will answer it (a burst shares one turn).
    turn: int


@registry.register
class TranscriptionRequested(EventData):
    TYPE = "TranscriptionRequested"
    message_sid: str
    media_url: str
    content_type: str
    account_sid: str
    language_hint: str | None = None


@registry.register
class TranscriptAppended(EventData):
    """The transcript of a voice note became the text of its user message."""

    TYPE = "TranscriptAppended"
    message_sid: str
    text: str
    language: str | None = None
    failed: bool = False
    reason: str | None = None


@registry.register
class ReplyRequested(EventData):
    """Ask the agent to answer the turn's user messages, with the recent history."""

    TYPE = "ReplyRequested"
    VERSION = "1.2"
    turn: int
    message_sids: list[str]
    context: list[ContextMessage]
    user_address: str
    business_address: str
    account_sid: str
    # 1.1: set when there is nothing the LLM could answer, e.g. "transcription_failed" (every
    # message of the turn is a voice note that could not be transcribed): the agent answers
    # with its fallback text for that reason, in the tenant's language, without the LLM.
    # "turn_deadline": the previous turn's reply never came (ADR 0016); this turn answers
    # that turn's messages with the "try again later" text.
    fallback_reason: str | None = None
    # 1.2: when the gateway accepted the earliest user message this turn answers (the start
    # of the "webhook to reply" SLO, ADR 0019); None when unknown (events stored before 1.2).
    turn_started_at: datetime | None = None


@registry.register
class AssistantMessageAppended(EventData):
    TYPE = "AssistantMessageAppended"
    turn: int
    text: str
    fallback: bool = False
    reply_event_id: str


@registry.register
class ReplySuperseded(EventData):
    """The turn's reply arrived after newer user messages: the next turn answers them all."""

    TYPE = "ReplySuperseded"
    turn: int
    next_turn: int


@registry.register
class ConversationClosed(EventData):
    TYPE = "ConversationClosed"
    reason: str  # "idle"
    session: int


@registry.register
class IdleCheckDue(EventData):
    """A durable timer (a scheduled message) asking whether the conversation went idle."""

    TYPE = "IdleCheckDue"
    last_activity_at: datetime


@registry.register
class TurnDeadlineDue(EventData):
    """A durable timer: the turn's reply should have arrived by now (if it has not, the turn
    ends with the fallback text and the waiting messages are answered)."""

    TYPE = "TurnDeadlineDue"
    turn: int


@registry.register
class TranscriptDeadlineDue(EventData):
    """A durable timer: the voice note's transcript should have arrived by now (if it has not,
    it counts as not transcribed and its turn goes on)."""

    TYPE = "TranscriptDeadlineDue"
    message_sid: str
