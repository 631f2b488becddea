"""Events the gateway produces (stream GATEWAY, subjects ``gateway.<Type>``).

Their ``Nats-Msg-Id`` is the Twilio MessageSid (MessageSid and status for a delivery status),
so a webhook Twilio retries is stored once.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..envelope import EventData
from ..registry import registry


class Media(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str
    content_type: str


@registry.register
class InboundMessageReceived(EventData):
    """A WhatsApp message Twilio delivered to a tenant's number, signature checked."""

    TYPE = "InboundMessageReceived"
    VERSION = "1.0"

    message_sid: str
    account_sid: str
    messaging_service_sid: str | None = None
    from_address: str
    to_address: str
    """The tenant's WhatsApp number the user wrote to (``whatsapp:+...``)."""
    body: str = ""
    message_type: str | None = None
    """Twilio's MessageType: ``text``, ``audio``, ``image``..."""
    profile_name: str | None = None
    wa_id: str | None = None
    media: list[Media] = Field(default_factory=list)
    """Media URLs on Twilio (a voice note is one ``audio/ogg`` item), fetched with basic auth."""
    idempotency_token: str | None = None
    """Twilio's ``I-Twilio-Idempotency-Token`` header, when it sent one."""


@registry.register
class DeliveryStatusReported(EventData):
    """A Twilio status callback for a message we sent."""

    TYPE = "DeliveryStatusReported"
    VERSION = "1.0"

    message_sid: str
    account_sid: str
    status: str
    """Twilio's MessageStatus: ``queued``, ``sent``, ``delivered``, ``read``, ``failed``..."""
    error_code: str | None = None
    error_message: str | None = None
    idempotency_token: str | None = None


@registry.register
class OrphanedMessageReceived(EventData):
    """A signed-looking request for a number that no tenant owns; recorded, never processed."""

    TYPE = "OrphanedMessageReceived"
    VERSION = "1.0"

    message_sid: str
    account_sid: str
    messaging_service_sid: str | None = None
    to_address: str
    reason: str
    """Why no tenant took it, e.g. no tenant owns the number."""
