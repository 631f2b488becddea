"""Messages: each inbound WhatsApp message (with its voice note's transcript) and each reply.

An inbound message is keyed by its MessageSid and is told about by the gateway, the
conversation and the transcription service; a reply is keyed by its ReplyGenerated event id
(the id the sender's subjects and AssistantMessageAppended use too). Its parts are in
``parts.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from switchboard_contracts import Envelope
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import (
    TranscriptAppended,
    TranscriptionRequested,
    UserMessageAppended,
)
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.events.transcription import TranscriptionCompleted, TranscriptionFailed

from ..delivery import TRANSCRIPTION_RANK
from ..tables import Table, first, greatest, latest_by, least
from ..writes import Writes
from .base import Applier

MESSAGES = Table("messages", ("message_id",), {
    "tenant_id": first, "conversation_id": first, "correlation_id": first, "direction": first,
    "turn": first, "text": first, "media": first, "message_type": first, "profile_name": first,
    "from_address": first, "to_address": first, "account_sid": first, "received_at": least,
    "transcription_status": latest_by("transcription_rank"), "transcription_rank": greatest,
    "transcript": first, "transcript_language": first, "transcription_error": first,
    "audio_duration_s": first, "transcription_model": first,
    "generated_at": least, "model": first, "fallback": first, "fallback_reason": first,
    "prompt_tokens": first, "completion_tokens": first, "llm_latency_ms": first,
    "parts": first, "created_at": least, "updated_at": greatest,
    # What the conversation asked the sender for (``outbound.py``), and a withheld reply.
    "kind": first, "purpose": first, "operator_id": first, "template_name": first,
    "content_sid": first, "content_variables": first, "handoff_reason": first,
})

INBOUND, OUTBOUND = "inbound", "outbound"


def upsert_message(envelope: Envelope, writes: Writes, message_id: str, direction: str,
                   **values: Any) -> None:
    """A fact about one message; shared with ``parts.py`` (a reply's part count)."""
    writes.upsert(MESSAGES, message_id=message_id, direction=direction,
                  tenant_id=envelope.tenant_id or None, correlation_id=envelope.correlation_id,
                  conversation_id=envelope.conversation_id, created_at=envelope.occurred_at,
                  updated_at=envelope.occurred_at, **values)
    writes.touch(envelope.conversation_id)


def _media(media: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in media]


def _transcription(status: str) -> dict[str, Any]:
    return {"transcription_status": status, "transcription_rank": TRANSCRIPTION_RANK[status]}


def inbound(envelope: Envelope, data: InboundMessageReceived, _subject: str, writes: Writes
            ) -> None:
    upsert_message(envelope, writes, data.message_sid, INBOUND, text=data.body,
                   media=_media(data.media), message_type=data.message_type,
                   profile_name=data.profile_name, from_address=data.from_address,
                   to_address=data.to_address, account_sid=data.account_sid,
                   received_at=envelope.occurred_at)


def appended(envelope: Envelope, data: UserMessageAppended, _subject: str, writes: Writes
             ) -> None:
    upsert_message(envelope, writes, data.message_sid, INBOUND, turn=data.turn, text=data.text,
                   media=_media(data.media), message_type=data.message_type,
                   received_at=data.received_at)


def transcription_requested(envelope: Envelope, data: TranscriptionRequested, _subject: str,
                            writes: Writes) -> None:
    upsert_message(envelope, writes, data.message_sid, INBOUND, **_transcription("requested"))


def transcribed(envelope: Envelope, data: TranscriptionCompleted, _subject: str, writes: Writes
                ) -> None:
    upsert_message(envelope, writes, data.message_sid, INBOUND, **_transcription("completed"),
                   transcript=data.text, transcript_language=data.language,
                   audio_duration_s=data.audio_duration_s, transcription_model=data.model)


def transcription_failed(envelope: Envelope, data: TranscriptionFailed, _subject: str,
                         writes: Writes) -> None:
    upsert_message(envelope, writes, data.message_sid, INBOUND, **_transcription("failed"),
                   transcription_error=data.reason)


def transcript_appended(envelope: Envelope, data: TranscriptAppended, _subject: str,
                        writes: Writes) -> None:
    """The conversation's own record of the outcome (the same facts as the transcription
    service's event, which may have aged out of its stream)."""
    if data.failed:
        upsert_message(envelope, writes, data.message_sid, INBOUND, **_transcription("failed"),
                       transcription_error=data.reason)
    else:
        upsert_message(envelope, writes, data.message_sid, INBOUND,
                       **_transcription("completed"), transcript=data.text,
                       transcript_language=data.language)


def reply(envelope: Envelope, data: ReplyGenerated, _subject: str, writes: Writes) -> None:
    upsert_message(envelope, writes, str(envelope.event_id), OUTBOUND, turn=data.turn,
                   text=data.text, model=data.model, fallback=data.fallback,
                   fallback_reason=data.fallback_reason,
                   prompt_tokens=data.usage.prompt_tokens,
                   completion_tokens=data.usage.completion_tokens,
                   llm_latency_ms=data.latency_ms, generated_at=envelope.occurred_at,
                   handoff_reason=data.handoff_reason,
                   from_address=data.business_address, to_address=data.user_address,
                   account_sid=data.account_sid)


APPLIERS: dict[str, Applier] = {
    InboundMessageReceived.TYPE: inbound,
    UserMessageAppended.TYPE: appended,
    TranscriptionRequested.TYPE: transcription_requested,
    TranscriptionCompleted.TYPE: transcribed,
    TranscriptionFailed.TYPE: transcription_failed,
    TranscriptAppended.TYPE: transcript_appended,
    ReplyGenerated.TYPE: reply,
}
