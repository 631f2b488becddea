"""A reply's parts (the sender's record: accepted, attempts, Twilio sid, failure) and the
delivery statuses Twilio reported for each MessageSid.

The sender's events live on ``sender.<reply id>.<Type>``: the subject says which reply. A
status callback knows only the MessageSid; it is kept by tenant and sid and joined to its part
when read, since it may be projected before the part's ``OutboundMessageSent`` (another stream).
Its tenant is part of its key and of the join: a callback of one tenant naming another
tenant's sid is kept apart and never shown as the other's status (invariant 10).
"""

from __future__ import annotations

from typing import Any

from switchboard_contracts import Envelope
from switchboard_contracts.events.gateway import DeliveryStatusReported
from switchboard_contracts.events.sender import (
    DeliveryStatusApplied,
    OutboundMessageFailed,
    OutboundMessageSent,
    OutboundPartAttempted,
    OutboundReplyAccepted,
)
from switchboard_runtime.telemetry import get_logger

from .. import metrics
from ..delivery import SEND_RANK
from ..tables import Table, first, greatest, latest_by, least
from ..writes import Writes
from .base import Applier, subject_key
from .messages import OUTBOUND, upsert_message

log = get_logger(__name__)

PARTS = Table("message_parts", ("message_id", "part"), {
    "tenant_id": first, "conversation_id": first, "correlation_id": first, "text": first,
    "twilio_sid": first, "send_status": latest_by("send_rank"), "send_rank": greatest,
    "attempts": greatest, "failure_reason": first, "error_code": first, "retryable": first,
    "accepted_at": least, "first_attempt_at": least, "last_attempt_at": greatest,
    "sent_at": least, "failed_at": least, "created_at": least, "updated_at": greatest,
})

STATUSES = Table("delivery_statuses", ("tenant_id", "message_sid", "status"), {
    "error_code": first, "error_message": first, "reported_at": least,
})


def _part(envelope: Envelope, subject: str, part: int, status: str, writes: Writes,
          **values: Any) -> None:
    writes.upsert(PARTS, message_id=subject_key(subject), part=part,
                  tenant_id=envelope.tenant_id or None, conversation_id=envelope.conversation_id,
                  correlation_id=envelope.correlation_id, send_status=status,
                  send_rank=SEND_RANK[status], created_at=envelope.occurred_at,
                  updated_at=envelope.occurred_at, **values)


def accepted(envelope: Envelope, data: OutboundReplyAccepted, subject: str, writes: Writes
             ) -> None:
    upsert_message(envelope, writes, subject_key(subject), OUTBOUND, turn=data.turn,
                   parts=len(data.texts))
    for number, text in enumerate(data.texts, start=1):
        _part(envelope, subject, number, "accepted", writes, text=text,
              accepted_at=envelope.occurred_at)


def attempted(envelope: Envelope, data: OutboundPartAttempted, subject: str, writes: Writes
              ) -> None:
    at = data.attempted_at or envelope.occurred_at
    _part(envelope, subject, data.part, "attempted", writes, attempts=data.attempt,
          first_attempt_at=at, last_attempt_at=at)


def sent(envelope: Envelope, data: OutboundMessageSent, subject: str, writes: Writes) -> None:
    _part(envelope, subject, data.part, "sent", writes, twilio_sid=data.message_sid,
          text=data.text, sent_at=envelope.occurred_at)


def failed(envelope: Envelope, data: OutboundMessageFailed, subject: str, writes: Writes
           ) -> None:
    _part(envelope, subject, data.part, "failed", writes, failure_reason=data.reason,
          error_code=data.error_code, retryable=data.retryable, failed_at=envelope.occurred_at)


def status(envelope: Envelope, data: DeliveryStatusReported | DeliveryStatusApplied,
           _subject: str, writes: Writes) -> None:
    """The gateway's callback and the sender's application of it: the same fact, merged."""
    if not envelope.tenant_id:
        # No tenant to scope it by: it could only ever be shown as someone else's.
        log.warning("status without a tenant ignored", event_id=str(envelope.event_id))
        metrics.STATUSES_IGNORED.inc()
        return
    writes.upsert(STATUSES, tenant_id=envelope.tenant_id, message_sid=data.message_sid,
                  status=data.status, error_code=data.error_code,
                  error_message=data.error_message
                  if isinstance(data, DeliveryStatusReported) else None,
                  reported_at=envelope.occurred_at)


APPLIERS: dict[str, Applier] = {
    OutboundReplyAccepted.TYPE: accepted,
    OutboundPartAttempted.TYPE: attempted,
    OutboundMessageSent.TYPE: sent,
    OutboundMessageFailed.TYPE: failed,
    DeliveryStatusReported.TYPE: status,
    DeliveryStatusApplied.TYPE: status,
}
