"""The read models: one module per table family, each a ``Table`` and its appliers.

``project`` routes a fact to every applier that knows its event type; every event also goes
to the timeline. An applier only adds rows to the batch's ``Writes``: nothing here talks to
the database, so the rules are plain functions.
"""

from __future__ import annotations

from ..decoding import DeadLetterFact, EventFact, Fact
from ..writes import Writes
from . import (
    conversations,
    deadletters,
    handoffs,
    messages,
    modes,
    orphans,
    outbound,
    parts,
    timeline,
)
from .base import Applier, SequencedApplier
from .timeline import TIMELINE

# The read models a rebuild empties (``handoffs.HANDOFF_STEPS`` is kept: the memory of the
# handoff wait histogram, so a replay observes no wait twice).
TABLES = (
    conversations.CONVERSATIONS, messages.MESSAGES, parts.PARTS, parts.STATUSES,
    orphans.ORPHANS, deadletters.DEAD_LETTERS, TIMELINE,
)

APPLIERS: dict[str, list[Applier]] = {}
for module in (conversations, messages, outbound, parts, orphans):
    for event_type, applier in module.APPLIERS.items():
        APPLIERS.setdefault(event_type, []).append(applier)
# Appliers that need the event's stream sequence (state ordered by the aggregate).
SEQUENCED: dict[str, list[SequencedApplier]] = {}
for sequenced_module in (modes, handoffs):
    for event_type, sequenced_applier in sequenced_module.APPLIERS.items():
        SEQUENCED.setdefault(event_type, []).append(sequenced_applier)
# The event types whose payload a read model reads: only those are typed and validated.
READ_TYPES = frozenset(APPLIERS) | frozenset(SEQUENCED)


def project(fact: Fact, writes: Writes) -> None:
    """Add what ``fact`` means to ``writes`` (timers and poison mean nothing here)."""
    if isinstance(fact, EventFact):
        envelope, subject = fact.envelope, fact.raw.subject
        timeline.record_event(fact.raw, writes)
        if envelope.type in conversations.ACTIVITY:
            conversations.activity(envelope, writes)
        if fact.data is not None:
            for applier in APPLIERS.get(envelope.type, ()):
                applier(envelope, fact.data, subject, writes)
            for sequenced in SEQUENCED.get(envelope.type, ()):
                sequenced(envelope, fact.data, fact.raw.seq, writes)
    elif isinstance(fact, DeadLetterFact):
        deadletters.record(fact.record, writes)
        timeline.record_dead_letter(fact.record, writes)


__all__ = ["APPLIERS", "READ_TYPES", "TABLES", "project"]
