"""Every event of a correlation_id, which service produced it and when (the hops' latencies
are computed when read, from the order of ``occurred_at``, so arrival order is irrelevant)."""

from __future__ import annotations

from switchboard_contracts import Envelope
from switchboard_contracts.deadletter import DeadLetter

from ..tables import Table, first, least
from ..writes import Writes

TIMELINE = Table("timeline_events", ("event_id",), {
    "correlation_id": first, "tenant_id": first, "conversation_id": first, "type": first,
    "version": first, "service": first, "subject": first, "causation_id": first,
    "occurred_at": least,
})

DEAD_LETTERED = "DeadLettered"


def service_of(subject: str) -> str:
    """Each service publishes only under its own name (``gateway.>``, ``agent.>`` ...)."""
    return subject.partition(".")[0]


def record_event(envelope: Envelope, subject: str, writes: Writes) -> None:
    writes.upsert(
        TIMELINE, event_id=str(envelope.event_id), correlation_id=envelope.correlation_id,
        tenant_id=envelope.tenant_id or None, conversation_id=envelope.conversation_id,
        type=envelope.type, version=envelope.version, service=service_of(subject),
        subject=subject,
        causation_id=str(envelope.causation_id) if envelope.causation_id else None,
        occurred_at=envelope.occurred_at,
    )


def record_dead_letter(record: DeadLetter, writes: Writes) -> None:
    """A consumer gave up on an event of this correlation: a hop of its own, by the consumer."""
    if not record.correlation_id:
        return
    writes.upsert(
        TIMELINE, event_id=f"dl:{record.stream}:{record.consumer}:{record.stream_seq}",
        correlation_id=record.correlation_id, tenant_id=record.tenant_id or None,
        type=DEAD_LETTERED, service=record.consumer, subject=record.subject,
        causation_id=record.event_id, occurred_at=record.dead_lettered_at,
    )
