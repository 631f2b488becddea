"""Composition root: the transcription service, wired from its settings."""

from __future__ import annotations

import asyncio
import time

from switchboard_contracts.events.conversation import TranscriptionRequested
from switchboard_contracts.topology import CONVERSATION, TRANSCRIPTION
from switchboard_runtime import Service
from switchboard_runtime.aggregate import conversation_subject
from switchboard_runtime.bus import ConsumerSpec, Handlers
from switchboard_runtime.telemetry import get_logger
from switchboard_tenants import TokenCipher, attach_directory

from .download import DownloadPolicy, MediaClient
from .engine import EngineOptions, ModelSpec, load_engine
from .handlers import Ports, TranscriptionHandler
from .media_url import AllowList
from .metrics import MODEL_INFO
from .settings import TranscriptionSettings

log = get_logger(__name__)

def requests_spec(workers: int) -> ConsumerSpec:
    """Transcription is slow and CPU-bound: one message per fetch, progress acks while a handler
    runs (a long note is not redelivered mid-way), one download overlapping each running
    transcription, and few messages pending per replica so the others (KEDA scales on this
    consumer's lag) get their share."""
    return ConsumerSpec(
        durable="transcription-requests",
        stream=CONVERSATION.name,
        filter_subjects=(conversation_subject("*", TranscriptionRequested.TYPE),),
        ack_wait_s=30.0,
        max_deliver=5,
        max_ack_pending=4 * workers,
        retry_delays_s=(5.0, 30.0, 60.0, 120.0),
        batch=1,
        concurrency=2 * workers,
        long_running=True,
    )


def model_spec(settings: TranscriptionSettings) -> ModelSpec:
    return ModelSpec(
        model_path=settings.whisper_model_path, cache_dir=settings.whisper_model_cache,
        compute_type=settings.whisper_compute_type, cpu_threads=settings.whisper_cpu_threads,
        num_workers=settings.whisper_num_workers,
    )


def download_policy(settings: TranscriptionSettings) -> DownloadPolicy:
    return DownloadPolicy(
        allowed=AllowList.parse(settings.media_allowed_hosts),
        max_bytes=settings.media_max_bytes,
        connect_timeout_s=settings.media_connect_timeout_s,
        read_timeout_s=settings.media_read_timeout_s,
        total_timeout_s=settings.media_total_timeout_s,
        max_redirects=settings.media_max_redirects,
        retry_delays_s=settings.media_retry_delays_s,
        retry_after_max_s=settings.media_retry_after_max_s,
    )


def build(settings: TranscriptionSettings | None = None) -> Service:
    settings = settings or TranscriptionSettings()
    cipher = TokenCipher.from_env()  # fail at start-up, naming the setting
    policy = download_policy(settings)  # a bad MEDIA_ALLOWED_HOSTS fails here, at start-up
    workers = settings.whisper_num_workers
    handler = TranscriptionHandler(MediaClient(policy, settings.media_proxy_url), workers)
    service = Service(settings, owns=(TRANSCRIPTION,), reads=(CONVERSATION,))
    service.app.title = "Switchboard transcription"
    service.consume(requests_spec(workers), Handlers().on(TranscriptionRequested, handler.handle))

    @service.on_start
    async def wire(svc: Service) -> None:
        spec = model_spec(settings)
        started = time.perf_counter()
        # Assembling (first start only) and loading take seconds: off the event loop.
        engine = await asyncio.to_thread(load_engine, spec, EngineOptions(
            beam_size=settings.whisper_beam_size,
            language_threshold=settings.whisper_language_threshold,
            max_audio_s=settings.transcription_max_audio_s,
        ))
        MODEL_INFO.labels(engine.name, spec.compute_type, str(spec.cpu_threads),
                          str(spec.num_workers)).set(1)
        log.info("model loaded", model=engine.name, compute_type=spec.compute_type,
                 cpu_threads=spec.cpu_threads, num_workers=spec.num_workers,
                 seconds=round(time.perf_counter() - started, 2),
                 media_hosts=str(policy.allowed))
        directory = await attach_directory(svc, cipher)
        handler.connect(Ports(credentials=directory.credentials,
                              publisher=svc.publisher(TRANSCRIPTION), engine=engine))

        @svc.on_stop
        async def close(_: Service) -> None:
            await handler.aclose()

    return service


def main() -> None:
    build().run()
