"""End to end: a WhatsApp voice note (espeak-ng speech, OGG/Opus) through gateway,
conversation, transcription (the real Whisper model, media fetched from the Twilio simulator
with the tenant's credentials), agent and sender, on real NATS."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from e2e_helpers import NUMBER, USER, eventually, stream_events
from nats.js import JetStreamContext
from switchboard_contracts import Envelope
from twilio_sim.client import SimClient

SENTENCE = "Hello, I would like to book an appointment for Friday morning."
KEY_WORDS = ("appointment", "friday")
FALLBACK = "Sorry, I could not understand the audio."


@pytest.fixture(scope="module")
def voice_note() -> bytes:
    if shutil.which("espeak-ng") is None or not (shutil.which("opusenc")
                                                 or shutil.which("ffmpeg")):
        pytest.skip("voice-note tests need espeak-ng and opusenc (make system-packages)")
    from twilio_sim.chat.speech import speak

    return speak(SENTENCE)


async def sent_messages(sim: SimClient) -> list[dict[str, Any]]:
    attempts = (await sim.messages())["attempts"]
    return [a for a in attempts if a["form"].get("To") == USER and a["status_code"] == 201]


async def first_of(js: JetStreamContext, stream: str, kind: str) -> Envelope:
    return next(e for e in await stream_events(js, stream) if e.type == kind)


async def test_a_voice_note_is_transcribed_and_the_agent_answers_what_was_said(
        voice_stack, sim: SimClient, llm, js: JetStreamContext, voice_note: bytes) -> None:
    inbound = await sim.inbound(USER, NUMBER, media=[("audio/ogg", voice_note)])
    assert inbound["status_code"] == 200

    [call] = await eventually(lambda: sent_messages(sim), timeout_s=60)
    # The LLM simulator answers "... You said: <the last user message>": the transcript.
    assert all(word in call["form"]["Body"].lower() for word in KEY_WORDS), call["form"]["Body"]
    prompt = llm.requests()[-1]["messages"]
    assert prompt[-1]["role"] == "user"
    assert all(word in prompt[-1]["content"].lower() for word in KEY_WORDS)

    received = await first_of(js, "GATEWAY", "InboundMessageReceived")
    transcript = await first_of(js, "TRANSCRIPTION", "TranscriptionCompleted")
    assert transcript.data["message_sid"] == inbound["message_sid"]
    assert all(word in transcript.data["text"].lower() for word in KEY_WORDS)
    assert transcript.data["language"] == "en"
    assert transcript.correlation_id == received.correlation_id  # one thread through it all


async def test_a_corrupted_voice_note_gets_the_fallback_reply(
        voice_stack, sim: SimClient, llm, js: JetStreamContext) -> None:
    inbound = await sim.inbound(USER, NUMBER, media=[("audio/ogg", os.urandom(30_000))])
    assert inbound["status_code"] == 200

    [call] = await eventually(lambda: sent_messages(sim), timeout_s=60)
    assert call["form"]["Body"].startswith(FALLBACK)
    failed = await first_of(js, "TRANSCRIPTION", "TranscriptionFailed")
    assert failed.data == {"message_sid": inbound["message_sid"], "reason": "audio_undecodable"}
    assert llm.requests() == []  # the fallback needs no LLM call
