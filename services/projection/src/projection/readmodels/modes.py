"""A conversation's mode (bot, waiting for a person, answered by an operator) and the user's
opt-out, from the conversation's handoff and opt-out events (ADR 0022).

Each is the latest of several events, so each row carries the CONVERSATION stream sequence of
its event (the aggregate's own order, which its appends are checked against) and the merge
keeps the highest (``conversations.CONVERSATIONS``): a duplicate or an out-of-order delivery
leaves the same row, and a rebuild gives it again. Three groups, each with its sequence: the
mode and its operator (``mode_seq``); the current handoff's source, reason and start
(``handoff_seq``); the opt-out (``opt_seq``).
"""

from __future__ import annotations

from switchboard_contracts import Envelope
from switchboard_contracts.conversation_view import Mode
from switchboard_contracts.events.conversation import (
    HandoffClaimed,
    HandoffExpired,
    HandoffReleased,
    HandoffRequested,
    UserOptedIn,
    UserOptedOut,
)

from ..writes import Writes
from .base import SequencedApplier
from .conversations import upsert_conversation


def requested(envelope: Envelope, data: HandoffRequested, seq: int, writes: Writes) -> None:
    # Waiting, as the aggregate has it, even for an operator's take-over: its HandoffClaimed
    # follows at once.
    upsert_conversation(envelope, writes, mode=Mode.WAITING.value, operator_id=None,
                        mode_seq=seq, waiting_since=envelope.occurred_at,
                        handoff_source=data.source, handoff_reason=data.reason,
                        handoff_seq=seq)


def claimed(envelope: Envelope, data: HandoffClaimed, seq: int, writes: Writes) -> None:
    upsert_conversation(envelope, writes, mode=Mode.HUMAN.value, operator_id=data.operator_id,
                        mode_seq=seq)


def released(envelope: Envelope, _data: HandoffReleased, seq: int, writes: Writes) -> None:
    """Back to the bot, no current handoff (also when the conversation is closed: a close
    releases first, so a closed conversation's next session starts with the bot)."""
    upsert_conversation(envelope, writes, mode=Mode.BOT.value, operator_id=None, mode_seq=seq,
                        waiting_since=None, handoff_source=None, handoff_reason=None,
                        handoff_seq=seq)


def expired(envelope: Envelope, _data: HandoffExpired, _seq: int, writes: Writes) -> None:
    """The user was told nobody came; the mode changes only by a HandoffReleased after it
    (outcome ``bot``)."""
    upsert_conversation(envelope, writes, handoff_expired_at=envelope.occurred_at)


def opted_out(envelope: Envelope, _data: UserOptedOut, seq: int, writes: Writes) -> None:
    upsert_conversation(envelope, writes, opted_out=True, opted_out_at=envelope.occurred_at,
                        opt_seq=seq)


def opted_in(envelope: Envelope, _data: UserOptedIn, seq: int, writes: Writes) -> None:
    upsert_conversation(envelope, writes, opted_out=False, opted_out_at=None, opt_seq=seq)


APPLIERS: dict[str, SequencedApplier] = {
    HandoffRequested.TYPE: requested,
    HandoffClaimed.TYPE: claimed,
    HandoffReleased.TYPE: released,
    HandoffExpired.TYPE: expired,
    UserOptedOut.TYPE: opted_out,
    UserOptedIn.TYPE: opted_in,
}
