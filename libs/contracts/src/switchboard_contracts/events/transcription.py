"""Events of the transcription service (stream TRANSCRIPTION, ``transcription.<Type>``)."""

from __future__ import annotations

from ..envelope import EventData
from ..registry import registry


@registry.register
class TranscriptionCompleted(EventData):
    TYPE = "TranscriptionCompleted"
    message_sid: str
    text: str
    language: str | None = None
    audio_duration_s: float
    processing_s: float
    model: str


@registry.register
class TranscriptionFailed(EventData):
    TYPE = "TranscriptionFailed"
    message_sid: str
    reason: str
