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
    VERSION = "1.3"
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
    # 1.3: the conversation's last outbound message when the reply was asked for (as
    # OutboundMessageRequested.after): the reply goes out after it. None: nothing before it
    # (or an event stored before 1.3).
    after: str | None = None


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
    VERSION = "1.1"
    reason: str  # "idle", "operator"
    session: int
    command_id: str | None = None
    """1.1: the operator command that closed it (reason ``operator``)."""


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


# -- people in the loop (ADR 0022) -------------------------------------------------------------
# A handoff's life: HandoffRequested (the user asked, the agent's LLM called its ``handoff``
# tool, or an operator took the conversation) -> HandoffClaimed (an operator answers) ->
# HandoffReleased (back to the bot). While requested or claimed the agent never answers; the
# conversation asks the sender for what must go out (OutboundMessageRequested).

HANDOFF_SOURCES = ("user", "agent", "operator")


@registry.register
class HandoffRequested(EventData):
    """The conversation waits for a person; the bot stays silent from now on. Any reply in
    flight for ``turn`` is dropped (the view marks the turn superseded)."""

    TYPE = "HandoffRequested"
    source: str
    """``user`` (a handoff keyword), ``agent`` (the LLM's handoff tool) or ``operator``."""
    reason: str | None = None
    """The LLM's reason, or the keyword the user wrote."""
    operator_id: str | None = None
    """The operator who took the conversation (source ``operator``)."""
    turn: int
    """The conversation's turn when it was requested."""
    deadline_at: datetime | None = None
    """When an unclaimed handoff gets the tenant's outcome (None: never)."""


@registry.register
class HandoffClaimed(EventData):
    """An operator answers the conversation from now on (only one at a time)."""

    TYPE = "HandoffClaimed"
    operator_id: str
    command_id: str | None = None
    """The operator command (claim or take_over) that claimed it."""


@registry.register
class HandoffReleased(EventData):
    """The conversation is back with the bot: it answers the user's next message."""

    TYPE = "HandoffReleased"
    reason: str
    """``operator`` (released), ``unclaimed`` (nobody claimed it in time and the tenant
    chose the bot), ``closed`` (the conversation was closed)."""
    operator_id: str | None = None
    command_id: str | None = None
    """The operator command (release) that released it."""


@registry.register
class HandoffExpired(EventData):
    """Nobody claimed the handoff by its deadline: the user is told; ``outcome`` is the
    tenant's choice: ``bot`` (a HandoffReleased follows) or ``wait`` (it stays waiting)."""

    TYPE = "HandoffExpired"
    outcome: str


@registry.register
class HandoffDeadlineDue(EventData):
    """A durable timer: the handoff requested at ``requested_version`` should be claimed by
    now."""

    TYPE = "HandoffDeadlineDue"
    requested_version: int


@registry.register
class UserOptedOut(EventData):
    """The user wrote an opt-out keyword (STOP...): nothing more is sent to them, after one
    confirmation, until they opt back in."""

    TYPE = "UserOptedOut"
    message_sid: str
    keyword: str


@registry.register
class UserOptedIn(EventData):
    """The user wrote an opt-in keyword (START...) after opting out."""

    TYPE = "UserOptedIn"
    message_sid: str
    keyword: str


OUTBOUND_KINDS = ("notice", "operator", "template")


@registry.register
class OutboundMessageRequested(EventData):
    """Something the conversation itself asks the sender to send (not the agent's reply): a
    notice to the user, an operator's message, or an approved template.

    The sender sends it after ``after`` (the previous outbound message of the conversation:
    an accepted reply's ReplyGenerated event id or an earlier request's event id) has gone out
    or failed, and checks the conversation's view before every part: an opted-out user gets
    nothing but the opt-out confirmation, and only a template may go outside the 24-hour
    window."""

    TYPE = "OutboundMessageRequested"
    kind: str
    """``notice``, ``operator`` or ``template`` (OUTBOUND_KINDS)."""
    purpose: str
    """Why: ``handoff_requested``, ``handoff_expired``, ``opted_out``, ``opted_in``,
    ``operator_reply``, ``template``."""
    turn: int
    """The conversation's turn when requested: orders it against the agent's replies."""
    after: str | None = None
    text: str = ""
    media_url: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] = Field(default_factory=dict)
    template_name: str | None = None
    operator_id: str | None = None
    command_id: str | None = None
    """The operator command or tenant API call that asked for it (idempotency key)."""
    user_address: str
    business_address: str
    account_sid: str
