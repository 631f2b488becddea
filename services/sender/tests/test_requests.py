"""What the conversation asks the sender to send (OutboundMessageRequested: notices, operators'
messages, templates), against real NATS, the Twilio simulator on the real SDK and a real
gateway for the status callbacks; and the agent's replies that hand off to a person."""

from __future__ import annotations

import json

from prometheus_client import REGISTRY
from sender_helpers import (
    ACCOUNT,
    TOKEN,
    USER,
    attempts,
    drained,
    eventually,
    hours_ago,
    publish_reply,
    publish_request,
    reply,
    request,
    seed_conversation,
    sender_events,
    set_view,
    wait_for,
)
from switchboard_contracts import Envelope
from switchboard_contracts.conversation_view import Mode
from switchboard_contracts.topology import AGENT, CONVERSATION

CLOSED = 25.0  # hours since the user's last message: the WhatsApp window is closed


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _outcome(js, envelope: Envelope) -> Envelope:
    """The first part's outcome: sent or failed."""
    async def check() -> Envelope | None:
        return next((e for e in await sender_events(js, str(envelope.event_id))
                     if e.type in ("OutboundMessageSent", "OutboundMessageFailed")), None)

    found: Envelope = await eventually(check, 30.0)  # several wait for the lease in turn
    return found


async def test_an_operator_message_outside_the_window_is_refused_without_a_call(
        js, sim, sender) -> None:
    turn = await seed_conversation(js, last_user_message_at=hours_ago(CLOSED), mode=Mode.HUMAN,
                                   operator_id="ann")
    envelope = request(turn, "operator", "operator_reply", "Are you still there?",
                       operator_id="ann")
    await publish_request(js, envelope)
    [failed] = await wait_for(js, str(envelope.event_id), "OutboundMessageFailed")
    assert (failed.data["reason"], failed.data["error_code"]) == ("outside_24h_window", "63016")
    [accepted] = await wait_for(js, str(envelope.event_id), "OutboundReplyAccepted")
    assert accepted.data | {"kind": "operator", "purpose": "operator_reply",
                            "operator_id": "ann"} == accepted.data
    assert accepted.correlation_id == turn.correlation_id
    await drained(js, CONVERSATION.name, "sender-requests")
    assert await attempts(sim) == []


async def test_an_operator_message_with_media_goes_out_in_the_window(js, sim, sender) -> None:
    turn = await seed_conversation(js, mode=Mode.HUMAN, operator_id="ann")
    media = "https://example.com/leaflet.pdf"
    envelope = request(turn, "operator", "operator_reply", "Here is our leaflet.",
                       media_url=media, operator_id="ann")
    await publish_request(js, envelope)
    [sent] = await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    [call] = await attempts(sim)
    assert call["form"]["Body"] == "Here is our leaflet." and call["form"]["MediaUrl"] == [media]
    assert sent.data["message_sid"] == call["message_sid"]


async def test_a_template_arrives_with_its_content_sid_and_variables(js, sim, sender) -> None:
    content_sid = await sim.create_template(ACCOUNT, TOKEN, "follow_up",
                                            "Hi {{1}}, we can talk again: just write back.")
    turn = await seed_conversation(js, last_user_message_at=hours_ago(CLOSED))
    envelope = request(turn, "template", "template", content_sid=content_sid,
                       content_variables={"1": "Ana"}, template_name="follow_up")
    await publish_request(js, envelope)
    [sent] = await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    [call] = await attempts(sim)
    assert call["status_code"] == 201 and "Body" not in call["form"]
    assert call["form"]["ContentSid"] == content_sid
    assert json.loads(call["form"]["ContentVariables"]) == {"1": "Ana"}
    [message] = [m for m in (await sim.messages())["messages"] if m["sid"] == sent.data[
        "message_sid"]]
    assert message["content_sid"] == content_sid and message["to"] == USER
    assert message["body"] == "Hi Ana, we can talk again: just write back."


async def test_an_ambiguous_template_send_is_found_by_lookup_not_sent_twice(
        js, sim, start_sender) -> None:
    """Twilio renders a template's body: the lookup matches it by number and time."""
    content_sid = await sim.create_template(ACCOUNT, TOKEN, "reminder", "See you at {{1}}.")
    await sim.queue_failure("timeout", hang_s=3, created=True)
    turn = await seed_conversation(js, last_user_message_at=hours_ago(CLOSED))
    envelope = request(turn, "template", "template", content_sid=content_sid,
                       content_variables={"1": "9:00"})
    before = _metric("switchboard_sender_double_sends_avoided_total", how="lookup")
    async with start_sender(twilio_timeout_s=1.0):
        await publish_request(js, envelope)
        [sent] = await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    [call] = await attempts(sim)
    assert call["scripted"] == "timeout" and sent.data["message_sid"] == call["message_sid"]
    assert _metric("switchboard_sender_double_sends_avoided_total", how="lookup") == before + 1


