"""Events of the sender (stream SENDER, ``sender.<reply event id>.<Type>``)."""

from __future__ import annotations

from ..envelope import EventData
from ..registry import registry


@registry.register
class OutboundPartAttempted(EventData):
    """Recorded before a Messages API call, so a crash after it can be recognised."""

    TYPE = "OutboundPartAttempted"
    turn: int
    part: int
    parts: int
    attempt: int


@registry.register
class OutboundMessageSent(EventData):
    TYPE = "OutboundMessageSent"
    turn: int
    part: int
    parts: int
    message_sid: str
    text: str
    to_address: str
    from_address: str


@registry.register
class OutboundMessageFailed(EventData):
    TYPE = "OutboundMessageFailed"
    turn: int
    part: int
    parts: int
    reason: str  # e.g. "outside_24h_window", "stale", "twilio_21211"
    error_code: str | None = None
    retryable: bool = False


@registry.register
class DeliveryStatusApplied(EventData):
    """A status callback applied to a part, by rank (never backwards)."""

    TYPE = "DeliveryStatusApplied"
    message_sid: str
    status: str
    error_code: str | None = None
