"""Where the event-sourcing helpers used to live (now ``switchboard_runtime.eventsourcing``).

``conversation_subject`` names the conversation's subjects for the services that consume its
public events (the transcription's and the agent's filters). ``load_conversation`` folds the
conversation's private stream with the contracts' copy of its state: it goes once the agent
and the sender read the public view (``switchboard_contracts.conversation_view``) instead.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from switchboard_contracts.conversation_state import ConversationState, fold
from switchboard_contracts.topology import CONVERSATION

from .eventsourcing import ConcurrencyConflict, Stored, aggregate_subject, append, replay

__all__ = ["ConcurrencyConflict", "Stored", "append", "conversation_subject",
           "load_conversation", "replay"]


def conversation_subject(conversation_id: str, event_type: str = ">") -> str:
    return aggregate_subject("conversation", conversation_id, event_type)


async def load_conversation(js: JetStreamContext, conversation_id: str) -> ConversationState:
    events = await replay(js, CONVERSATION.name, conversation_subject(conversation_id))
    state = fold((e.envelope, e.seq) for e in events)
    state.conversation_id = conversation_id
    return state
