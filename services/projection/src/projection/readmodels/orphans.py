"""Messages for numbers no tenant owns (recorded by the gateway, never processed)."""

from __future__ import annotations

from switchboard_contracts import Envelope
from switchboard_contracts.events.gateway import OrphanedMessageReceived

from ..tables import Table, first, least
from ..writes import Writes
from .base import Applier

ORPHANS = Table("orphaned_messages", ("message_sid",), {
    "account_sid": first, "messaging_service_sid": first, "to_address": first, "reason": first,
    "correlation_id": first, "received_at": least,
})


def orphaned(envelope: Envelope, data: OrphanedMessageReceived, _subject: str, writes: Writes
             ) -> None:
    writes.upsert(ORPHANS, message_sid=data.message_sid, account_sid=data.account_sid,
                  messaging_service_sid=data.messaging_service_sid, to_address=data.to_address,
                  reason=data.reason, correlation_id=envelope.correlation_id,
                  received_at=envelope.occurred_at)


APPLIERS: dict[str, Applier] = {OrphanedMessageReceived.TYPE: orphaned}
