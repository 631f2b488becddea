"""The record kept in the DEADLETTER stream for an event a consumer gave up on."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    stream: str
    consumer: str
    subject: str
    stream_seq: int
    deliveries: int
    reason: str
    error: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    correlation_id: str | None = None
    tenant_id: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    payload_b64: str
    dead_lettered_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def payload(self) -> bytes:
        return base64.b64decode(self.payload_b64)

    @staticmethod
    def encode_payload(raw: bytes) -> str:
        return base64.b64encode(raw).decode()
