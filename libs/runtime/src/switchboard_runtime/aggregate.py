"""Where the event-sourcing helpers used to live (now ``switchboard_runtime.eventsourcing``),
kept for their importers; and the conversation's subjects, for the services that consume its
public events (the transcription's and the agent's filters)."""

from __future__ import annotations

from .eventsourcing import ConcurrencyConflict, Stored, aggregate_subject, append, replay

__all__ = ["ConcurrencyConflict", "Stored", "append", "conversation_subject", "replay"]


def conversation_subject(conversation_id: str, event_type: str = ">") -> str:
    return aggregate_subject("conversation", conversation_id, event_type)
