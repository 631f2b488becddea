"""Transitional: the agent's and the sender's old copy of the conversation's fold.

The conversation service owns its state now (``conversation.state``) and publishes a public
view (``conversation_view``); this module goes once the agent and the sender read that view.
``conversation_id_for`` lives in ``topology``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .envelope import Envelope
from .topology import conversation_id_for

__all__ = ["ConversationState", "apply", "conversation_id_for", "fold"]

WHATSAPP_WINDOW = timedelta(hours=24)


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
    # User messages no ReplyRequested covers yet (they arrived while a reply was in flight,
    # or await their transcript): the next turn answers them all.
    waiting_message_sids: list[str] = field(default_factory=list)
    message_sids: set[str] = field(default_factory=set)
    # The correlation_id each user message came with (a turn keeps its first message's).
    message_correlation: dict[str, str] = field(default_factory=dict)
    # Voice notes: transcripts still awaited, those requested, those that failed (by sid).
    awaiting_transcript: set[str] = field(default_factory=set)
    transcription_requested: set[str] = field(default_factory=set)
    failed_transcripts: set[str] = field(default_factory=set)
    # The current session's messages: role, text, at. A voice note holds its place with a
    # placeholder until its transcript replaces it; other media without text a placeholder.
    history: list[tuple[str, str, datetime]] = field(default_factory=list)
    history_index: dict[str, int] = field(default_factory=dict)  # voice note sid -> position
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


def needs_transcript(data: dict[str, Any]) -> bool:
    """A voice note: audio media and no text (the transcript becomes its text)."""
    return not (data.get("text") or "").strip() and any(
        str(m.get("content_type", "")).lower().startswith("audio/") for m in data.get("media") or ()
    )


def media_placeholder(data: dict[str, Any]) -> str:
    """What the history says for a message without text, e.g. ``[image]``."""
    types = [str(m.get("content_type", "")).lower() for m in data.get("media") or ()]
    kinds = {"image": "[image]", "video": "[video]", "audio": VOICE_NOTE}
    for content_type in types:
        found = kinds.get(content_type.split("/", 1)[0])
        if found:
            return found
    return "[attachment]" if types else ""


def _when(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


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
        state.history, state.history_index = [], {}  # a new session starts a fresh context
    elif kind == "UserMessageAppended":
        sid = data["message_sid"]
        state.message_sids.add(sid)
        state.message_correlation[sid] = envelope.correlation_id
        state.last_user_message_at = _when(data["received_at"])
        state.last_activity_at = at
        if needs_transcript(data):
            state.awaiting_transcript.add(sid)
            state.history_index[sid] = len(state.history)
        text = data.get("text") or media_placeholder(data)
        state.history.append(("user", text, at))
        if sid not in state.waiting_message_sids:
            state.waiting_message_sids.append(sid)
    elif kind == "TranscriptionRequested":
        state.transcription_requested.add(data["message_sid"])
    elif kind == "TranscriptAppended":
        sid = data["message_sid"]
        state.awaiting_transcript.discard(sid)
        failed = bool(data.get("failed"))
        if failed:
            state.failed_transcripts.add(sid)
        text = data.get("text") or (UNTRANSCRIBED_VOICE_NOTE if failed else VOICE_NOTE)
        index = state.history_index.pop(sid, None)
        if index is not None and index < len(state.history):
            _, _, said_at = state.history[index]
            state.history[index] = ("user", text, said_at)
        else:
            state.history.append(("user", text, at))
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
        if int(data["turn"]) == state.turn:  # its reply is dropped; the next turn is due
            state.reply_in_flight = False
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
