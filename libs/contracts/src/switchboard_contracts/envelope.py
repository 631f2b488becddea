"""The one envelope every event travels in, and the base class of typed payloads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class EventData(BaseModel):
    """Base of every typed payload.

    Subclasses set ``TYPE`` (the name on the wire) and ``VERSION`` ("major.minor"). A minor bump
    adds optional fields only; anything else is a new major, which old consumers dead-letter.
    Unknown fields are ignored so producers can add fields before consumers know them.
    A docstring under a field is its description in the schema and the event catalogue.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, use_attribute_docstrings=True)

    TYPE: ClassVar[str]
    VERSION: ClassVar[str] = "1.0"

    @classmethod
    def major(cls) -> int:
        return major_of(cls.VERSION)


def major_of(version: str) -> int:
    head = version.split(".", 1)[0]
    if not head.isdigit():
        raise ValueError(f"malformed version {version!r}")
    return int(head)


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Wire form of an event. ``data`` stays a plain dict here; the registry types it."""

    model_config = ConfigDict(extra="ignore", frozen=True, use_attribute_docstrings=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    """Identifies this event; the ``Nats-Msg-Id`` of every event after the gateway."""
    type: str
    """The payload's name, e.g. ``InboundMessageReceived``."""
    version: str
    """``major.minor``: a minor adds optional fields; an unknown major is dead-lettered."""
    occurred_at: datetime = Field(default_factory=_now)
    """When it happened (UTC)."""
    correlation_id: str
    """Born at the gateway from the Twilio MessageSid; the same on every event of the turn."""
    causation_id: uuid.UUID | None = None
    """The ``event_id`` of the event that caused this one."""
    tenant_id: str | None = None
    """The tenant; empty only for orphaned messages."""
    conversation_id: str | None = None
    """Where it applies: ``cv`` + sha256(tenant_id | user address)[:32], no phone number."""
    data: dict[str, Any]
    """The typed payload, described per event type."""

    @classmethod
    def wrap(
        cls,
        data: EventData,
        *,
        correlation_id: str,
        causation_id: uuid.UUID | None = None,
        tenant_id: str | None = None,
        conversation_id: str | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Envelope:
        """A new envelope around ``data``."""
        return cls(
            event_id=event_id or uuid.uuid4(),
            type=data.TYPE,
            version=data.VERSION,
            correlation_id=correlation_id,
            causation_id=causation_id,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            data=data.model_dump(mode="json"),
        )

    def caused(self, data: EventData, **overrides: Any) -> Envelope:
        """A follow-up event: same correlation, tenant and conversation; caused by this one."""
        fields: dict[str, Any] = {
            "correlation_id": self.correlation_id,
            "causation_id": self.event_id,
            "tenant_id": self.tenant_id,
            "conversation_id": self.conversation_id,
        }
        fields.update(overrides)
        return Envelope.wrap(data, **fields)

    def to_bytes(self) -> bytes:
        # model_dump_json().encode() without the str in between.
        return self.__pydantic_serializer__.to_json(self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)
