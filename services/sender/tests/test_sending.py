"""The sender against real NATS, the Twilio simulator (real SDK) and a real gateway that turns
the simulator's signed status callbacks into DeliveryStatusReported events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from prometheus_client import REGISTRY
from sender.splitting import split_message
from sender_helpers import (
    ACCOUNT,
    NUMBER,
    TOKEN,
    USER,
    attempt_time,
    attempts,
    drained,
    eventually,
    hours_ago,
    of_type,
    publish_reply,
    reply,
    seed_conversation,
    sender_events,
    wait_for,
)
from switchboard_contracts import Envelope
from switchboard_contracts.events.sender import OutboundPartAttempted, OutboundReplyAccepted
from switchboard_contracts.topology import AGENT, GATEWAY, SENDER
from switchboard_runtime.bus import Publisher
from switchboard_runtime.eventsourcing import append
from twilio.rest import Client
from twilio_sim.config import StatusDelays
from twilio_sim.sdk import simulator_http_client

LONG = " ".join(f"Sentence number {i} says something useful about the clinic." for i in range(70))


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_one_reply_is_one_call_to_the_user_from_the_tenant_number(js, sim, sender
                                                                        ) -> None:
    turn = await seed_conversation(js)
    envelope = reply(turn, "We open at 9 tomorrow.")
    await publish_reply(js, envelope)
    [sent] = await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    [call] = await attempts(sim)
    assert call["status_code"] == 201
    assert call["form"]["To"] == USER and call["form"]["From"] == NUMBER
    assert call["form"]["Body"] == "We open at 9 tomorrow."
    assert call["form"]["StatusCallback"].endswith(
        f"/twilio/whatsapp/status?correlation_id={turn.correlation_id}")
    assert sent.data["message_sid"] == call["message_sid"]
    assert sent.correlation_id == turn.correlation_id
    # The MessageSid map names the tenant: the gateway checks a status callback's signer by it.
    entry = await (await js.key_value("sender-messages")).get(call["message_sid"])
    assert json.loads(entry.value) | {"reply_id": str(envelope.event_id), "part": 1,
                                      "tenant_id": "clinic"} == json.loads(entry.value)
    assert sent.conversation_id == turn.conversation_id and sent.tenant_id == "clinic"
    # The callbacks came back through the gateway and were applied, up to read.
    applied = await wait_for(js, str(envelope.event_id), "DeliveryStatusApplied", count=3)
    assert [a.data["status"] for a in applied] == ["sent", "delivered", "read"]
    assert all(a.correlation_id == turn.correlation_id for a in applied)


@pytest.fixture
def status_delays() -> StatusDelays:
    """In this module the simulator reports `sent` 0.4 s after a create."""
    return StatusDelays(sent=0.4, delivered=0.05, read=0.05)


async def test_a_long_reply_goes_in_three_parts_each_after_the_previous_sent(
    js, sim, start_sender
) -> None:
    text = LONG[:4000]
    assert len(split_message(text)) == 3
    turn = await seed_conversation(js)
    envelope = reply(turn, text)
    async with start_sender(part_timeout_s=30.0):  # only the callbacks can release parts
        await publish_reply(js, envelope)
        await wait_for(js, str(envelope.event_id), "OutboundMessageSent", count=3)
    calls = await attempts(sim)
    assert [c["form"]["Body"] for c in calls] == split_message(text)
    for before, after in pairwise(calls):
        # The simulator reports `sent` 0.4 s after a create: no part went before that.
        assert (attempt_time(after) - attempt_time(before)).total_seconds() >= 0.4
    events = await sender_events(js, str(envelope.event_id))
    order = [(e.type, e.data.get("part"), e.data.get("status")) for e in events]
    for part in (1, 2):
        released = order.index(("DeliveryStatusApplied", part, "sent"))
        assert order.index(("OutboundPartAttempted", part + 1, None)) > released


async def test_a_reply_observes_the_turn_slo_once_from_the_turns_start_to_part_one(
    js, sim, sender
) -> None:
    text = LONG[:2000]
    assert len(split_message(text)) == 2
    turn = await seed_conversation(js)
    started = datetime.now(UTC) - timedelta(seconds=3.5)  # the gateway took it 3.5 s ago
    plain = reply(turn, text)
    envelope = plain.model_copy(update={"data": plain.data | {
        "turn_started_at": started.isoformat()}})
    name = "switchboard_sender_turn_seconds"
    before = {suffix: _metric(f"{name}{suffix}", fallback="false")
              for suffix in ("_count", "_sum")}
    before_le = {le: _metric(f"{name}_bucket", fallback="false", le=le) for le in ("3.0", "15.0")}
    await publish_reply(js, envelope)
    first, _second = await wait_for(js, str(envelope.event_id), "OutboundMessageSent", count=2)
    assert _metric(f"{name}_count", fallback="false") - before["_count"] == 1  # part 1 only
    elapsed = (first.occurred_at - started).total_seconds()
    assert _metric(f"{name}_sum", fallback="false") - before["_sum"] == pytest.approx(elapsed)
    assert [_metric(f"{name}_bucket", fallback="false", le=le) - before_le[le]
            for le in ("3.0", "15.0")] == [0, 1]


async def test_a_redelivered_reply_makes_no_second_call(js, sim, sender) -> None:
    turn = await seed_conversation(js)
    envelope = reply(turn, "Just once.")
    await publish_reply(js, envelope)
    await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    await publish_reply(js, envelope, msg_id="replayed-1")  # past the duplicate window
    await publish_reply(js, envelope, msg_id="replayed-2")
    await drained(js, AGENT.name, "sender-replies")
    assert len(await attempts(sim)) == 1
    assert len(of_type(await sender_events(js, str(envelope.event_id)),
                       "OutboundMessageSent")) == 1


async def test_a_new_instance_after_a_stop_does_not_send_again(js, sim, start_sender) -> None:
    turn = await seed_conversation(js)
    envelope = reply(turn, "Survives restarts.")
    async with start_sender():
        await publish_reply(js, envelope)
        await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    async with start_sender():
        await publish_reply(js, envelope, msg_id="after-restart")
        await drained(js, AGENT.name, "sender-replies")
    assert len(await attempts(sim)) == 1


async def test_a_crash_between_the_call_and_its_record_is_recovered_by_lookup(
    js, sim, simulator, start_sender
) -> None:
    # The state a crash leaves: the attempt recorded, the message created at Twilio, no Sent.
    turn = await seed_conversation(js)
    envelope = reply(turn, "Sent just before the crash.")
    reply_id = str(envelope.event_id)
    accepted = envelope.caused(OutboundReplyAccepted(
        turn=1, texts=["Sent just before the crash."], to_address=USER, from_address=NUMBER,
        account_sid=ACCOUNT))
    attempted = envelope.caused(OutboundPartAttempted(
        turn=1, part=1, parts=1, attempt=1, attempted_at=datetime.now(UTC)))
    async with start_sender():  # creates the SENDER stream
        pass
    publisher = Publisher(js, SENDER.name)
    ack = await append(publisher, f"sender.{reply_id}.>",
                       f"sender.{reply_id}.OutboundReplyAccepted", accepted, 0)
    await append(publisher, f"sender.{reply_id}.>", f"sender.{reply_id}.OutboundPartAttempted",
                 attempted, ack.seq)
    twilio = Client(ACCOUNT, TOKEN, http_client=simulator_http_client(simulator.url))
    created = twilio.messages.create(to=USER, from_=NUMBER, body="Sent just before the crash.")
    async with start_sender():
        await publish_reply(js, envelope)  # the redelivery of the event being handled
        [sent] = await wait_for(js, reply_id, "OutboundMessageSent")
    assert sent.data["message_sid"] == created.sid
    assert len(await attempts(sim)) == 1  # only the call made before the crash


async def test_503_then_201_sends_once(js, sim, sender) -> None:
    await sim.queue_failure("503")
    turn = await seed_conversation(js)
    envelope = reply(turn, "Try again.")
    await publish_reply(js, envelope)
    [sent] = await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    calls = await attempts(sim)
    assert [c["status_code"] for c in calls] == [503, 201]
    assert sent.data["message_sid"] == calls[1]["message_sid"]
    assert len(of_type(await sender_events(js, str(envelope.event_id)),
                       "OutboundPartAttempted")) == 2


async def test_a_timeout_after_twilio_created_the_message_is_found_not_resent(
    js, sim, start_sender
) -> None:
    await sim.queue_failure("timeout", hang_s=3, created=True)
    turn = await seed_conversation(js)
    envelope = reply(turn, "Slow but there.")
    before = _metric("switchboard_sender_double_sends_avoided_total", how="lookup")
    async with start_sender(twilio_timeout_s=1.0):
        await publish_reply(js, envelope)
        [sent] = await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    [call] = await attempts(sim)
    assert call["scripted"] == "timeout"
    assert sent.data["message_sid"] == call["message_sid"]
    assert _metric("switchboard_sender_double_sends_avoided_total", how="lookup") == before + 1


async def test_an_invalid_number_fails_at_once_without_retry(js, sim, sender) -> None:
    await sim.queue_failure("21211")
    turn = await seed_conversation(js)
    envelope = reply(turn, "Nobody there.")
    await publish_reply(js, envelope)
    [failed] = await wait_for(js, str(envelope.event_id), "OutboundMessageFailed")
    assert failed.data["reason"] == "twilio_21211"
    assert failed.data["error_code"] == "21211" and failed.data["retryable"] is False
    await drained(js, AGENT.name, "sender-replies")
    assert len(await attempts(sim)) == 1


async def test_a_reply_that_stops_at_a_failed_part_records_every_part_it_will_not_send(
        js, sim, sender) -> None:
    # Without an outcome for each part, the later parts would stay pending for ever in the
    # read models, and the fault suite would count them as lost.
    await sim.queue_failure("21211")
    turn = await seed_conversation(js)
    envelope = reply(turn, "Nobody there at all. " * 120)  # 2,520 characters: 2 parts
    await publish_reply(js, envelope)
    await wait_for(js, str(envelope.event_id), "OutboundMessageFailed", count=2)
    await drained(js, AGENT.name, "sender-replies")
    failed = of_type(await sender_events(js, str(envelope.event_id)), "OutboundMessageFailed")
    assert sorted(f.data["part"] for f in failed) == [1, 2]
    assert {(f.data["reason"], f.data["parts"]) for f in failed} == {("twilio_21211", 2)}
    assert len(await attempts(sim)) == 1


async def test_a_lookup_never_takes_an_earlier_replys_message_with_the_same_text(
    js, sim, start_sender
) -> None:
    # Found in the fault suite: a recovered part recorded an earlier turn's message with the
    # same (canned) text as its own, so the user never got it and its real send went
    # unrecorded.
    same = "Our opening hours are 9 to 5."
    async with start_sender(twilio_timeout_s=1.0):
        earlier = reply(await seed_conversation(js), same)
        await publish_reply(js, earlier)
        [first] = await wait_for(js, str(earlier.event_id), "OutboundMessageSent")
        await sim.queue_failure("timeout", hang_s=3, created=True)
        later = reply(await seed_conversation(js), same)
        await publish_reply(js, later)
        [second] = await wait_for(js, str(later.event_id), "OutboundMessageSent")
    first_call, second_call = await attempts(sim)
    assert second_call["scripted"] == "timeout"
    assert first.data["message_sid"] == first_call["message_sid"]
    assert second.data["message_sid"] == second_call["message_sid"]


async def test_429_is_retried_after_retry_after(js, sim, sender) -> None:
    await sim.queue_failure("429", retry_after_s=1)
    turn = await seed_conversation(js)
    envelope = reply(turn, "Patience.")
    await publish_reply(js, envelope)
    await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    first, second = await attempts(sim)
    assert (first["status_code"], first["error_code"]) == (429, 20429)
    assert second["status_code"] == 201
    assert (attempt_time(second) - attempt_time(first)).total_seconds() >= 1.0


async def test_rejected_credentials_fail_loudly(js, sim, sender) -> None:
    before = _metric("switchboard_sender_twilio_auth_failures_total", tenant_id="clinic")
    await sim.queue_failure("401")
    turn = await seed_conversation(js)
    envelope = reply(turn, "Who am I?")
    await publish_reply(js, envelope)
    [failed] = await wait_for(js, str(envelope.event_id), "OutboundMessageFailed")
    assert failed.data["reason"] == "twilio_auth"
    assert _metric("switchboard_sender_twilio_auth_failures_total", tenant_id="clinic") \
        == before + 1
    assert len(await attempts(sim)) == 1


async def test_a_stale_turn_is_not_sent(js, sim, sender) -> None:
    """Turn 2's reply accepted, not turn 1's (superseded): the view names only turn 2's."""
    turn = await seed_conversation(js, turn=1, requested_turn=2,
                                   accepted_replies=(str(uuid.uuid4()),))
    envelope = reply(turn, "Too late.")
    await publish_reply(js, envelope)
    [failed] = await wait_for(js, str(envelope.event_id), "OutboundMessageFailed")
    assert failed.data["reason"] == "stale"
    assert await attempts(sim) == []


