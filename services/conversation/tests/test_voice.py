"""Voice notes: transcribed before the turn is requested; a failed one gets the fallback."""

from __future__ import annotations

from conversation_helpers import (
    LANGUAGE,
    count,
    of_type,
    send_inbound,
    send_reply,
    send_transcript,
    settle,
    wait_for,
)
from switchboard_contracts.events.gateway import Media

VOICE = [Media(url="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
               content_type="audio/ogg")]


async def test_a_voice_note_is_transcribed_then_answered(js, conversation):
    inbound = await send_inbound(js, text="", media=VOICE)
    events = await wait_for(js, count("TranscriptionRequested"))
    assert [e.type for e in await settle(js)] == [
        "ConversationStarted", "UserMessageAppended", "TranscriptionRequested"]
    request = of_type(events, "TranscriptionRequested")[0]
    assert request.data == {
        "message_sid": inbound.data["message_sid"], "media_url": VOICE[0].url,
        "content_type": "audio/ogg", "account_sid": inbound.data["account_sid"],
        "language_hint": LANGUAGE,
    }
    assert request.correlation_id == inbound.correlation_id

    await send_transcript(js, request, "¿Abren mañana?")
    events = await wait_for(js, count("ReplyRequested"))
    transcript = of_type(events, "TranscriptAppended")[0]
    assert transcript.data["text"] == "¿Abren mañana?" and not transcript.data["failed"]
    reply_request = of_type(events, "ReplyRequested")[0]
    assert reply_request.data["message_sids"] == [inbound.data["message_sid"]]
    assert [c["content"] for c in reply_request.data["context"]] == ["¿Abren mañana?"]
    assert reply_request.data["fallback_reason"] is None
    assert reply_request.correlation_id == inbound.correlation_id

    await send_transcript(js, request, "¿Abren mañana?")  # redelivered: nothing new
    events = await settle(js)
    assert len(of_type(events, "TranscriptAppended")) == 1
    assert len(of_type(events, "ReplyRequested")) == 1


async def test_a_failed_transcription_asks_for_the_fallback(js, conversation):
    await send_inbound(js, text="", media=VOICE)
    request = of_type(await wait_for(js, count("TranscriptionRequested")),
                      "TranscriptionRequested")[0]
    await send_transcript(js, request, None)
    events = await wait_for(js, count("ReplyRequested"))
    transcript = of_type(events, "TranscriptAppended")[0]
    assert transcript.data["failed"] and transcript.data["reason"] == "no speech"
    reply_request = of_type(events, "ReplyRequested")[0]
    assert reply_request.data["fallback_reason"] == "transcription_failed"


async def test_a_voice_note_in_a_burst_waits_for_its_transcript(js, conversation):
    await send_inbound(js, text="Hi")
    first = of_type(await wait_for(js, count("ReplyRequested")), "ReplyRequested")[0]
    voice = await send_inbound(js, text="", media=VOICE)
    text = await send_inbound(js, text="and one more thing")
    events = await wait_for(js, count("UserMessageAppended", 3))
    events = await wait_for(js, count("TranscriptionRequested"))
    await send_reply(js, first, "Hello!")
    events = await wait_for(js, count("ReplySuperseded"))
    await settle(js)
    assert len(of_type(await settle(js), "ReplyRequested")) == 1  # the transcript is missing

    await send_transcript(js, of_type(events, "TranscriptionRequested")[0], "what time is it")
    events = await wait_for(js, count("ReplyRequested", 2))
    second = of_type(events, "ReplyRequested")[1]
    assert second.data["turn"] == 2
    assert second.data["message_sids"] == [voice.data["message_sid"], text.data["message_sid"]]
    # The transcript takes the voice note's place in the history, before the later text.
    assert [c["content"] for c in second.data["context"]] == [
        "Hi", "what time is it", "and one more thing"]
    assert second.data["fallback_reason"] is None
