"""One handler per consumed event: load the conversation, decide, append, repeat.

Every handler runs the same loop (``_decide_and_append``): fold the conversation from its
subject, ask the domain for the next event, append it with the version check, and ask again
until nothing is left. A concurrent writer makes an append fail with ``ConcurrencyConflict``:
the loop reloads and decides again, a bounded number of times, then raises so the consumer
redelivers the event later. Last, the idle timer is (re)set for the latest activity.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from switchboard_contracts import Envelope, Event
from switchboard_contracts.conversation_state import ConversationState, conversation_id_for
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import IdleCheckDue, ReplyRequested
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.events.transcription import TranscriptionCompleted, TranscriptionFailed
from switchboard_runtime.aggregate import ConcurrencyConflict
from switchboard_runtime.bus import PermanentError
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .domain import (
    Step,
    decide_idle,
    decide_inbound,
    decide_reply,
    decide_transcript,
)
from .store import ConversationStore, event_id_for

log = get_logger(__name__)

Decide = Callable[[ConversationState], Step | None]
LanguageOf = Callable[[str], str | None]  # tenant id -> the tenant's language, if known


class ConversationHandlers:
    def __init__(
        self,
        store: ConversationStore,
        language_of: LanguageOf,
        *,
        idle_close_s: float,
        context_size: int,
        max_conflicts: int,
    ) -> None:
        self._store = store
        self._language_of = language_of
        self._idle_close = timedelta(seconds=idle_close_s)
        self._context_size = context_size
        self._max_conflicts = max_conflicts

    # -- handlers ----------------------------------------------------------------------------
    async def on_inbound(self, event: Event[InboundMessageReceived]) -> None:
        envelope, msg = event.envelope, event.data
        if not envelope.tenant_id:
            raise PermanentError("InboundMessageReceived without a tenant")
        conversation_id = conversation_id_for(envelope.tenant_id, msg.from_address)
        language = self._language_of(envelope.tenant_id)
        await self._decide_and_append(
            conversation_id, envelope,
            lambda state: decide_inbound(
                state, msg, envelope.occurred_at, language_hint=language,
                context_size=self._context_size,
            ),
        )

    async def on_reply(self, event: Event[ReplyGenerated]) -> None:
        envelope, reply = event.envelope, event.data
        reply_event_id = str(envelope.event_id)
        await self._decide_and_append(
            self._conversation_of(envelope), envelope,
            lambda state: decide_reply(state, reply, reply_event_id,
                                       context_size=self._context_size),
        )

    async def on_transcript(
        self, event: Event[TranscriptionCompleted] | Event[TranscriptionFailed]
    ) -> None:
        result = event.data
        await self._decide_and_append(
            self._conversation_of(event.envelope), event.envelope,
            lambda state: decide_transcript(state, result, context_size=self._context_size),
        )

    async def on_idle_check(self, event: Event[IdleCheckDue]) -> None:
        check = event.data
        await self._decide_and_append(
            self._conversation_of(event.envelope), event.envelope,
            lambda state: decide_idle(state, check, datetime.now(UTC), self._idle_close),
        )

    # -- the loop ----------------------------------------------------------------------------
    async def _decide_and_append(
        self, conversation_id: str, cause: Envelope, decide: Decide
    ) -> None:
        state = await self._store.load(conversation_id)
        conflicts = 0
        while (step := decide(state)) is not None:
            envelope = cause.caused(
                step.data,
                event_id=event_id_for(conversation_id, step.key),
                conversation_id=conversation_id,
                tenant_id=cause.tenant_id or state.tenant_id,
                correlation_id=step.correlation_id or cause.correlation_id,
            )
            try:
                state = await self._store.append(state, envelope)
            except ConcurrencyConflict:
                conflicts += 1
                metrics.CONFLICTS.inc()
                if conflicts >= self._max_conflicts:
                    raise  # the consumer redelivers the event later
                await asyncio.sleep(random.uniform(0, 0.005 * conflicts))  # noqa: S311
                state = await self._store.load(conversation_id)
                continue
            _count(step)
            log.info("conversation event appended", event_type=envelope.type,
                     conversation_id=conversation_id, version=state.version)
        # Also when nothing was appended: a redelivery after a crash sets a missing timer.
        await self._store.set_idle_timer(state, cause, self._idle_close)

    @staticmethod
    def _conversation_of(envelope: Envelope) -> str:
        if not envelope.conversation_id:
            raise PermanentError(f"{envelope.type} without a conversation_id")
        return envelope.conversation_id


def _count(step: Step) -> None:
    kind = step.data.TYPE
    if kind == "ConversationStarted":
        metrics.STARTED.inc()
    elif kind == "ConversationClosed":
        metrics.CLOSED.labels(getattr(step.data, "reason", "unknown")).inc()
    elif kind == "ReplySuperseded":
        metrics.SUPERSEDED.inc()
    elif kind == "TranscriptionRequested":
        metrics.TRANSCRIPTIONS_REQUESTED.inc()
    elif isinstance(step.data, ReplyRequested):
        metrics.TURNS_REQUESTED.inc()
        metrics.COALESCED.inc(len(step.data.message_sids) - 1)
