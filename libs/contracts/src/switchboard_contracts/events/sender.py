"""Events of the sender (stream SENDER, ``sender.<reply event id>.<Type>``).

The subject tree ``sender.<reply event id>.>`` is the durable state of one reply: its parts,
every attempt, what Twilio answered and the delivery statuses applied. Its part timeouts are
JetStream scheduled messages held on ``sender.timers.<reply event id>.<part>``, which publish a
``PartTimeoutDue`` into the tree when due.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from ..envelope import EventData
from ..registry import registry


@registry.register
class OutboundReplyAccepted(EventData):
    """First event of an outbound message's tree: what is to be sent, already split into parts.

    The tree is the agent's reply (``sender.<ReplyGenerated event id>.>``, ``kind`` None) or,
    since 1.2, something the conversation asked for (``sender.<OutboundMessageRequested event
    id>.>``, ``kind`` notice, operator or template), sent with the same guarantees."""

    TYPE = "OutboundReplyAccepted"
    VERSION = "1.3"
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
    kind: str | None = None
    """1.2: None for the agent's reply; else the OutboundMessageRequested's kind (``notice``,
    ``operator``, ``template``), which decides the checks before each part."""
    purpose: str | None = None
    """1.2: the request's purpose (``handoff_requested``, ``opted_out``, ``operator_reply``,
    ``template``, ...)."""
    after: str | None = None
    """1.2: the outbound message (reply or request event id) that must have gone out or
    failed before this one's first part."""
    media_url: str | None = None
    """1.2: sent with part 1."""
    content_sid: str | None = None
    """1.2: a template (``HX...``): sent as ``ContentSid`` with ``content_variables`` instead
    of a body (``texts`` then holds one part, the text the request gave, possibly empty)."""
    content_variables: dict[str, str] = Field(default_factory=dict)
    template_name: str | None = None
    """1.2: the tenant's name for ``content_sid``."""
    operator_id: str | None = None
    """1.2: the operator who wrote it (kind ``operator``)."""
    request_seq: int | None = None
    """1.3: the OutboundMessageRequested's sequence in the CONVERSATION stream: its parts are
    checked against a view at least that new (``version``), not one from before the request."""


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
