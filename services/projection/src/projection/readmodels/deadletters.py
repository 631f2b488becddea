"""Dead letters (from the DEADLETTER stream): which consumer gave up on which event, and why.

The original payload stays in the stream (``switchboard-deadletters`` replays it); the read
model keeps what an operator searches by, never the message text.
"""

from __future__ import annotations

from switchboard_contracts.deadletter import DeadLetter

from ..tables import Table, earliest_by, first, greatest, least
from ..writes import Writes

DEAD_LETTERS = Table("dead_letters", ("stream", "consumer", "stream_seq"), {
    "subject": first, "deliveries": greatest,
    # The same event filed twice (a rebuild re-files a poison event after the duplicate
    # window): the first filing's reason and time stay.
    "reason": earliest_by("dead_lettered_at"), "error": earliest_by("dead_lettered_at"),
    "event_type": first, "event_id": first, "correlation_id": first, "tenant_id": first,
    "dead_lettered_at": least,
})


def record(letter: DeadLetter, writes: Writes) -> None:
    writes.upsert(DEAD_LETTERS, stream=letter.stream, consumer=letter.consumer,
                  stream_seq=letter.stream_seq, subject=letter.subject,
                  deliveries=letter.deliveries, reason=letter.reason, error=letter.error,
                  event_type=letter.event_type, event_id=letter.event_id,
                  correlation_id=letter.correlation_id, tenant_id=letter.tenant_id or None,
                  dead_lettered_at=letter.dead_lettered_at)
