"""Conversation metrics, beside the runtime's."""

from __future__ import annotations

from prometheus_client import Counter
from switchboard_contracts import EventData
from switchboard_contracts.events.conversation import (
    ConversationClosed,
    ConversationStarted,
    ReplyRequested,
    ReplySuperseded,
    TranscriptionRequested,
)

STARTED = Counter(
    "switchboard_conversation_started_total", "Conversation sessions started (first or after idle)"
)
CLOSED = Counter("switchboard_conversation_closed_total", "Conversations closed", ["reason"])
TURNS_REQUESTED = Counter(
    "switchboard_conversation_turns_requested_total", "Replies requested from the agent (turns)"
)
COALESCED = Counter(
    "switchboard_conversation_coalesced_messages_total",
    "User messages answered together with an earlier one in the same turn",
)
SUPERSEDED = Counter(
    "switchboard_conversation_replies_superseded_total",
    "Replies dropped because newer user messages arrived while they were generated",
)
TRANSCRIPTIONS_REQUESTED = Counter(
    "switchboard_conversation_transcriptions_requested_total", "Voice notes sent to transcription"
)
CONFLICTS = Counter(
    "switchboard_conversation_conflicts_total",
    "Appends refused by the version check (another writer was first); reloaded and retried",
)


def count(data: EventData) -> None:
    """Count an appended event."""
    match data:
        case ReplyRequested():
            TURNS_REQUESTED.inc()
            COALESCED.inc(len(data.message_sids) - 1)
        case ReplySuperseded():
            SUPERSEDED.inc()
        case TranscriptionRequested():
            TRANSCRIPTIONS_REQUESTED.inc()
        case ConversationClosed():
            CLOSED.labels(data.reason).inc()
        case ConversationStarted():
            STARTED.inc()
