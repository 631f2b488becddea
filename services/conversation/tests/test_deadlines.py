"""Every turn ends (issue 10, ADR 0016): a reply or a transcript that never comes is replaced
at its durable deadline, and the messages behind it are answered."""

from __future__ import annotations

import pytest
from conversation_helpers import (
    count,
    held_timers,
    of_type,
    send_inbound,
    send_reply,
    settle,
    state,
    wait_for,
)
from switchboard_contracts.events.gateway import Media

DEADLINE_S = 1.0
# A deadline fires within a second of its due time (schedules have whole seconds).
WAIT_S = DEADLINE_S + 8
VOICE = [Media(url="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
               content_type="audio/ogg")]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"conversation_turn_deadline_s": DEADLINE_S,
            "conversation_transcript_deadline_s": DEADLINE_S}


async def test_a_reply_that_never_comes_ends_with_the_fallback(js, conversation):
    m1 = await send_inbound(js, text="hi")
    # Nobody answers turn 1 (its request was dead-lettered, or no agent runs).
    events = await wait_for(js, count("ReplyRequested", 2), timeout_s=WAIT_S)
    first, fallback = of_type(events, "ReplyRequested")
    assert first.data["turn"] == 1 and first.data["fallback_reason"] is None
    # The agent's path without the LLM answers turn 2 with the localized fallback text.
    assert fallback.data["turn"] == 2 and fallback.data["fallback_reason"] == "turn_deadline"
    assert fallback.data["message_sids"] == [m1.data["message_sid"]]
    assert fallback.correlation_id == m1.correlation_id
    await send_reply(js, first, "too late")  # the lost reply turns up after all: stale
    await send_reply(js, fallback, "Sorry, I can't answer right now.")
    events = await wait_for(js, count("AssistantMessageAppended"))
    [answer] = of_type(events, "AssistantMessageAppended")
    assert (answer.data["turn"], answer.data["text"]) == (2, "Sorry, I can't answer right now.")

    # A message sent after it is answered as usual.
    m2 = await send_inbound(js, text="are you there?")
    events = await wait_for(js, count("ReplyRequested", 3))
    third = of_type(events, "ReplyRequested")[2]
    assert third.data["message_sids"] == [m2.data["message_sid"]]
    assert third.data["fallback_reason"] is None
    await send_reply(js, third, "Yes!")
    events = await wait_for(js, count("AssistantMessageAppended", 2))
    assert [a.data["turn"] for a in of_type(events, "AssistantMessageAppended")] == [2, 3]
    st = await state(js)
    assert not st.reply_in_flight and not st.waiting_message_sids


async def test_messages_behind_a_lost_turn_are_answered_at_its_deadline(js, conversation):
    await send_inbound(js, text="hi")
    request = of_type(await wait_for(js, count("ReplyRequested")), "ReplyRequested")[0]
    m2 = await send_inbound(js, text="hello?")  # waits behind turn 1, which never ends
    await wait_for(js, count("UserMessageAppended", 2))
    events = await wait_for(js, count("ReplyRequested", 2), timeout_s=WAIT_S)
    assert [s.data for s in of_type(events, "ReplySuperseded")] == [{"turn": 1, "next_turn": 2}]
    second = of_type(events, "ReplyRequested")[1]
    assert second.data["message_sids"] == [m2.data["message_sid"]]
    assert second.data["fallback_reason"] is None  # the LLM answers it all, "hi" in context
    assert [c["content"] for c in second.data["context"]] == ["hi", "hello?"]
    await send_reply(js, request, "late")  # stale: changes nothing
    await send_reply(js, second, "Hi! How can I help?")
    events = await wait_for(js, count("AssistantMessageAppended"))
    assert [a.data["turn"] for a in of_type(events, "AssistantMessageAppended")] == [2]


async def test_when_even_the_fallback_never_comes_the_next_message_is_not_stuck(
    js, conversation
):
    await send_inbound(js, text="hi")
    await wait_for(js, count("ReplyRequested", 2), timeout_s=WAIT_S)  # fallback turn 2
    # Turn 2 is lost as well (no agent at all): it is given up at its own deadline.
    events = await wait_for(js, count("ReplySuperseded"), timeout_s=WAIT_S)
    assert [s.data["turn"] for s in of_type(events, "ReplySuperseded")] == [2]
    # No chain of deadlines follows: nothing is in flight any more, no turn deadline is set.
    events = await settle(js)
    assert len(of_type(events, "ReplyRequested")) == 2
    assert "turn" not in await held_timers(js)
    m2 = await send_inbound(js, text="anyone?")
    events = await wait_for(js, count("ReplyRequested", 3))
    third = of_type(events, "ReplyRequested")[2]
    assert third.data["turn"] == 3 and third.data["message_sids"] == [m2.data["message_sid"]]
    assert third.data["fallback_reason"] is None


async def test_a_transcript_that_never_comes_counts_as_not_transcribed(js, conversation):
    note = await send_inbound(js, text="", media=VOICE)
    events = await wait_for(js, count("ReplyRequested"), timeout_s=WAIT_S)
    [transcript] = of_type(events, "TranscriptAppended")
    assert transcript.data["message_sid"] == note.data["message_sid"]
    assert transcript.data["failed"] and transcript.data["reason"] == "transcription_deadline"
    [request] = of_type(events, "ReplyRequested")
    assert request.data["fallback_reason"] == "transcription_failed"
