"""Each handoff's wait for a person, step by step (ADR 0022): the request and what ended it.

One row per HandoffRequested, HandoffClaimed and HandoffReleased, keyed by the event's id (a
duplicate under another stream sequence is the same row) and ordered by its CONVERSATION stream
sequence, the aggregate's own order. A request's wait ends at the step that follows it:
``claimed`` (a person took it), ``expired`` (nobody did by the tenant's deadline and the tenant
chose the bot: HandoffReleased ``unclaimed``) or ``released`` (an operator's release or a close,
unclaimed). A HandoffExpired with outcome ``wait`` ends nothing: the user keeps waiting.

The table is the memory of the wait histogram (``handoff_waits.py``), not a read model the
API serves, and a rebuild does not empty it (see the migration).
"""

from __future__ import annotations

from typing import Any

from switchboard_contracts import Envelope
from switchboard_contracts.events.conversation import (
    HandoffClaimed,
    HandoffReleased,
    HandoffRequested,
)

from ..tables import Table, first, least
from ..writes import Writes
from .base import SequencedApplier

HANDOFF_STEPS = Table("handoff_steps", ("event_id",), {
    "conversation_id": first, "tenant_id": first, "seq": least, "step": first,
    "source": first, "at": first,
})


def _step(envelope: Envelope, seq: int, writes: Writes, step: str, **values: Any) -> None:
    if envelope.conversation_id:
        writes.upsert(HANDOFF_STEPS, event_id=str(envelope.event_id),
                      conversation_id=envelope.conversation_id,
                      tenant_id=envelope.tenant_id or None, seq=seq, step=step,
                      at=envelope.occurred_at, **values)


def requested(envelope: Envelope, data: HandoffRequested, seq: int, writes: Writes) -> None:
    _step(envelope, seq, writes, "requested", source=data.source)


def claimed(envelope: Envelope, _data: HandoffClaimed, seq: int, writes: Writes) -> None:
    _step(envelope, seq, writes, "claimed")


def released(envelope: Envelope, data: HandoffReleased, seq: int, writes: Writes) -> None:
    _step(envelope, seq, writes, "expired" if data.reason == "unclaimed" else "released")


APPLIERS: dict[str, SequencedApplier] = {
    HandoffRequested.TYPE: requested,
    HandoffClaimed.TYPE: claimed,
    HandoffReleased.TYPE: released,
}
