"""Events of the transcription service (stream TRANSCRIPTION, ``transcription.<Type>``).

Both carry ``Nats-Msg-Id`` ``transcription:<MessageSid>``: one outcome per voice note.
"""

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
    """One of ``media_url_not_allowed``, ``media_type_unsupported``, ``tenant_unknown``,
    ``media_unauthorized``, ``media_not_found``, ``media_too_large``, ``media_rejected``,
    ``media_unavailable``, ``audio_undecodable``, ``audio_too_long``, ``no_speech``,
    ``transcription_error`` (see ``services/transcription/README.md``)."""
