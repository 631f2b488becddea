"""The adapter to JetStream: the CONVERSATION stream, its aggregates and their timers.

Each conversation's events live on ``conversation.<id>.<Type>``; one decision is one append
with the version check over ``conversation.<id>.>``, its events stored whole or not at all
(``eventsourcing.append_batch``: an atomic batch, ADR-50, or a plain publish for one event).
Recent conversations stay in memory (a bounded LRU) with their version: a stale copy is caught by
that check and reloaded from the stream (one batch direct get).

Its idle timer is a JetStream scheduled message (ADR-51) held on ``conversation.timers.<id>``:
the server keeps one schedule per subject (a newer one replaces the older), stores it durably
with the stream, and when it is due publishes its body (an ``IdleCheckDue`` envelope) to
``conversation.<id>.IdleCheckDue``, where the timer consumer picks it up. No process holds a
timer in memory, so restarts and replicas are safe.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from switchboard_contracts import Envelope, EventData
from switchboard_contracts.events.conversation import (
    HandoffDeadlineDue,
    IdleCheckDue,
    TranscriptDeadlineDue,
    TurnDeadlineDue,
)
from switchboard_contracts.topology import CONVERSATION
from switchboard_runtime import eventsourcing
from switchboard_runtime.eventsourcing import (
    LruCache,
    append_batch,
    last_version,
    replay,
    schedule_at,
)
from switchboard_runtime.telemetry import get_logger

from .metrics import CONFLICTS, count
from .rules import handoff_deadline_at, idle_due_at, turn_deadline_at
from .state import ConversationState, apply, fold

log = get_logger(__name__)

EVENT_NAMESPACE = uuid.UUID("6f1e9b1c-6c0e-4f57-9d55-3c1f0f4b8a21")
PREFIX = "conversation"


def event_id_for(conversation_id: str, key: str) -> uuid.UUID:
    """The same fact of the same conversation always gets the same event id (and msg id)."""
    return eventsourcing.event_id_for(EVENT_NAMESPACE, conversation_id, key)


def conversation_subject(conversation_id: str, event_type: str = ">") -> str:
    return eventsourcing.aggregate_subject(PREFIX, conversation_id, event_type)


def timer_subject(conversation_id: str, timer: str | None = None) -> str:
    """Where a conversation's schedules are held (outside its event subjects): the idle
    timer on ``conversation.timers.<id>``, others on ``conversation.timers.<id>.<timer>``."""
    base = f"{PREFIX}.timers.{conversation_id}"
    return f"{base}.{timer}" if timer else base


class ConversationStore:
    """``eventsourcing.Repository`` of conversations; a decision is the typed events to
    append, each with its envelope."""

    def __init__(self, nc: NATS, js: JetStreamContext, cache_size: int = 10_000) -> None:
        self._nc = nc
        self._js = js
        self._recent: LruCache[str, ConversationState] = LruCache(cache_size)

    def cached(self, conversation_id: str) -> ConversationState | None:
        return self._recent.get(conversation_id)

    async def load(self, conversation_id: str) -> ConversationState:
        events = await replay(self._js, CONVERSATION.name, conversation_subject(conversation_id))
        state = fold(conversation_id, ((e.envelope, e.seq) for e in events))
        self._recent.put(conversation_id, state)
        return state

    async def version(self, conversation_id: str) -> int:
        return await last_version(self._js, CONVERSATION.name,
                                  conversation_subject(conversation_id))

    async def append(self, state: ConversationState,
                     decision: Sequence[tuple[Envelope, EventData]]) -> ConversationState:
        """Append the decision's events at the state's version (``ConcurrencyConflict`` if
        another writer was first) and return the state with them folded in."""
        conversation_id = state.conversation_id
        assert conversation_id is not None
        tree = conversation_subject(conversation_id)
        try:
            ack = await append_batch(
                self._nc, CONVERSATION.name, tree,
                [(conversation_subject(conversation_id, env.type), env) for env, _ in decision],
                state.version,
            )
        except eventsourcing.ConcurrencyConflict:
            raise
        except Exception:
            self._recent.drop(conversation_id)  # stored or not: only the stream can tell
            raise
        if ack.duplicate:  # stored before (another writer, a redelivery): reload
            CONFLICTS.inc()
            return await self.load(conversation_id)
        first = ack.seq - len(decision) + 1  # a batch is stored contiguously
        for offset, (envelope, data) in enumerate(decision):
            apply(state, envelope, data, first + offset)
            count(data)
            log.info("conversation event appended", event_type=envelope.type,
                     conversation_id=conversation_id, version=first + offset)
        self._recent.put(conversation_id, state)
        return state

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
        await self.schedule(conversation_id, None, check, due)

    async def set_deadlines(self, state: ConversationState, cause: Envelope,
                            turn_deadline: timedelta, transcript_deadline: timedelta) -> None:
        """One durable deadline for the reply in flight, one per awaited transcript (ADR 0016)
        and one for the pending handoff (ADR 0022); setting one again for the same fact is
        harmless (same due time)."""
        conversation_id = state.conversation_id
        if conversation_id is None:
            return
        timers: list[tuple[str, EventData, datetime]] = []
        turn_due = turn_deadline_at(state, turn_deadline)
        if turn_due is not None:
            timers.append(("turn", TurnDeadlineDue(turn=state.turn), turn_due))
        for sid in sorted(state.awaiting_transcript & state.transcription_requested):
            requested_at = state.transcription_requested_at.get(sid)
            if requested_at is not None:
                timers.append((f"transcript.{sid}", TranscriptDeadlineDue(message_sid=sid),
                               requested_at + transcript_deadline))
        handoff_due = handoff_deadline_at(state)
        if handoff_due is not None:
            timers.append(("handoff", HandoffDeadlineDue(
                requested_version=state.handoff_requested_version), handoff_due))
        await asyncio.gather(*(
            self.schedule(conversation_id, timer, Envelope.wrap(
                data, event_id=event_id_for(conversation_id, f"{data.TYPE}:{timer}:{due}"),
                correlation_id=cause.correlation_id, causation_id=cause.event_id,
                tenant_id=state.tenant_id, conversation_id=conversation_id,
            ), due) for timer, data, due in timers))

    async def schedule(self, conversation_id: str, timer: str | None, body: Envelope,
                       due_at: datetime) -> None:
        await schedule_at(self._js, CONVERSATION.name, timer_subject(conversation_id, timer),
                          conversation_subject(conversation_id, body.type), due_at, body)
