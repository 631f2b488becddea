"""Helpers for the transcription tests: requests, outcomes, a scriptable media host, audio."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
import uuid
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import av
import numpy as np
from nats.js import JetStreamContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from switchboard_contracts import Envelope
from switchboard_contracts.events.conversation import TranscriptionRequested
from switchboard_contracts.topology import CONVERSATION, TRANSCRIPTION
from switchboard_devstack.serving import serve_in_thread
from switchboard_runtime import Service
from switchboard_runtime.aggregate import conversation_subject, replay
from switchboard_tenants import DirectoryPublisher, TenantRecord, TokenCipher
from switchboard_tenants.kv import open_bucket
from transcription.main import build
from transcription.settings import TranscriptionSettings

TENANT = "clinic"
ACCOUNT = "AC" + "e" * 32
TOKEN = "e2e0" * 8
SENTENCE = "Hello, I would like to book an appointment for Friday morning."
KEY_WORDS = ("appointment", "friday")


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def media_path(account_sid: str, message_sid: str, media_sid: str | None = None) -> str:
    return (f"/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}"
            f"/Media/{media_sid or new_sid('ME')}")


def host_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


async def publish_tenant(js: JetStreamContext, cipher: TokenCipher, *, token: str = TOKEN,
                         language: str = "en") -> None:
    now = datetime.now(UTC)
    await DirectoryPublisher(await open_bucket(js)).publish(TenantRecord(
        tenant_id=TENANT, name=TENANT, account_sid=ACCOUNT,
        auth_token_encrypted=cipher.encrypt(token), system_prompt="You answer for a clinic.",
        model="clinic-model", language=language, numbers=("whatsapp:+14155550100",),
        created_at=now, updated_at=now,
    ))


def settings(nats_url: str, media_hosts: list[str], **overrides: Any) -> TranscriptionSettings:
    values: dict[str, Any] = {
        "nats_url": nats_url, "http_port": 0, "media_allowed_hosts": ",".join(media_hosts),
        "media_retry_delays_s": (0.05, 0.1), "media_read_timeout_s": 5.0,
    }
    values.update(overrides)
    return TranscriptionSettings(**values)


@contextlib.asynccontextmanager
async def running_service(config: TranscriptionSettings) -> AsyncIterator[Service]:
    async with build(config).running() as service:
        yield service


async def request_transcription(js: JetStreamContext, media_url: str, message_sid: str, *,
                                content_type: str = "audio/ogg", account_sid: str = ACCOUNT,
                                language_hint: str | None = "en",
                                conversation_id: str | None = None,
                                event_id: uuid.UUID | None = None) -> Envelope:
    """As the conversation service asks for a voice note's transcript."""
    conversation_id = conversation_id or f"cv{uuid.uuid4().hex[:32]}"
    data = TranscriptionRequested(message_sid=message_sid, media_url=media_url,
                                  content_type=content_type, account_sid=account_sid,
                                  language_hint=language_hint)
    envelope = Envelope.wrap(data, correlation_id=message_sid, tenant_id=TENANT,
                             conversation_id=conversation_id,
                             event_id=event_id or uuid.uuid4())
    await js.publish(conversation_subject(conversation_id, data.TYPE), envelope.to_bytes(),
                     stream=CONVERSATION.name, headers={"Nats-Msg-Id": str(envelope.event_id)})
    return envelope


async def outcomes(js: JetStreamContext, message_sid: str | None = None) -> list[Envelope]:
    try:
        stored = await replay(js, TRANSCRIPTION.name, "transcription.>")
    except Exception:  # the stream does not exist yet
        return []
    return [s.envelope for s in stored
            if message_sid is None or s.envelope.data.get("message_sid") == message_sid]


async def outcome(js: JetStreamContext, message_sid: str, timeout_s: float = 60.0) -> Envelope:
    """The first TranscriptionCompleted / TranscriptionFailed for ``message_sid``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await outcomes(js, message_sid)
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no transcription outcome for {message_sid} in {timeout_s}s")


# -- a media host the test scripts -------------------------------------------------------------
@dataclass
class Seen:
    path: str
    authorization: str | None


Answer = Callable[[Request], Response]


@dataclass
class MediaHost:
    """An HTTP server standing in for a media host: records every request it gets and answers
    with the scripted responses in order (the last one repeats)."""

    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    streamed_bytes: int = 0  # bytes a streamed body handed to the server so far

    def answer(self, *answers: Answer) -> None:
        self.answers = list(answers)

    async def _handle(self, request: Request) -> Response:
        self.requests.append(Seen(request.url.path, request.headers.get("authorization")))
        if not self.answers:
            return Response(status_code=404)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        response = answer(request)
        delay = getattr(response, "delay_s", 0.0)
        if delay:
            await asyncio.sleep(delay)
        return response

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._handle)])

    def media_url(self, message_sid: str, account_sid: str = ACCOUNT) -> str:
        return self.url + media_path(account_sid, message_sid)

    # -- scripted answers --------------------------------------------------------------------
    @staticmethod
    def body(data: bytes, content_type: str = "audio/ogg", delay_s: float = 0.0) -> Answer:
        def answer(_: Request) -> Response:
            response = Response(data, media_type=content_type)
            response.delay_s = delay_s  # type: ignore[attr-defined]
            return response
        return answer

    @staticmethod
    def status(code: int, headers: dict[str, str] | None = None) -> Answer:
        return lambda _: Response(b"", status_code=code, headers=headers)

    @staticmethod
    def redirect(location: str) -> Answer:
        return lambda _: RedirectResponse(location, status_code=302)

    def stream(self, total: int, *, declare_length: bool, chunk: int = 64 * 1024) -> Answer:
        """``total`` bytes of "audio", chunked, with or without a Content-Length; it stops
        when the client hangs up (``streamed_bytes`` is then what it could hand over)."""
        def answer(request: Request) -> Response:
            async def chunks() -> AsyncIterator[bytes]:
                sent = 0
                while sent < total and not await request.is_disconnected():
                    piece = b"\0" * min(chunk, total - sent)
                    sent += len(piece)
                    self.streamed_bytes += len(piece)
                    yield piece
            headers = {"content-length": str(total)} if declare_length else None
            return StreamingResponse(chunks(), media_type="audio/ogg", headers=headers)
        return answer


@contextlib.contextmanager
def media_host() -> Iterator[MediaHost]:
    host = MediaHost()
    with serve_in_thread(host.app()) as url:
        host.url = url
        yield host


# -- audio -----------------------------------------------------------------------------------
def wav_samples(wav_bytes: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def encode(samples: np.ndarray, rate: int, container: str, codec: str, out_rate: int) -> bytes:
    """Mono int16 ``samples`` encoded with PyAV (FFmpeg) into ``container``/``codec``."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream: Any = out.add_stream(codec, rate=out_rate, layout="mono")  # type: ignore[call-overload]
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        fifo = av.AudioFifo()
        for resampled in resampler.resample(frame) + resampler.resample(None):
            resampled.pts = None
            fifo.write(resampled)
        # Encoders with a fixed frame size (AMR: 160, AAC: 1024) take frames of that size.
        size = stream.codec_context.frame_size or fifo.samples
        while (piece := fifo.read(size)) is not None:
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()
