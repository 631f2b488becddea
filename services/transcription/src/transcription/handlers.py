"""The handler of ``TranscriptionRequested``: download, transcribe, publish the outcome.

For each request:

1. Check what can be checked without a request: a voice-note content type, the tenant's
   Twilio credentials, and the media URL (``media_url.check_media_url``: allowed host,
   Twilio's media path, the tenant's own account and this message).
2. Download it with the tenant's credentials (``download.MediaClient``), retrying transient
   failures within the delivery.
3. Decode and transcribe on a worker thread (``engine.WhisperEngine``), so the event loop
   keeps sending the consumer's progress acks and serving other requests.
4. Publish ``TranscriptionCompleted``, or ``TranscriptionFailed`` with a reason code
   (``failures.py``) when the failure is permanent, or when it is transient and this is the
   event's last delivery, so the user always gets an answer (the fallback text). A transient
   failure on an earlier delivery is raised: JetStream redelivers the request later.

One outcome per voice note: both events share the ``Nats-Msg-Id`` ``transcription:<MessageSid>``
(the first one stored wins within the duplicate window) and their event ids derive from it, so
a redelivered request does not add a second transcript. A request for a voice note this
process has already answered is skipped without downloading or transcribing it again.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from switchboard_contracts import Envelope, Event, EventData
from switchboard_contracts.events.conversation import TranscriptionRequested
from switchboard_contracts.events.transcription import TranscriptionCompleted, TranscriptionFailed
from switchboard_contracts.topology import event_subject
from switchboard_runtime.bus import Publisher, current_delivery
from switchboard_runtime.eventsourcing import event_id_for
from switchboard_runtime.ports import NeedsPorts
from switchboard_runtime.recent import RecentKeys
from switchboard_runtime.telemetry import get_logger
from switchboard_tenants import TenantRoute

from .audio import audio_type_allowed
from .download import MediaClient
from .engine import Transcript, WhisperEngine
from .failures import (
    ERROR,
    TENANT_UNKNOWN,
    TYPE_UNSUPPORTED,
    UNAUTHORIZED,
    URL_NOT_ALLOWED,
    NotFoundYet,
    TranscriptionFailure,
    TransientFailure,
)
from .media_url import UrlNotAllowed, check_media_url
from .metrics import (
    AUDIO_SECONDS,
    COMPLETED,
    DUPLICATES,
    FAILURES,
    IN_PROGRESS,
    PROCESSING_SECONDS,
    QUEUE_SECONDS,
    REAL_TIME_FACTOR,
)

log = get_logger(__name__)

# Event ids of the transcription's events are UUIDv5 of this namespace and "<msg id>:<type>".
EVENT_ID_NAMESPACE = uuid.UUID("0f6a4f2e-8c1d-4b7a-9d3e-5a2c7b1e9f40")


def msg_id(message_sid: str) -> str:
    return f"transcription:{message_sid}"


@dataclass(frozen=True, slots=True)
class Ports:
    """What the handler reaches outside itself, connected at start-up."""

    credentials: Callable[[str], TenantRoute | None]
    publisher: Publisher
    engine: WhisperEngine


class TranscriptionHandler(NeedsPorts[Ports]):
    def __init__(self, media: MediaClient, workers: int) -> None:
        self._media = media
        # The only threads that run Whisper: at most `workers` transcriptions at a time.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="whisper")
        self._answered: RecentKeys[str] = RecentKeys()  # voice notes answered here

    async def aclose(self) -> None:
        await self._media.aclose()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def handle(self, event: Event[TranscriptionRequested]) -> None:
        env, request = event.envelope, event.data
        if request.message_sid in self._answered:
            DUPLICATES.inc()
            log.info("voice note already answered; duplicate request skipped")
            return
        try:
            transcript = await self._transcribe(env, request)
        except TranscriptionFailure as failure:
            await self._failed(env, request, failure.reason, failure.detail)
            return
        except TransientFailure as exc:
            delivery = current_delivery()
            last = delivery is None or delivery.last
            if not last and not isinstance(exc, NotFoundYet):
                log.warning("media unavailable; the request will be redelivered",
                            kind=exc.kind, delivery=delivery.number if delivery else None)
                raise
            await self._failed(env, request, exc.final_reason, exc.kind)
            return
        except Exception:
            delivery = current_delivery()
            if delivery is None or delivery.last:
                # The user still gets the fallback; the dead letter keeps the error for us.
                await self._failed(env, request, ERROR, "unexpected error")
            raise
        await self._completed(env, request, transcript)

    async def _transcribe(self, env: Envelope, request: TranscriptionRequested) -> Transcript:
        if not audio_type_allowed(request.content_type):
            raise TranscriptionFailure(TYPE_UNSUPPORTED, f"declared as {request.content_type}")
        route = self.ports.credentials(env.tenant_id) if env.tenant_id else None
        if route is None:
            raise TranscriptionFailure(TENANT_UNKNOWN, "no credentials for the tenant")
        if request.account_sid != route.account_sid:
            raise UrlNotAllowed("the request's account is not the tenant's")
        url = check_media_url(request.media_url, account_sid=route.account_sid,
                              message_sid=request.message_sid, allowed=self._media.policy.allowed)
        media = await self._media.download(url, (route.account_sid, route.auth_token))
        hint = request.language_hint or route.tenant.language
        return await self._on_worker(media.data, hint)

    async def _on_worker(self, data: bytes, hint: str | None) -> Transcript:
        engine = self.ports.engine
        queued = time.perf_counter()

        def work() -> Transcript:
            QUEUE_SECONDS.observe(time.perf_counter() - queued)
            IN_PROGRESS.inc()
            try:
                return engine.transcribe_bytes(data, hint)
            finally:
                IN_PROGRESS.dec()

        # In the request's context, so faster-whisper's own log lines (and any span) carry
        # its correlation_id and trace.
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._pool, context.run, work)

    async def _completed(self, env: Envelope, request: TranscriptionRequested,
                         transcript: Transcript) -> None:
        rtf = transcript.processing_s / max(transcript.audio_duration_s, 1e-3)
        REAL_TIME_FACTOR.observe(rtf)
        AUDIO_SECONDS.observe(transcript.audio_duration_s)
        PROCESSING_SECONDS.observe(transcript.processing_s)
        COMPLETED.labels(transcript.language).inc()
        # No transcript text in logs (invariant 8): sizes, language and timings only.
        log.info("voice note transcribed", language=transcript.language,
                 detected_language=transcript.detected_language,
                 detected_probability=round(transcript.detected_probability, 2),
                 audio_s=round(transcript.audio_duration_s, 2),
                 speech_s=round(transcript.speech_duration_s, 2),
                 processing_s=round(transcript.processing_s, 3), rtf=round(rtf, 3),
                 characters=len(transcript.text))
        await self._publish(env, request, TranscriptionCompleted(
            message_sid=request.message_sid, text=transcript.text, language=transcript.language,
            audio_duration_s=round(transcript.audio_duration_s, 3),
            processing_s=round(transcript.processing_s, 3), model=self.ports.engine.name,
        ))

    async def _failed(self, env: Envelope, request: TranscriptionRequested, reason: str,
                      detail: str) -> None:
        FAILURES.labels(reason).inc()
        alarming = reason in (UNAUTHORIZED, URL_NOT_ALLOWED, ERROR)
        (log.error if alarming else log.warning)(
            "voice note not transcribed; the user gets the fallback text",
            reason=reason, detail=detail)
        await self._publish(env, request,
                            TranscriptionFailed(message_sid=request.message_sid, reason=reason))

    async def _publish(self, cause: Envelope, request: TranscriptionRequested,
                       data: EventData) -> None:
        identity = msg_id(request.message_sid)
        envelope = cause.caused(
            data, event_id=event_id_for(EVENT_ID_NAMESPACE, identity, data.TYPE))
        ack = await self.ports.publisher.publish(
            event_subject("transcription", data.TYPE), envelope, msg_id=identity)
        if ack.duplicate:
            log.info("outcome already stored (duplicate)", event_type=data.TYPE)
        self._answered.add(request.message_sid)