async def test_an_opted_out_user_gets_only_the_opt_out_confirmation(js, sim, sender) -> None:
    content_sid = await sim.create_template(ACCOUNT, TOKEN, "promo", "News!")
    turn = await seed_conversation(js, opted_out=True)
    confirmation = request(turn, "notice", "opted_out", "You will get no more messages.")
    refused = [
        request(turn, "notice", "handoff_requested", "A person will answer you shortly."),
        request(turn, "operator", "operator_reply", "Hello from Ann.", operator_id="ann"),
        request(turn, "template", "template", content_sid=content_sid),
    ]
    agents = reply(turn, "The bot's answer.")
    for envelope in (confirmation, *refused):
        await publish_request(js, envelope)
    await publish_reply(js, agents)

    assert (await _outcome(js, confirmation)).type == "OutboundMessageSent"
    for envelope in (*refused, agents):
        outcome = await _outcome(js, envelope)
        assert (outcome.type, outcome.data["reason"]) == ("OutboundMessageFailed", "opted_out")
    [call] = await attempts(sim)
    assert call["form"]["Body"] == "You will get no more messages."


async def test_an_opt_in_confirmation_waits_for_the_view_that_reflects_the_opt_in(
        js, sim, sender) -> None:
    """The request is consumed before the conversation has written the view that shows the
    opt-in (finding 5): the view still says opted out, at a version older than the request.
    The confirmation waits for a view at least as new as the request, and goes out."""
    turn = await seed_conversation(js, opted_out=True, version=0)  # before the request
    confirmation = request(turn, "notice", "opted_in", "You will get our messages again.")
    seq = await publish_request(js, confirmation)
    await wait_for(js, str(confirmation.event_id), "OutboundReplyAccepted")
    await set_view(js, turn.conversation_id, turn=turn.turn, version=seq, opted_out=False)

    assert (await _outcome(js, confirmation)).type == "OutboundMessageSent"
    [call] = await attempts(sim)
    assert call["form"]["Body"] == "You will get our messages again."


async def test_operator_messages_chained_by_after_go_out_in_order_when_consumed_in_reverse(
        js, sim, sender) -> None:
    turn = await seed_conversation(js, mode=Mode.HUMAN, operator_id="ann")
    first = request(turn, "operator", "operator_reply", "First: I am looking into it.")
    second = request(turn, "operator", "operator_reply", "Second: it is done.",
                     after=str(first.event_id))
    third = request(turn, "operator", "operator_reply", "Third: anything else?",
                    after=str(second.event_id))
    waits = _metric("switchboard_sender_after_waits_total")
    for envelope in (third, second, first):  # the consumer sees them last first
        await publish_request(js, envelope)
    await wait_for(js, str(third.event_id), "OutboundMessageSent")
    bodies = [a["form"]["Body"] for a in await attempts(sim)]
    assert bodies == [first.data["text"], second.data["text"], third.data["text"]]
    assert _metric("switchboard_sender_after_waits_total") > waits


async def test_a_notice_after_a_message_that_never_comes_goes_after_the_bounded_wait(
        js, sim, start_sender) -> None:
    turn = await seed_conversation(js, mode=Mode.WAITING)
    notice = request(turn, "notice", "handoff_requested", "A person will answer you shortly.",
                     after="0" * 32)  # no such outbound message ever reaches the sender
    given_up = _metric("switchboard_sender_after_given_up_total", why="missing")
    async with start_sender(after_wait_s=1.0, reply_wait_poll_s=0.5):
        await publish_request(js, notice)
        [sent] = await wait_for(js, str(notice.event_id), "OutboundMessageSent")
    assert _metric("switchboard_sender_after_given_up_total", why="missing") == given_up + 1
    assert [a["message_sid"] for a in await attempts(sim)] == [sent.data["message_sid"]]


async def test_a_reply_handing_off_to_a_person_is_never_sent(js, sim, sender) -> None:
    turn = await seed_conversation(js)
    envelope = reply(turn, "Let me get you a person.", handoff_reason="wants a refund")
    before = _metric("switchboard_sender_handoff_replies_total")
    await publish_reply(js, envelope)
    await eventually(lambda: _metric("switchboard_sender_handoff_replies_total") == before + 1,
                     15.0)
    await drained(js, AGENT.name, "sender-replies")
    assert await sender_events(js, str(envelope.event_id)) == []
    assert await attempts(sim) == []
