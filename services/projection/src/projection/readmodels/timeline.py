"""Every event of a correlation_id, which service produced it and when (the hops' latencies
are computed when read, from the order of ``occurred_at``, so arrival order is irrelevant)."""

from __future__ import annotations

from switchboard_contracts.deadletter import DeadLetter

from ..decoding import Raw
from ..tables import Table, first, least
from ..writes import Writes

TIMELINE = Table("timeline_events", ("event_id",), {
    "correlation_id": first, "tenant_id": first, "conversation_id": first, "type": first,
    "version": first, "service": first, "subject": first, "causation_id": first,
    "occurred_at": least,
})

DEAD_LETTERED = "DeadLettered"


# An event's row is built by Postgres from the envelope as stored (the biggest table: no
# Python row or JSON encoding per event). Typed as ``Envelope`` types them (uuid,
# timestamptz; an empty tenant is none); one row per event_id (a statement cannot update a
# row twice); the service is the subject's first token (each service publishes only under its
# own name: ``gateway.>``, ``agent.>`` ...).
FROM_ENVELOPES = TIMELINE.upsert_from("""
SELECT DISTINCT ON (e.event_id)
    e.event_id::text, e.correlation_id, NULLIF(e.tenant_id, ''), e.conversation_id, e.type,
    e.version, split_part(e.subject, '.', 1), e.subject, e.causation_id::text, e.occurred_at
FROM ROWS FROM (
    json_to_recordset($1::json) AS (
        event_id uuid, type text, version text, occurred_at timestamptz, correlation_id text,
        causation_id uuid, tenant_id text, conversation_id text),
    unnest($2::text[])
) AS e(event_id, type, version, occurred_at, correlation_id, causation_id, tenant_id,
       conversation_id, subject)
ORDER BY e.event_id, e.occurred_at""")


def record_event(raw: Raw, writes: Writes) -> None:
    """``raw``: an event that decoded (so valid JSON, and a valid envelope)."""
    writes.from_event(FROM_ENVELOPES, raw.data, raw.subject)


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
