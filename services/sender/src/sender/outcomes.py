"""What became of each part, recorded in the reply's tree: sent (its MessageSid) or not sent
(why). An outcome is a fact: its only decision is "unless the part has one", taken again on
each conflict by the runtime's loop (``ReplyStore.decide``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from switchboard_contracts import Envelope
from switchboard_contracts.events.sender import (
    OutboundMessageFailed,
    OutboundMessageSent,
    OutboundReplyAccepted,
)
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .state import ReplyState
from .store import Decision, ReplyStore

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
        data = OutboundMessageSent(
            turn=state.turn, part=number, parts=state.count, message_sid=sid,
            text=state.texts[number - 1], to_address=state.to_address,
            from_address=state.from_address,
        )
        sent = state.accepted.caused(data, causation_id=cause.event_id)
        if not await self._append(state, number, (sent, data)):
            return
        metrics.SENT.labels(how).inc()
        if number == 1 and how == "created" and state.acceptance:  # once; a lookup: time unknown
            _observe_turn(state.acceptance, sent.occurred_at)
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
            data = OutboundMessageFailed(
                turn=state.turn, part=part, parts=state.count, reason=reason,
                error_code=error_code, retryable=False,
            )
            failed = state.accepted.caused(data, causation_id=cause.event_id)
            if not await self._append(state, part, (failed, data)):
                return
            metrics.FAILED.labels(reason, error_code or "").inc()
        log.warning("reply parts not sent", reason=reason, error_code=error_code, part=number,
                    parts=state.count)

    async def _append(self, state: ReplyState, number: int, outcome: Decision) -> bool:
        """Append a part's outcome, folded into ``state``; False when the part has one
        already (another delivery)."""
        appended = await self._store.decide(
            state, lambda current: None if current.part(number).done else outcome)
        return bool(appended)
