"""One handler per consumed event: decide, append, repeat (``eventsourcing.decide_and_append``).

A fact's steps (``domain``) are folded into a scratch copy of the conversation until none is
left, and appended together in one atomic batch with the version check. A concurrent writer
(another replica) makes the append fail: the loop reloads and decides again, a bounded number
of times, then raises so the consumer redelivers the event later. In this process one handler
at a time works on a conversation (its in-memory copy is shared). After the appends, the
public view is written and the conversation's timers are (re)set: after what the user waits
for is stored, since the next service acts on it at once.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from switchboard_contracts import Envelope, Event, EventData
from switchboard_contracts.commands import Command, CommandResult, SendTemplate
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import (
    HandoffDeadlineDue,
    IdleCheckDue,
    TranscriptDeadlineDue,
    TurnDeadlineDue,
)
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.events.transcription import TranscriptionCompleted, TranscriptionFailed
from switchboard_contracts.topology import conversation_id_for
from switchboard_runtime.bus import PermanentError
from switchboard_runtime.eventsourcing import KeyedLocks, decide_and_append
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .command_rules import INVALID_COMMAND, UNKNOWN_CONVERSATION, Refused, decide_command
from .policy import TenantPolicy
from .rules import (
    Step,
    decide_handoff_deadline,
    decide_idle,
    decide_inbound,
    decide_reply,
    decide_transcript,
    decide_transcript_deadline,
    decide_turn_deadline,
)
from .state import ConversationState, apply
from .store import ConversationStore, event_id_for
from .view import ViewWriter

log = get_logger(__name__)

Decide = Callable[[ConversationState], Step | None]
Decision = list[tuple[Envelope, EventData]]
PolicyOf = Callable[[str], TenantPolicy]  # tenant id -> what the rules need of its settings

MAX_STEPS = 16  # a fact takes at most a handful of steps; more is a rule that never settles


class ConversationHandlers:
    def __init__(
        self,
        store: ConversationStore,
        views: ViewWriter,
        policy_of: PolicyOf,
        *,
        idle_close_s: float,
        turn_deadline_s: float,
        transcript_deadline_s: float,
        context_size: int,
        max_conflicts: int,
    ) -> None:
        self._store = store
        self._views = views
        self._policy_of = policy_of
        self._idle_close = timedelta(seconds=idle_close_s)
        self._turn_deadline = timedelta(seconds=turn_deadline_s)
        self._transcript_deadline = timedelta(seconds=transcript_deadline_s)
        self._context_size = context_size
        self._max_conflicts = max_conflicts
        self._writers = KeyedLocks()

    # -- handlers ----------------------------------------------------------------------------
    async def on_inbound(self, event: Event[InboundMessageReceived]) -> None:
        envelope, msg = event.envelope, event.data
        if not envelope.tenant_id:
            raise PermanentError("InboundMessageReceived without a tenant")
        conversation_id = conversation_id_for(envelope.tenant_id, msg.from_address)
        policy = self._policy_of(envelope.tenant_id)
        await self._handle(
            conversation_id, envelope,
            lambda state: decide_inbound(
                state, msg, envelope.occurred_at, policy=policy,
                context_size=self._context_size,
            ),
        )

    async def on_reply(self, event: Event[ReplyGenerated]) -> None:
        envelope, reply = event.envelope, event.data
        reply_event_id = str(envelope.event_id)
        policy = self._policy_of(envelope.tenant_id or "")
        now = datetime.now(UTC)
        await self._handle(
            self._conversation_of(envelope), envelope,
            lambda state: decide_reply(state, reply, reply_event_id, policy=policy, now=now,
                                       context_size=self._context_size),
        )

    async def on_transcript(
        self, event: Event[TranscriptionCompleted] | Event[TranscriptionFailed]
    ) -> None:
        result = event.data
        policy = self._policy_of(event.envelope.tenant_id or "")
        await self._handle(
            self._conversation_of(event.envelope), event.envelope,
            lambda state: decide_transcript(state, result, policy=policy,
                                            context_size=self._context_size),
        )

    async def on_handoff_deadline(self, event: Event[HandoffDeadlineDue]) -> None:
        due = event.data
        policy = self._policy_of(event.envelope.tenant_id or "")
        now = datetime.now(UTC)
        await self._handle(
            self._conversation_of(event.envelope), event.envelope,
            lambda state: decide_handoff_deadline(state, due, policy=policy, now=now,
                                                  context_size=self._context_size),
        )

    async def on_command(self, command: Command) -> CommandResult:
        """Decide an operator's command like a fact; the answer says whether it was accepted
        (and the conversation's version, mode and operator after it)."""
        conversation_id = command.conversation_id
        if conversation_id is None:  # a template to a user by address (business initiated)
            if not isinstance(command, SendTemplate) or command.user_address is None:
                return CommandResult(accepted=False, reason=INVALID_COMMAND)
            conversation_id = conversation_id_for(command.tenant_id, command.user_address)
        policy = self._policy_of(command.tenant_id)
        refused: Refused | None = None

        def decide(state: ConversationState) -> Step | None:
            # The last call decides on the current state (decide_and_append ends so).
            nonlocal refused
            outcome = decide_command(state, command, policy, datetime.now(UTC))
            refused = outcome if isinstance(outcome, Refused) else None
            return None if isinstance(outcome, Refused) else outcome

        cause = command_envelope(command, conversation_id)
        async with self._writers.hold(conversation_id):
            state = await self._decide(conversation_id, cause, decide)
            if refused is not None and refused.reason == UNKNOWN_CONVERSATION:
                # Nothing of another tenant's conversation is told, or touched.
                return CommandResult(accepted=False, reason=refused.reason,
                                     conversation_id=conversation_id)
            await self._upkeep(state, cause)
        return CommandResult(
            accepted=refused is None, reason=refused.reason if refused else None,
            conversation_id=conversation_id, version=state.version, mode=state.mode.value,
            operator_id=state.operator_id,
        )

    async def on_idle_check(self, event: Event[IdleCheckDue]) -> None:
        check = event.data
        await self._handle(
            self._conversation_of(event.envelope), event.envelope,
            lambda state: decide_idle(state, check, datetime.now(UTC), self._idle_close),
        )

    async def on_turn_deadline(self, event: Event[TurnDeadlineDue]) -> None:
        due = event.data
        await self._handle(
            self._conversation_of(event.envelope), event.envelope,
            lambda state: decide_turn_deadline(state, due, context_size=self._context_size),
        )

    async def on_transcript_deadline(self, event: Event[TranscriptDeadlineDue]) -> None:
        due = event.data
        await self._handle(
            self._conversation_of(event.envelope), event.envelope,
            lambda state: decide_transcript_deadline(state, due,
                                                     context_size=self._context_size),
        )

    # -- the loop ----------------------------------------------------------------------------
    async def _handle(self, conversation_id: str, cause: Envelope, decide: Decide) -> None:
        async with self._writers.hold(conversation_id):
            await self._upkeep(await self._decide(conversation_id, cause, decide), cause)

    async def _decide(self, conversation_id: str, cause: Envelope, decide: Decide
                      ) -> ConversationState:
        return await decide_and_append(
            self._store, conversation_id,
            lambda current: decide_steps(conversation_id, cause, current, decide),
            max_conflicts=self._max_conflicts, on_conflict=metrics.CONFLICTS.inc,
        )

    async def _upkeep(self, state: ConversationState, cause: Envelope) -> None:
        """Also when nothing was appended: a redelivery after a crash (or after a failed
        write) writes a missing view and sets a missing timer."""
        await asyncio.gather(
            self._views.write(state),
            self._store.set_idle_timer(state, cause, self._idle_close),
            self._store.set_deadlines(state, cause, self._turn_deadline,
                                      self._transcript_deadline),
        )

    @staticmethod
    def _conversation_of(envelope: Envelope) -> str:
        if not envelope.conversation_id:
            raise PermanentError(f"{envelope.type} without a conversation_id")
        return envelope.conversation_id



def command_envelope(command: Command, conversation_id: str) -> Envelope:
    """What a command's events are caused by and correlated with: the command itself (never
    stored; its id derives from the command_id, its payload stays empty: no message text)."""
    return Envelope(
        event_id=event_id_for(conversation_id, f"command:{command.command_id}"),
        type=f"Command.{command.command}", version="1.0", correlation_id=command.command_id,
        tenant_id=command.tenant_id, conversation_id=conversation_id, data={},
    )


def decide_steps(conversation_id: str, cause: Envelope, state: ConversationState,
                 decide: Decide) -> Decision | None:
    """Every step the fact takes from ``state``, each folded into a scratch copy so the next
    step sees it; None if there is nothing to do."""
    scratch: ConversationState | None = None
    decision: Decision = []
    while (step := decide(state if scratch is None else scratch)) is not None:
        if len(decision) >= MAX_STEPS:
            raise RuntimeError(f"no end to the steps after {[d.TYPE for _, d in decision]}")
        envelope = cause.caused(
            step.data,
            event_id=event_id_for(conversation_id, step.key),
            conversation_id=conversation_id,
            tenant_id=cause.tenant_id or state.tenant_id,
            correlation_id=step.correlation_id or cause.correlation_id,
        )
        decision.append((envelope, step.data))
        if scratch is None:
            scratch = copy.deepcopy(state)
        apply(scratch, envelope, step.data)
    return decision or None
