"""The Conversation aggregate's state, folded from its events.

Pure and shared: the conversation service decides with it, and the agent and the sender use
the same fold to ask "is the 24-hour window open?" and "is this turn's reply stale?" (and,
later, "is a human in charge?") from the one source of truth, the conversation's subject.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .envelope import Envelope

WHATSAPP_WINDOW = timedelta(hours=24)


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
    # User messages that arrived while a reply was in flight: the next turn answers them.
    waiting_message_sids: list[str] = field(default_factory=list)
    message_sids: set[str] = field(default_factory=set)
    # Transcripts still awaited, by message sid.
    awaiting_transcript: set[str] = field(default_factory=set)
    history: list[tuple[str, str, datetime]] = field(default_factory=list)  # role, text, at
    answered_turns: set[int] = field(default_factory=set)
    superseded_turns: set[int] = field(default_factory=set)
    human_mode: bool = False  # reserved for human handoff
    version: int = 0  # stream sequence of the last event applied

    def window_open(self, now: datetime) -> bool:
        """WhatsApp's customer-service window: 24 h from the user's last message."""
        return (self.last_user_message_at is not None
                and now - self.last_user_message_at < WHATSAPP_WINDOW)

    def reply_is_stale(self, turn: int) -> bool:
        """A newer turn exists, or this one was superseded by messages that came meanwhile."""
        return turn < self.turn or turn in self.superseded_turns


def apply(state: ConversationState, envelope: Envelope, seq: int = 0) -> ConversationState:
    data, kind, at = envelope.data, envelope.type, envelope.occurred_at
    state.conversation_id = envelope.conversation_id or state.conversation_id
    state.tenant_id = envelope.tenant_id or state.tenant_id
    state.version = max(state.version, seq)
    if kind == "ConversationStarted":
        state.open = True
        state.session = int(data.get("session", state.session + 1))
        state.user_address = data["user_address"]
        state.business_address = data["business_address"]
        state.account_sid = data["account_sid"]
    elif kind == "UserMessageAppended":
        sid = data["message_sid"]
        state.message_sids.add(sid)
        state.last_user_message_at = datetime.fromisoformat(data["received_at"]) if isinstance(
            data["received_at"], str) else data["received_at"]
        state.last_activity_at = at
        if data.get("media") and not data.get("text"):
            state.awaiting_transcript.add(sid)
        else:
            state.history.append(("user", data.get("text", ""), at))
        if state.reply_in_flight:
            state.waiting_message_sids.append(sid)
    elif kind == "TranscriptAppended":
        state.awaiting_transcript.discard(data["message_sid"])
        state.history.append(("user", data.get("text", ""), at))
    elif kind == "ReplyRequested":
        state.turn = int(data["turn"])
        state.reply_in_flight = True
        state.waiting_message_sids = [
            sid for sid in state.waiting_message_sids if sid not in data["message_sids"]
        ]
    elif kind == "AssistantMessageAppended":
        state.answered_turns.add(int(data["turn"]))
        if int(data["turn"]) == state.turn:
            state.reply_in_flight = False
        state.history.append(("assistant", data["text"], at))
        state.last_activity_at = at
    elif kind == "ReplySuperseded":
        state.superseded_turns.add(int(data["turn"]))
    elif kind == "ConversationClosed":
        state.open = False
        state.reply_in_flight = False
        state.waiting_message_sids = []
    return state


def fold(events: Iterable[tuple[Envelope, int]]) -> ConversationState:
    """State from ``(envelope, stream sequence)`` pairs in stream order."""
    state = ConversationState()
    for envelope, seq in events:
        apply(state, envelope, seq)
    return state
