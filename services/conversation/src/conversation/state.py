"""The Conversation aggregate's state: its events folded, typed by the contracts' models.

Private to this service: other services read the public view (``view.py``), never this.
``apply`` takes each event's typed payload (decoded by the registry), so a field renamed in a
contract breaks here at type-check time, not at run time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from switchboard_contracts import Envelope, EventData, registry
from switchboard_contracts.conversation_view import ACCEPTED_REPLIES_KEPT, WHATSAPP_WINDOW, Mode
from switchboard_contracts.events.conversation import (
    AssistantMessageAppended,
    ConversationClosed,
    ConversationStarted,
    HandoffClaimed,
    HandoffExpired,
    HandoffReleased,
    HandoffRequested,
    OutboundMessageRequested,
    ReplyRequested,
    ReplySuperseded,
    TranscriptAppended,
    TranscriptionRequested,
    UserMessageAppended,
    UserOptedIn,
    UserOptedOut,
)
from switchboard_contracts.events.gateway import Media

# ReplyRequested.fallback_reason of a turn that answers a turn whose reply never came.
TURN_DEADLINE = "turn_deadline"

# What the history says for a voice note before (or instead of) its transcript.
VOICE_NOTE = "[voice message]"
UNTRANSCRIBED_VOICE_NOTE = "[voice message that could not be transcribed]"


@dataclass
class ConversationState:
    conversation_id: str | None = None
    tenant_id: str | None = None
    user_address: str | None = None
    business_address: str | None = None
    account_sid: str | None = None
    session: int = 0
    open: bool = False
    last_user_message_at: datetime | None = None
    last_activity_at: datetime | None = None
    # The last turn a reply was requested for, and whether its reply is still awaited.
    turn: int = 0
    reply_in_flight: bool = False
    # The current turn: when its reply was requested, the messages it answers, and whether
    # it is already the fallback for a turn whose reply never came (ADR 0016).
    turn_requested_at: datetime | None = None
    turn_message_sids: list[str] = field(default_factory=list)
    turn_is_deadline_fallback: bool = False
    # User messages no ReplyRequested covers yet (they arrived while a reply was in flight,
    # or await their transcript): the next turn answers them all.
    waiting_message_sids: list[str] = field(default_factory=list)
    message_sids: set[str] = field(default_factory=set)
    # The correlation_id each user message came with (a turn keeps its first message's).
    message_correlation: dict[str, str] = field(default_factory=dict)
    # When the gateway accepted each user message (a turn starts at its earliest: ADR 0019).
    message_received_at: dict[str, datetime] = field(default_factory=dict)
    # Voice notes: transcripts still awaited, those requested, those that failed (by sid).
    awaiting_transcript: set[str] = field(default_factory=set)
    transcription_requested: set[str] = field(default_factory=set)
    transcription_requested_at: dict[str, datetime] = field(default_factory=dict)
    failed_transcripts: set[str] = field(default_factory=set)
    # The current session's messages: role, text, at. A voice note holds its place with a
    # placeholder until its transcript replaces it; other media without text a placeholder.
    history: list[tuple[str, str, datetime]] = field(default_factory=list)
    history_index: dict[str, int] = field(default_factory=dict)  # voice note sid -> position
    answered_turns: set[int] = field(default_factory=set)
    # The last ACCEPTED_REPLIES_KEPT accepted replies' ReplyGenerated event ids, oldest first
    # (the view's ``accepted_replies``).
    accepted_replies: list[str] = field(default_factory=list)
    superseded_turns: set[int] = field(default_factory=set)
    # People in the loop (ADR 0022). While the mode is not BOT, or the user opted out, user
    # messages are recorded but wait for no reply.
    mode: Mode = Mode.BOT
    operator_id: str | None = None  # who claimed it (mode HUMAN)
    # The pending handoff: the version of its HandoffRequested (its timer names it), when it
    # expires, and whether it did already (outcome "bot" or "wait").
    handoff_requested_version: int = 0
    handoff_deadline_at: datetime | None = None
    handoff_outcome: str | None = None
    opted_out: bool = False
    # The user message appended by the last event (None once any other event follows): a
    # keyword is acted on in the same decision as its message, never on a redelivery later.
    just_appended_sid: str | None = None
    # The notice the last event owes the user (purpose, that event's id), until requested.
    notice_due: tuple[str, str] | None = None
    # The last message that went (or goes) out, which the next OutboundMessageRequested or
    # ReplyRequested follows: an accepted reply's ReplyGenerated event id or a request's own
    # event id.
    last_outbound_id: str | None = None
    # Operator commands done (their last event carries the command_id): a retry is accepted.
    applied_commands: set[str] = field(default_factory=set)
    version: int = 0  # stream sequence of the last event applied

    def window_ends_at(self) -> datetime | None:
        """End of WhatsApp's customer-service window: 24 h from the user's last message."""
        if self.last_user_message_at is None:
            return None
        return self.last_user_message_at + WHATSAPP_WINDOW


def needs_transcript(message: UserMessageAppended) -> bool:
    """A voice note: audio media and no text (the transcript becomes its text)."""
    return not message.text.strip() and any(_kind(m) == "audio" for m in message.media)


def media_placeholder(media: list[Media]) -> str:
    """What the history says for a message without text, e.g. ``[image]``."""
    kinds = {"image": "[image]", "video": "[video]", "audio": VOICE_NOTE}
    for item in media:
        found = kinds.get(_kind(item))
        if found:
            return found
    return "[attachment]" if media else ""


def _kind(media: Media) -> str:
    return media.content_type.lower().split("/", 1)[0]


def apply(state: ConversationState, envelope: Envelope, data: EventData, seq: int = 0
          ) -> ConversationState:
    """Fold one event in (``data``: its typed payload); other event types only move the
    version (e.g. a timer firing on the conversation's subjects)."""
    at = envelope.occurred_at
    state.conversation_id = envelope.conversation_id or state.conversation_id
    state.tenant_id = envelope.tenant_id or state.tenant_id
    state.version = max(state.version, seq)
    state.just_appended_sid = None
    match data:
        case ConversationStarted():
            state.open = True
            state.session = data.session
            state.user_address = data.user_address
            state.business_address = data.business_address
            state.account_sid = data.account_sid
            state.history, state.history_index = [], {}  # a new session: a fresh context
        case UserMessageAppended():
            _user_message(state, data, envelope.correlation_id, at)
        case TranscriptionRequested():
            state.transcription_requested.add(data.message_sid)
            state.transcription_requested_at[data.message_sid] = at
        case TranscriptAppended():
            _transcript(state, data, at)
        case ReplyRequested():
            state.turn = data.turn
            state.reply_in_flight = True
            state.turn_requested_at = at
            state.turn_message_sids = list(data.message_sids)
            state.turn_is_deadline_fallback = data.fallback_reason == TURN_DEADLINE
            covered = set(data.message_sids)
            state.waiting_message_sids = [s for s in state.waiting_message_sids
                                          if s not in covered]
        case AssistantMessageAppended():
            state.answered_turns.add(data.turn)
            if data.turn == state.turn:
                state.reply_in_flight = False
            state.history.append(("assistant", data.text, at))
            state.last_activity_at = at
            state.last_outbound_id = data.reply_event_id
            state.accepted_replies.append(data.reply_event_id)
            del state.accepted_replies[:-ACCEPTED_REPLIES_KEPT]
        case ReplySuperseded():
            state.superseded_turns.add(data.turn)
            if data.turn == state.turn:  # its reply is dropped; the next turn is due
                state.reply_in_flight = False
        case ConversationClosed():
            state.open = False
            state.reply_in_flight = False
            state.waiting_message_sids = []
            _done(state, data.command_id)
        case _:
            _people(state, envelope, data, seq, at)
    return state


def _people(state: ConversationState, envelope: Envelope, data: EventData, seq: int,
            at: datetime) -> None:
    """Handoffs, opt-outs and what the conversation itself sends (ADR 0022)."""
    match data:
        case HandoffRequested():
            _stop_the_bot(state)
            state.mode, state.operator_id = Mode.WAITING, None
            state.handoff_requested_version = seq
            state.handoff_deadline_at = data.deadline_at
            state.handoff_outcome = None
            if data.source != "operator":  # an operator who takes over writes themselves
                _owe_notice(state, "handoff_requested", envelope)
        case HandoffClaimed():
            state.mode, state.operator_id = Mode.HUMAN, data.operator_id
            state.handoff_deadline_at = None
            _done(state, data.command_id)
        case HandoffReleased():
            state.mode, state.operator_id = Mode.BOT, None
            state.handoff_deadline_at = None
            _done(state, data.command_id)
        case HandoffExpired():
            state.handoff_outcome = data.outcome
            _owe_notice(state, "handoff_expired", envelope)
        case UserOptedOut():
            _stop_the_bot(state)
            state.opted_out = True
            state.notice_due = ("opted_out", str(envelope.event_id))  # the one thing sent
        case UserOptedIn():
            state.opted_out = False
            state.notice_due = ("opted_in", str(envelope.event_id))
        case OutboundMessageRequested():
            state.last_outbound_id = str(envelope.event_id)
            if data.kind == "notice":
                state.notice_due = None
            else:  # a person wrote it: the bot answers with it in context after the release
                said = data.text or f"[template {data.template_name}]"
                state.history.append(("assistant", said, at))
                state.last_activity_at = at
            _done(state, data.command_id)


def _stop_the_bot(state: ConversationState) -> None:
    """Nothing the bot says goes out any more: the reply in flight is superseded (the view
    marks its turn so, a late reply is stale) and no message waits for a reply."""
    if state.reply_in_flight:
        state.superseded_turns.add(state.turn)
        state.reply_in_flight = False
    state.waiting_message_sids = []


def _owe_notice(state: ConversationState, purpose: str, cause: Envelope) -> None:
    if not state.opted_out:  # an opted-out user gets nothing but the opt-out confirmation
        state.notice_due = (purpose, str(cause.event_id))


def _done(state: ConversationState, command_id: str | None) -> None:
    if command_id:
        state.applied_commands.add(command_id)


def _user_message(state: ConversationState, data: UserMessageAppended, correlation_id: str,
                  at: datetime) -> None:
    sid = data.message_sid
    state.message_sids.add(sid)
    state.message_correlation[sid] = correlation_id
    state.message_received_at[sid] = data.received_at
    state.last_user_message_at = data.received_at
    state.last_activity_at = at
    if needs_transcript(data):
        state.awaiting_transcript.add(sid)
        state.history_index[sid] = len(state.history)
    state.history.append(("user", data.text or media_placeholder(data.media), at))
    state.just_appended_sid = sid
    if state.mode is Mode.BOT and not state.opted_out and sid not in state.waiting_message_sids:
        state.waiting_message_sids.append(sid)


def _transcript(state: ConversationState, data: TranscriptAppended, at: datetime) -> None:
    sid = data.message_sid
    state.awaiting_transcript.discard(sid)
    if data.failed:
        state.failed_transcripts.add(sid)
    text = data.text or (UNTRANSCRIBED_VOICE_NOTE if data.failed else VOICE_NOTE)
    index = state.history_index.pop(sid, None)
    if index is not None and index < len(state.history):
        _, _, said_at = state.history[index]
        state.history[index] = ("user", text, said_at)
    else:
        state.history.append(("user", text, at))


def apply_stored(state: ConversationState, envelope: Envelope, seq: int) -> ConversationState:
    """Fold a stored event: typed by the registry (a type this build does not know, such as
    a timer's, only moves the version)."""
    if envelope.type in registry:
        return apply(state, envelope, registry.decode(envelope).data, seq)
    state.version = max(state.version, seq)
    return state


def fold(conversation_id: str, events: Iterable[tuple[Envelope, int]]) -> ConversationState:
    """State from ``(envelope, stream sequence)`` pairs in stream order."""
    state = ConversationState(conversation_id=conversation_id)
    for envelope, seq in events:
        apply_stored(state, envelope, seq)
    return state
