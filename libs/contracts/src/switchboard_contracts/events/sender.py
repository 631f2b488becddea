"""Events of the sender (stream SENDER, ``sender.<reply event id>.<Type>``).

The subject tree ``sender.<reply event id>.>`` is the durable state of one reply: its parts,
every attempt, what Twilio answered and the delivery statuses applied. Its part timeouts are
JetStream scheduled messages held on ``sender.timers.<reply event id>.<part>``, which publish a
``PartTimeoutDue`` into the tree when due.
"""

from __future__ import annotations

from datetime import datetime

from ..envelope import EventData
from ..registry import registry


@registry.register
class OutboundReplyAccepted(EventData):
    """First event of a reply's tree: what is to be sent, already split into parts."""

    TYPE = "OutboundReplyAccepted"
    VERSION = "1.1"
    turn: int
    texts: list[str]
    """The parts, in order (each at most 1600 characters)."""
    to_address: str
    from_address: str
    account_sid: str
    fallback: bool = False
    turn_started_at: datetime | None = None
    """1.1: the ReplyGenerated's ``turn_started_at`` (kept for the SLO histogram when part 1
    goes out later, after a wait)."""


@registry.register
class OutboundPartAttempted(EventData):
    """Recorded before a Messages API call, so a crash after it can be recognised."""

    TYPE = "OutboundPartAttempted"
    VERSION = "1.1"
    turn: int
    part: int
    parts: int
    attempt: int
    attempted_at: datetime | None = None
    """1.1: when the call was about to be made."""


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
    reason: str
    """E.g. ``outside_24h_window``, ``stale``, ``twilio_21211``."""
    error_code: str | None = None
    retryable: bool = False


@registry.register
class DeliveryStatusApplied(EventData):
    """A status callback applied to a part, by rank (never backwards)."""

    TYPE = "DeliveryStatusApplied"
    VERSION = "1.1"
    message_sid: str
    status: str
    error_code: str | None = None
    part: int | None = None
    """Added in 1.1."""
    previous_status: str | None = None
    """1.1: only when the rank rises."""


@registry.register
class PartTimeoutDue(EventData):
    """A durable timer (a JetStream scheduled message): part ``part`` of the reply was sent
    at least the part timeout ago, so the next part may go without its ``sent`` callback."""

    TYPE = "PartTimeoutDue"
    reply_id: str
    part: int
    due_at: datetime
