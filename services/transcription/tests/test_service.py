"""The service: TranscriptionRequested on real NATS, media from the Twilio simulator (or a
scripted host), the real Whisper model; TranscriptionCompleted / TranscriptionFailed out."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace

import pytest
from nats.js import JetStreamContext
from switchboard_devstack.waiting import drained
from switchboard_runtime.deadletters.store import list_dead_letters
from switchboard_tenants import TokenCipher
from transcription import main as transcription_main
from transcription.handlers import msg_id
from transcription_helpers import (
    ACCOUNT,
    KEY_WORDS,
    MediaHost,
    host_of,
    new_sid,
    outcome,
    outcomes,
    publish_tenant,
    request_transcription,
    running_service,
    settings,
)
from twilio_sim.testing import RunningSimulator

CONSUMER = ("CONVERSATION", "transcription-requests")
pytestmark = pytest.mark.usefixtures("engine", "tenant")


def simulator_hosts(sim: RunningSimulator) -> list[str]:
    port = host_of(sim.url).rsplit(":", 1)[1]
    return [host_of(sim.url), f"localhost:{port}"]  # the API and its CDN host


async def deliveries(js: JetStreamContext) -> int:
    """Deliveries the consumer made (redeliveries included) once nothing more can happen."""
    await drained(js, [CONSUMER[0]])
    info = await js.consumer_info(*CONSUMER)
    assert info.delivered.consumer_seq is not None
    return info.delivered.consumer_seq


async def test_a_voice_note_comes_back_as_its_transcript(
        nats_url: str, js: JetStreamContext, simulator: RunningSimulator,
        voice_note: bytes) -> None:
    async with simulator.client() as sim:
        stored = await sim.upload_media("audio/ogg", voice_note, account_sid=ACCOUNT)
    async with running_service(settings(nats_url, simulator_hosts(simulator))):
        request = await request_transcription(js, stored["url"], stored["message_sid"])
        result = await outcome(js, stored["message_sid"])
        assert result.type == "TranscriptionCompleted"
        assert all(word in result.data["text"].lower() for word in KEY_WORDS), result.data
        assert result.data["language"] == "en"
        assert result.data["audio_duration_s"] == pytest.approx(3.54, abs=0.1)
        assert result.data["processing_s"] > 0
        assert result.data["model"] == "whisper-base"
        # The conversation finds its way back to the turn by these.
        assert result.conversation_id == request.conversation_id
        assert result.correlation_id == request.correlation_id
        assert result.causation_id == request.event_id
        assert result.tenant_id == request.tenant_id
        stored_msg = await js.get_last_msg("TRANSCRIPTION", "transcription.TranscriptionCompleted")
        assert stored_msg.headers["Nats-Msg-Id"] == msg_id(stored["message_sid"])

        # The same request again (a redelivery, or the conversation asking twice): one outcome.
        await request_transcription(js, stored["url"], stored["message_sid"],
                                    conversation_id=request.conversation_id)
        assert await deliveries(js) == 2  # each request once
        assert len(await outcomes(js, stored["message_sid"])) == 1


async def test_a_voice_note_asked_for_twice_is_downloaded_and_transcribed_once(
        nats_url: str, js: JetStreamContext, host: MediaHost, voice_note: bytes) -> None:
    host.answer(MediaHost.body(voice_note))
    async with running_service(settings(nats_url, [host_of(host.url)])):
        sid = new_sid("MM")
        first = await request_transcription(js, host.media_url(sid), sid)
        await outcome(js, sid)
        await request_transcription(js, host.media_url(sid), sid,
                                    conversation_id=first.conversation_id)
        assert await deliveries(js) == 2
    assert len(host.requests) == 1
    assert len(await outcomes(js, sid)) == 1


async def test_corrupted_audio_fails_at_once_with_its_reason(
        nats_url: str, js: JetStreamContext, simulator: RunningSimulator) -> None:
    async with simulator.client() as sim:
        stored = await sim.upload_media("audio/ogg", os.urandom(30_000), account_sid=ACCOUNT)
    async with running_service(settings(nats_url, simulator_hosts(simulator))):
        await request_transcription(js, stored["url"], stored["message_sid"])
        result = await outcome(js, stored["message_sid"])
        assert result.type == "TranscriptionFailed"
        assert result.data == {"message_sid": stored["message_sid"],
                               "reason": "audio_undecodable"}
        assert await deliveries(js) == 1  # acked: not retried
        assert await list_dead_letters(js) == []


async def test_a_file_over_the_cap_is_refused_without_being_downloaded_whole(
        nats_url: str, js: JetStreamContext, host: MediaHost) -> None:
    total = 256 * 1024 * 1024
    host.answer(host.stream(total, declare_length=False))
    config = settings(nats_url, [host_of(host.url)], media_max_bytes=1024 * 1024)
    async with running_service(config):
        sid = new_sid("MM")
        await request_transcription(js, host.media_url(sid), sid)
        result = await outcome(js, sid)
    assert result.type == "TranscriptionFailed"
    assert result.data["reason"] == "media_too_large"
    assert len(host.requests) == 1
    assert host.streamed_bytes < total / 8


async def test_a_media_url_outside_the_allow_list_is_refused_and_never_requested(
        nats_url: str, js: JetStreamContext, simulator: RunningSimulator,
        outside: MediaHost, voice_note: bytes) -> None:
    outside.answer(MediaHost.body(voice_note))
    async with running_service(settings(nats_url, simulator_hosts(simulator))):
        sid = new_sid("MM")
        await request_transcription(js, outside.media_url(sid), sid)
        result = await outcome(js, sid)
    assert result.type == "TranscriptionFailed"
    assert result.data["reason"] == "media_url_not_allowed"
    assert outside.requests == []


async def test_a_401_from_the_media_host_fails_with_that_reason_and_is_not_retried(
        nats_url: str, js: JetStreamContext, host: MediaHost) -> None:
    host.answer(MediaHost.status(401))
    async with running_service(settings(nats_url, [host_of(host.url)])):
        sid = new_sid("MM")
        await request_transcription(js, host.media_url(sid), sid)
        result = await outcome(js, sid)
        assert result.data["reason"] == "media_unauthorized"
        assert await deliveries(js) == 1
    assert len(host.requests) == 1
    assert await list_dead_letters(js) == []


async def test_the_simulator_refusing_the_tenants_token_is_media_unauthorized(
        nats_url: str, js: JetStreamContext, simulator: RunningSimulator, cipher: TokenCipher,
        voice_note: bytes) -> None:
    await publish_tenant(js, cipher, token="f" * 32)  # not the account's auth token
    async with simulator.client() as sim:
        stored = await sim.upload_media("audio/ogg", voice_note, account_sid=ACCOUNT)
    async with running_service(settings(nats_url, simulator_hosts(simulator))):
        await request_transcription(js, stored["url"], stored["message_sid"])
        result = await outcome(js, stored["message_sid"])
    assert result.data["reason"] == "media_unauthorized"


async def test_media_down_on_every_delivery_ends_in_a_failure_on_the_last_one(
        nats_url: str, js: JetStreamContext, host: MediaHost,
        monkeypatch: pytest.MonkeyPatch) -> None:
    host.answer(MediaHost.status(503))
    spec = transcription_main.requests_spec
    monkeypatch.setattr(transcription_main, "requests_spec", lambda workers: replace(
        spec(workers), max_deliver=3, retry_delays_s=(0.2,)))
    config = settings(nats_url, [host_of(host.url)], media_retry_delays_s=(0.05,))
    async with running_service(config):
        sid = new_sid("MM")
        await request_transcription(js, host.media_url(sid), sid)
        result = await outcome(js, sid, timeout_s=20)
        assert result.type == "TranscriptionFailed"
        assert result.data["reason"] == "media_unavailable"
        assert await deliveries(js) == 3
    assert len(host.requests) == 6  # two attempts per delivery, then the user is answered
    assert await list_dead_letters(js) == []


async def test_progress_acks_keep_a_slow_voice_note_from_being_redelivered(
        nats_url: str, js: JetStreamContext, host: MediaHost, voice_note: bytes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Each delivery lasts twice ack_wait and more (a slow download, then Whisper itself). The
    # ack_wait leaves a progress beat (every ack_wait / 3) room to be late on a busy machine:
    # at 0.6 s a loaded machine redelivered once. (A delay of 5 s or more hits the download's
    # own timeouts.)
    host.answer(MediaHost.body(voice_note, delay_s=3.0))
    monkeypatch.setenv("SB_CONSUMER_TRANSCRIPTION_REQUESTS_ACK_WAIT_S", "1.5")
    async with running_service(settings(nats_url, [host_of(host.url)])):
        sid = new_sid("MM")
        await request_transcription(js, host.media_url(sid), sid)
        result = await outcome(js, sid)
        assert result.type == "TranscriptionCompleted"
        assert await deliveries(js) == 1
    assert len(host.requests) == 1


async def test_a_request_from_another_account_than_the_tenants_is_refused(
        nats_url: str, js: JetStreamContext, host: MediaHost, voice_note: bytes) -> None:
    other = "AC" + "f" * 32
    host.answer(MediaHost.body(voice_note))
    async with running_service(settings(nats_url, [host_of(host.url)])):
        sid = new_sid("MM")
        await request_transcription(js, host.media_url(sid, account_sid=other), sid,
                                    account_sid=other, event_id=uuid.uuid4())
        result = await outcome(js, sid)
    assert result.data["reason"] == "media_url_not_allowed"
    assert host.requests == []  # the tenant's credentials never went to another account's URL
