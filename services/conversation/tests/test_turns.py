"""Text messages: turns, idempotency on MessageSid, replies, and coalescing of bursts."""

from __future__ import annotations

import uuid

from conversation_helpers import (
    CID,
    NUMBER,
    USER,
    count,
    of_type,
    public_view,
    send_inbound,
    send_reply,
    settle,
    state,
    wait_for,
)
from switchboard_contracts.events.gateway import Media
from switchboard_contracts.topology import conversation_id_for


async def test_a_text_message_starts_a_conversation_and_requests_a_reply(js, conversation):
    inbound = await send_inbound(js, text="Is the clinic open tomorrow?")
    events = await wait_for(js, count("ReplyRequested"))
    assert [e.type for e in events] == [
        "ConversationStarted", "UserMessageAppended", "ReplyRequested"]
    started, message, request = events
    assert started.data["session"] == 1 and started.data["user_address"] == USER
    assert message.data["message_sid"] == inbound.data["message_sid"]
    assert message.data["turn"] == 1
    assert request.data["turn"] == 1
    assert request.data["message_sids"] == [inbound.data["message_sid"]]
    assert [(c["role"], c["content"]) for c in request.data["context"]] == [
        ("user", "Is the clinic open tomorrow?")]
    assert request.data["user_address"] == USER and request.data["business_address"] == NUMBER
    assert request.data["fallback_reason"] is None
    for event in events:  # one correlation from the webhook on, each caused by the inbound
        assert event.correlation_id == inbound.correlation_id
        assert event.causation_id == inbound.event_id
        assert event.conversation_id == CID and event.tenant_id == "clinic"
    # The conversation id is stable and carries no phone number.
    assert CID.startswith("cv") and "447700900123" not in CID
    st = await state(js)
    assert st.reply_in_flight and st.turn == 1 and st.last_user_message_at is not None


async def test_the_same_message_twice_is_appended_once(js, conversation):
    first = await send_inbound(js, text="hi")
    await wait_for(js, count("ReplyRequested"))
    # A redelivery, and the same MessageSid as a new event beyond the duplicate window
    # (another event id and Nats-Msg-Id, so the stream cannot drop it).
    await send_inbound(js, first.data["message_sid"], text="hi")
    await send_inbound(js, first.data["message_sid"], text="hi", event_id=uuid.uuid4(),
                       msg_id="after-the-window")
    await send_inbound(js, text="second", user="whatsapp:+447700900999")  # another conversation
    await wait_for(js, count("ReplyRequested"),
                   cid=conversation_id_for("clinic", "whatsapp:+447700900999"))
    events = await settle(js)
    assert len(of_type(events, "UserMessageAppended")) == 1
    assert len(of_type(events, "ReplyRequested")) == 1
    assert len(of_type(events, "ConversationStarted")) == 1


async def test_a_reply_becomes_the_assistant_message(js, conversation):
    await send_inbound(js, text="hi")
    request = of_type(await wait_for(js, count("ReplyRequested")), "ReplyRequested")[0]
    reply = await send_reply(js, request, "Hello! How can I help?")
    events = await wait_for(js, count("AssistantMessageAppended"))
    answer = of_type(events, "AssistantMessageAppended")[0]
    assert answer.data == {"turn": 1, "text": "Hello! How can I help?", "fallback": False,
                           "reply_event_id": str(reply.event_id)}
    assert answer.correlation_id == request.correlation_id
    await send_reply(js, request, "Hello! How can I help?")  # redelivered: nothing new
    events = await settle(js)
    assert len(of_type(events, "AssistantMessageAppended")) == 1
    st = await state(js)
    assert not st.reply_in_flight and st.answered_turns == {1}
    view = await public_view(js, version=st.version)  # the sender may send it now
    assert view.answered_turn == 1 and view.reply_accepted(1)
    # The next message is the next turn, with the whole history as context.
    await send_inbound(js, text="Are you open on Sunday?")
    events = await wait_for(js, count("ReplyRequested", 2))
    second = of_type(events, "ReplyRequested")[1]
    assert second.data["turn"] == 2
    assert [c["content"] for c in second.data["context"]] == [
        "hi", "Hello! How can I help?", "Are you open on Sunday?"]


async def test_a_burst_while_the_reply_is_generated_is_answered_in_one_turn(js, conversation):
    m1 = await send_inbound(js, text="Hi")
    first = of_type(await wait_for(js, count("ReplyRequested")), "ReplyRequested")[0]
    m2 = await send_inbound(js, text="I need an appointment")
    m3 = await send_inbound(js, text="tomorrow morning if possible")
    events = await wait_for(js, count("UserMessageAppended", 3))
    assert len(of_type(events, "ReplyRequested")) == 1  # they wait for the turn in flight
    assert [e.data["turn"] for e in of_type(events, "UserMessageAppended")] == [1, 2, 2]

    await send_reply(js, first, "Hello!")  # the LLM was slow: this reply is stale
    events = await wait_for(js, count("ReplyRequested", 2))
    superseded = of_type(events, "ReplySuperseded")
    assert [s.data for s in superseded] == [{"turn": 1, "next_turn": 2}]
    second = of_type(events, "ReplyRequested")[1]
    assert second.data["turn"] == 2
    assert second.data["message_sids"] == [m2.data["message_sid"], m3.data["message_sid"]]
    assert [c["content"] for c in second.data["context"]] == [
        "Hi", "I need an appointment", "tomorrow morning if possible"]
    # The turn keeps its first message's correlation.
    assert second.correlation_id == m2.correlation_id != m1.correlation_id
    assert not of_type(events, "AssistantMessageAppended")
    view = await public_view(js, version=(await state(js)).version)
    assert view.turn == 2 and not view.turn_superseded and view.answered_turn == 0
    assert view.reply_is_stale(1) and view.reply_pending(2)

    await send_reply(js, first, "Hello!")  # a redelivered stale reply changes nothing
    await send_reply(js, second, "Tomorrow 9:00 works.")
    events = await wait_for(js, count("AssistantMessageAppended"))
    events = await settle(js)
    answers = of_type(events, "AssistantMessageAppended")
    assert [(a.data["turn"], a.data["text"]) for a in answers] == [(2, "Tomorrow 9:00 works.")]
    assert len(of_type(events, "ReplySuperseded")) == 1


async def test_replies_for_old_or_unknown_turns_are_ignored(js, conversation):
    await send_inbound(js, text="hi")
    request = of_type(await wait_for(js, count("ReplyRequested")), "ReplyRequested")[0]
    await send_reply(js, request, "first answer")
    await wait_for(js, count("AssistantMessageAppended"))
    await send_inbound(js, text="and another thing")
    events = await wait_for(js, count("ReplyRequested", 2))
    before = len(events)
    await send_reply(js, request, "late duplicate of turn 1")  # old turn
    future = request.model_copy(update={"data": {**request.data, "turn": 7}})
    await send_reply(js, future, "a turn nobody asked for")  # unknown turn
    events = await settle(js)
    assert len(events) == before
    assert (await state(js)).reply_in_flight


async def test_media_without_text_is_answered_with_a_placeholder(js, conversation):
    await send_inbound(js, text="", media=[Media(url="https://api.twilio.com/m/ME1",
                                                 content_type="image/jpeg")])
    events = await wait_for(js, count("ReplyRequested"))
    assert not of_type(events, "TranscriptionRequested")
    request = of_type(events, "ReplyRequested")[0]
    assert [c["content"] for c in request.data["context"]] == ["[image]"]
