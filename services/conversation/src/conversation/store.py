"""The adapter to JetStream: the CONVERSATION stream, its aggregates and their idle timers.

Each conversation's events live on ``conversation.<id>.<Type>``, appended with the version
check over ``conversation.<id>.>``. Its idle timer is a JetStream scheduled message (ADR-51)
held on ``conversation.timers.<id>``: the server keeps one schedule per subject (a newer one
replaces the older), stores it durably with the stream, and when it is due publishes its body
(an ``IdleCheckDue`` envelope) to ``conversation.<id>.IdleCheckDue``, where the timer consumer
picks it up. No process holds a timer in memory, so restarts and replicas are safe.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from switchboard_contracts import Envelope
from switchboard_contracts.conversation_state import ConversationState, apply
from switchboard_contracts.events.conversation import IdleCheckDue
from switchboard_contracts.topology import CONVERSATION
from switchboard_runtime.aggregate import append, conversation_subject, load_conversation
from switchboard_runtime.bus import Publisher
from switchboard_runtime.telemetry import get_logger

from .domain import idle_due_at

log = get_logger(__name__)

EVENT_NAMESPACE = uuid.UUID("6f1e9b1c-6c0e-4f57-9d55-3c1f0f4b8a21")
SCHEDULE = "Nats-Schedule"
SCHEDULE_TARGET = "Nats-Schedule-Target"


def event_id_for(conversation_id: str, key: str) -> uuid.UUID:
    """The same fact of the same conversation always gets the same event id (and msg id)."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{conversation_id}:{key}")


def timer_subject(conversation_id: str) -> str:
    """Where a conversation's one idle schedule is held (outside its event subjects)."""
    return f"conversation.timers.{conversation_id}"


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ConversationStore:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._publisher = Publisher(js, CONVERSATION.name)

    async def load(self, conversation_id: str) -> ConversationState:
        return await load_conversation(self._js, conversation_id)

    async def append(self, state: ConversationState, envelope: Envelope) -> ConversationState:
        """Append at the state's version (ConcurrencyConflict if another writer was first)
        and return the state with the event folded in."""
        conversation_id = envelope.conversation_id
        assert conversation_id is not None
        ack = await append(
            self._publisher, conversation_subject(conversation_id),
            conversation_subject(conversation_id, envelope.type), envelope, state.version,
        )
        if ack.duplicate:  # stored before (a redelivery): the stream knows best
            return await self.load(conversation_id)
        return apply(state, envelope, ack.seq)

    async def set_idle_timer(
        self, state: ConversationState, cause: Envelope, idle_close: timedelta
    ) -> None:
        """Schedule the idle check for the state's last activity, replacing any older one."""
        due = idle_due_at(state, idle_close)
        conversation_id = state.conversation_id
        if due is None or conversation_id is None or state.last_activity_at is None:
            return
        last = state.last_activity_at
        check = Envelope.wrap(
            IdleCheckDue(last_activity_at=last),
            event_id=event_id_for(conversation_id, f"IdleCheckDue:{last.isoformat()}"),
            correlation_id=cause.correlation_id, causation_id=cause.event_id,
            tenant_id=state.tenant_id, conversation_id=conversation_id,
        )
        headers = {
            SCHEDULE: f"@at {rfc3339(due)}",
            SCHEDULE_TARGET: conversation_subject(conversation_id, IdleCheckDue.TYPE),
        }
        # No Nats-Msg-Id: the schedule subject keeps one message anyway, and a timer set
        # again for the same activity (after an early check) must not be dropped as a dup.
        await self._js.publish(timer_subject(conversation_id), check.to_bytes(),
                               stream=CONVERSATION.name, headers=headers, timeout=5.0)
