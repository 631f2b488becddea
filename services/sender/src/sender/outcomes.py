"""What became of each part, recorded in the reply's tree: sent (its MessageSid) or not sent
(why). An outcome is a fact, not a decision: on a conflict it is appended again at the new
version, unless the part has an outcome by then."""

from __future__ import annotations

from datetime import datetime, timedelta

from switchboard_contracts import Envelope
from switchboard_contracts.events.sender import (
    OutboundMessageFailed,
    OutboundMessageSent,
    OutboundReplyAccepted,
)
from switchboard_runtime.eventsourcing import ConcurrencyConflict
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .state import ReplyState
from .store import MAX_CONFLICTS, ReplyStore

log = get_logger(__name__)


def _observe_turn(acceptance: OutboundReplyAccepted, sent_at: datetime) -> None:
    """The "webhook to reply" SLO (ADR 0019): from the turn's start the reply carries (none
    on replies accepted before it did) to its first part's successful Messages API call."""
    if acceptance.turn_started_at is None:
        return
    elapsed = sent_at - acceptance.turn_started_at
    fallback = "true" if acceptance.fallback else "false"
    metrics.TURN_SECONDS.labels(fallback).observe(max(elapsed.total_seconds(), 0.0))


class Outcomes:
    def __init__(self, store: ReplyStore, part_timeout: timedelta) -> None:
        self._store = store
        self._part_timeout = part_timeout

    async def sent(self, state: ReplyState, cause: Envelope, number: int, sid: str,
                   how: str) -> None:
        """Part ``number`` went out as ``sid`` (``how``: created, or found by lookup); the
        next part's timer is set."""
        assert state.accepted is not None
        # The map first: a callback can come back before the event is stored.
        await self._store.remember_sid(sid, state.reply_id, number,
                                       state.accepted.tenant_id or "")
        sent = state.accepted.caused(OutboundMessageSent(
            turn=state.turn, part=number, parts=state.count, message_sid=sid,
            text=state.texts[number - 1], to_address=state.to_address,
            from_address=state.from_address,
        ), causation_id=cause.event_id)
        if not await self._append(state, number, sent):
            return
        metrics.SENT.labels(how).inc()
        if number == 1 and how == "created" and state.acceptance:  # once; a lookup: time unknown
            _observe_turn(state.acceptance, sent.occurred_at)
        part = state.part(number)
        part.message_sid, part.sent_at = sid, sent.occurred_at
        if number < state.count:
            await self._store.schedule_timeout(state, cause, number,
                                               sent.occurred_at + self._part_timeout)

    async def failed(self, state: ReplyState, cause: Envelope, number: int, reason: str,
                     error_code: str | None) -> None:
        """Record part ``number`` and every later part as not sent, for ``reason``: a reply
        stops at its first failed part, and each part it will never send gets its outcome, so
        the read models and the fault suite account for every part (none stays pending)."""
        assert state.accepted is not None
        for part in range(number, max(state.count, number) + 1):
            if part != number and state.part(part).done:
                continue
            failed = state.accepted.caused(OutboundMessageFailed(
                turn=state.turn, part=part, parts=state.count, reason=reason,
                error_code=error_code, retryable=False,
            ), causation_id=cause.event_id)
            if not await self._append(state, part, failed):
                return
            state.part(part).failed = reason
            metrics.FAILED.labels(reason, error_code or "").inc()
        log.warning("reply parts not sent", reason=reason, error_code=error_code, part=number,
                    parts=state.count)

    async def _append(self, state: ReplyState, number: int, outcome: Envelope) -> bool:
        """Append a part's outcome; False when the part has one already (another delivery)."""
        for _ in range(MAX_CONFLICTS):
            try:
                await self._store.append(state, outcome)
                return True
            except ConcurrencyConflict:
                fresh = await self._store.load(state.reply_id, at_least=state.version + 1)
                if fresh.part(number).done:
                    return False
                state.version = fresh.version
        raise RuntimeError("could not record a part's outcome")
