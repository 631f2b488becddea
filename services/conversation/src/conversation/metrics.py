"""Conversation metrics, beside the runtime's."""

from __future__ import annotations

from prometheus_client import Counter

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
