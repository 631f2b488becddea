"""Conversation metrics, beside the runtime's."""

from __future__ import annotations

from prometheus_client import Counter
from switchboard_contracts import EventData
from switchboard_contracts.events.conversation import (
    ConversationClosed,
    ConversationStarted,
    HandoffExpired,
    HandoffRequested,
    OutboundMessageRequested,
    ReplyRequested,
    ReplySuperseded,
    TranscriptionRequested,
    UserOptedOut,
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

HANDOFFS = Counter("switchboard_conversation_handoffs_requested_total",
                   "Handoffs to a person requested, by source (user, agent, operator)", ["source"])
HANDOFFS_EXPIRED = Counter("switchboard_conversation_handoffs_expired_total",
                           "Handoffs nobody claimed by their deadline, by outcome", ["outcome"])
OPT_OUTS = Counter("switchboard_conversation_opt_outs_total", "Users who opted out")
OUTBOUND_REQUESTED = Counter(
    "switchboard_conversation_outbound_requested_total",
    "Messages the conversation asked the sender for (notices, operator replies, templates)",
    ["kind", "purpose"],
)
COMMANDS = Counter("switchboard_conversation_commands_total",
                   "Operator commands answered, by command and result (accepted or the reason)",
                   ["command", "result"])


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
        case HandoffRequested():
            HANDOFFS.labels(data.source).inc()
        case HandoffExpired():
            HANDOFFS_EXPIRED.labels(data.outcome).inc()
        case UserOptedOut():
            OPT_OUTS.inc()
        case OutboundMessageRequested():
            OUTBOUND_REQUESTED.labels(data.kind, data.purpose).inc()