async def test_outside_the_24h_window_nothing_is_sent(js, sim, sender) -> None:
    turn = await seed_conversation(js, last_user_message_at=hours_ago(25))
    envelope = reply(turn, "Hello again.")
    await publish_reply(js, envelope)
    [failed] = await wait_for(js, str(envelope.event_id), "OutboundMessageFailed")
    assert (failed.data["reason"], failed.data["error_code"]) == ("outside_24h_window", "63016")
    assert failed.data["retryable"] is False
    assert await attempts(sim) == []


async def test_out_of_order_callbacks_end_at_read_never_backwards(js, sim, sender) -> None:
    await sim.queue_failure("reordered_callbacks")
    turn = await seed_conversation(js)
    envelope = reply(turn, "Order, order.")
    await publish_reply(js, envelope)

    async def three_callbacks_stored() -> bool:
        info = await js.stream_info(GATEWAY.name)
        return info.state.messages >= 3

    await eventually(three_callbacks_stored)
    await drained(js, GATEWAY.name, "sender-statuses")
    applied = of_type(await sender_events(js, str(envelope.event_id)), "DeliveryStatusApplied")
    assert [a.data["status"] for a in applied] == ["delivered", "read"]


async def test_without_callbacks_the_next_part_goes_after_the_durable_timeout(
    js, sim, start_sender
) -> None:
    text = LONG[:2000]
    turn = await seed_conversation(js)
    envelope = reply(turn, text)
    async with start_sender(gateway_public_url=None, part_timeout_s=1.0):
        await publish_reply(js, envelope)
        await wait_for(js, str(envelope.event_id), "OutboundMessageSent", count=2)
    first, second = await attempts(sim)
    assert "StatusCallback" not in first["form"]
    assert (attempt_time(second) - attempt_time(first)).total_seconds() >= 1.0
    fired = of_type(await sender_events(js, str(envelope.event_id)), "PartTimeoutDue")
    assert [f.data["part"] for f in fired] == [1]


async def test_a_callback_for_an_unknown_message_is_acknowledged_and_ignored(
    js, sender
) -> None:
    from switchboard_contracts.events.gateway import DeliveryStatusReported

    stale = Envelope.wrap(
        DeliveryStatusReported(message_sid="SM" + "0" * 32, account_sid=ACCOUNT,
                               status="delivered"),
        correlation_id="x", tenant_id="clinic",
    ).model_copy(update={"occurred_at": hours_ago(1)})
    await Publisher(js, GATEWAY.name).publish("gateway.DeliveryStatusReported", stale)
    await drained(js, GATEWAY.name, "sender-statuses")
    dead = await js.stream_info("DEADLETTER")
    assert dead.state.messages == 0
