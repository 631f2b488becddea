"""Issue 10: a conversation has one reply going out at a time, with one sender or two, and
after a sender died holding a conversation; a reply goes out only once the conversation
accepted it, and then whole."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sender.leases import LEASES_BUCKET, Holder, Leases
from sender.main import REPLIES
from sender.splitting import split_message
from sender_helpers import (
    Turn,
    attempts,
    eventually,
    next_turn,
    of_type,
    publish_reply,
    reply,
    seed_conversation,
    sender_events,
    set_view,
    wait_for,
)
from twilio_sim.config import StatusDelays


def two_parts(tag: str = "") -> str:
    return " ".join(f"Sentence {tag}{i} says something useful about the clinic."
                    for i in range(40))


TWO_PARTS = two_parts()
# Only the `sent` callback (1 s after a create) releases a next part or the next reply.
SETTINGS = {"part_timeout_s": 30.0}


@pytest.fixture
def status_delays() -> StatusDelays:
    return StatusDelays(sent=1.0, delivered=0.05, read=0.05)


def bodies_of(calls: list[dict[str, object]], *replies: str) -> list[str]:
    """The bodies sent for the given replies' texts, in the order they were sent."""
    texts = {part for text in replies for part in split_message(text)}
    return [str(c["form"]["Body"]) for c in calls  # type: ignore[index]
            if c["form"]["Body"] in texts]  # type: ignore[index]


async def holding(js, turn: Turn, envelope) -> None:
    """Until ``envelope``'s reply holds its conversation's lease: its handler runs and reads
    the view, or is about to (a reply claims the lease while it waits for the view)."""
    leases = Leases(await js.key_value(LEASES_BUCKET))

    async def check() -> bool:
        holder = (await leases.read(turn.conversation_id)).holder
        return holder is not None and holder.reply_id == str(envelope.event_id)

    await eventually(check)


async def test_an_accepted_reply_is_sent_whole_when_a_new_turn_begins_between_its_parts(
    js, sim, start_sender
) -> None:
    assert len(split_message(TWO_PARTS)) == 2
    turn1 = await seed_conversation(js)
    turn2 = next_turn(turn1)
    first, second = reply(turn1, TWO_PARTS), reply(turn2, "Turn two's answer.")
    async with start_sender(**SETTINGS):
        await publish_reply(js, first)
        await wait_for(js, str(first.event_id), "OutboundMessageSent")
        # While part 2 waits for part 1's callback, the user writes again: turn 2 begins,
        # then the conversation accepts turn 2's reply too.
        await set_view(js, turn1.conversation_id, turn=2, answered_turn=1)
        await publish_reply(js, second)
        await set_view(js, turn1.conversation_id, turn=2, answered_turn=2)
        await wait_for(js, str(second.event_id), "OutboundMessageSent", timeout_s=20)
        assert not of_type(await sender_events(js, str(first.event_id)),
                           "OutboundMessageFailed")
    assert bodies_of(await attempts(sim), TWO_PARTS, "Turn two's answer.") == [
        *split_message(TWO_PARTS), "Turn two's answer."]


@pytest.mark.parametrize("view_settle_s", [1.0, 0.0])  # re-read in the handler; on a timer
async def test_a_reply_the_conversation_supersedes_before_deciding_it_sends_nothing(
    js, sim, start_sender, view_settle_s
) -> None:
    # The agent's reply for turn 1 reaches the sender before the conversation has decided on
    # it (the two consume it in parallel): the view says turn 1, undecided.
    turn1 = await seed_conversation(js, answered_turn=0)
    first = reply(turn1, "Hello!")
    async with start_sender(view_settle_s=view_settle_s):
        await publish_reply(js, first)
        await holding(js, turn1, first)
        # Messages came meanwhile: the conversation supersedes turn 1 and asks for turn 2.
        await set_view(js, turn1.conversation_id, turn=2, answered_turn=0)
        [failed] = await wait_for(js, str(first.event_id), "OutboundMessageFailed")
    assert (failed.data["part"], failed.data["reason"]) == (1, "stale")
    assert await attempts(sim) == []


async def test_a_reply_for_a_turn_the_conversation_never_decides_is_given_up(
    js, sim, start_sender
) -> None:
    turn1 = await seed_conversation(js, answered_turn=0)  # the view never decides turn 1
    first = reply(turn1, "Hello!")
    async with start_sender(view_settle_s=0.0, acceptance_wait_s=1.0):
        await publish_reply(js, first)
        [failed] = await wait_for(js, str(first.event_id), "OutboundMessageFailed")
    assert (failed.data["part"], failed.data["reason"]) == (1, "not_accepted")
    assert await attempts(sim) == []


async def test_two_senders_send_one_reply_per_conversation_at_a_time(
    js, sim, start_sender
) -> None:
    conversations = [await seed_conversation(js) for _ in range(4)]
    firsts = [reply(t, two_parts(t.conversation_id)) for t in conversations]
    seconds = [reply(next_turn(t), f"{t.conversation_id}: turn two.") for t in conversations]
    async with AsyncExitStack() as senders:
        for _ in range(2):
            await senders.enter_async_context(start_sender(**SETTINGS))
        for envelope in firsts:
            await publish_reply(js, envelope)
        for envelope in firsts:
            await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
        for t in conversations:  # the user wrote again and turn 2's reply was accepted
            await set_view(js, t.conversation_id, turn=2)
        for envelope in seconds:
            await publish_reply(js, envelope)
        for envelope in seconds:
            await wait_for(js, str(envelope.event_id), "OutboundMessageSent", timeout_s=30)
    calls = await attempts(sim)
    for first, second in zip(firsts, seconds, strict=True):
        assert bodies_of(calls, first.data["text"], second.data["text"]) == [
            *split_message(first.data["text"]), second.data["text"]]


async def test_a_conversation_held_by_a_dead_sender_is_taken_over_when_its_lease_expires(
    js, sim, start_sender
) -> None:
    turn2 = await seed_conversation(js, turn=2)
    envelope = reply(turn2, "After the crash.")
    before = REGISTRY.get_sample_value("switchboard_sender_lease_takeovers_total",
                                       {"how": "expired"}) or 0.0
    async with start_sender(reply_lease_s=2.0):
        # What a sender that died while sending turn 1 leaves: the conversation held by a
        # reply that will never be done.
        leases = Leases(await js.key_value(LEASES_BUCKET))
        held_at = datetime.now(UTC)
        await leases.write(turn2.conversation_id,
                           Holder(str(uuid.uuid4()), 1, held_at), 0)
        await publish_reply(js, envelope)
        await wait_for(js, str(envelope.event_id), "OutboundMessageSent", timeout_s=20)
    [call] = await attempts(sim)
    assert (datetime.fromisoformat(call["at"]) - held_at).total_seconds() >= 2.0
    assert REGISTRY.get_sample_value("switchboard_sender_lease_takeovers_total",
                                     {"how": "expired"}) == before + 1
    lease = await leases.read(turn2.conversation_id)
    assert lease.holder is not None and lease.holder.reply_id == str(envelope.event_id)


async def test_a_reply_waits_for_the_conversations_view(js, sim, start_sender) -> None:
    turn = Turn("c" + uuid.uuid4().hex[:16], "SMnoview", 1)  # no view written yet
    envelope = reply(turn, "Once the view is there.")
    redeliveries = {"consumer": REPLIES.durable}
    before = REGISTRY.get_sample_value("switchboard_events_redelivered_total", redeliveries)
    async with start_sender(view_settle_s=10.0):
        await publish_reply(js, envelope)
        await holding(js, turn, envelope)
        await set_view(js, turn.conversation_id, turn=1)
        await wait_for(js, str(envelope.event_id), "OutboundMessageSent", timeout_s=20)
    assert len(await attempts(sim)) == 1
    # Found by the handler's own re-reads, not by a redelivery seconds later.
    assert REGISTRY.get_sample_value("switchboard_events_redelivered_total",
                                     redeliveries) == before


async def test_an_accepted_reply_delayed_past_the_next_accepted_one_goes_out_first(
    js, sim, start_sender
) -> None:
    """Reliability finding 1: turn 1's reply was accepted, then turn 2's (which comes
    ``after`` it); turn 1's ReplyGenerated reaches the sender late (its sender was killed).
    Both go out, turn 1's parts first, the two never interleaved; none is dropped as stale."""
    # Both turns' replies accepted: the view says turn 2's was, the last.
    turn1 = await seed_conversation(js, requested_turn=2)
    turn2 = next_turn(turn1)
    first = reply(turn1, TWO_PARTS)
    second = reply(turn2, "Turn two's answer.", after=str(first.event_id))
    waits = REGISTRY.get_sample_value("switchboard_sender_after_waits_total") or 0.0
    # As the conversation writes it: both accepted, in turn order.
    await set_view(js, turn1.conversation_id, turn=2,
                   accepted_replies=(str(first.event_id), str(second.event_id)))
    async with start_sender(**SETTINGS, reply_wait_poll_s=0.2):
        await publish_reply(js, second)
        await eventually(lambda: (REGISTRY.get_sample_value(
            "switchboard_sender_after_waits_total") or 0.0) > waits)  # turn 2 waits for 1
        await publish_reply(js, first)
        await wait_for(js, str(second.event_id), "OutboundMessageSent", timeout_s=20)
        await wait_for(js, str(first.event_id), "OutboundMessageSent", count=2)
        for envelope in (first, second):
            assert not of_type(await sender_events(js, str(envelope.event_id)),
                               "OutboundMessageFailed")
    assert bodies_of(await attempts(sim), TWO_PARTS, "Turn two's answer.") == [
        *split_message(TWO_PARTS), "Turn two's answer."]


async def test_the_conversations_acceptance_is_pushed_to_the_waiting_reply(
    js, sim, start_sender
) -> None:
    """Issue 13: the handler is woken by the view's write (the replica watches the bucket),
    not only by re-reading the view at intervals."""
    turn = await seed_conversation(js, answered_turn=0)  # undecided yet
    envelope = reply(turn, "Once accepted.")

    def looks(how: str) -> float:
        return REGISTRY.get_sample_value("switchboard_sender_view_looks_total",
                                         {"how": how}) or 0.0

    pushed, reread = looks("pushed"), looks("reread")
    async with start_sender(view_settle_s=30.0):
        await publish_reply(js, envelope)
        await eventually(lambda: looks("reread") > reread)  # the handler waits on the view
        # A write that leaves the turn undecided wakes it (it goes on waiting), then the
        # conversation accepts the reply.
        await set_view(js, turn.conversation_id, turn=1, answered_turn=0)
        await eventually(lambda: looks("pushed") > pushed)
        await set_view(js, turn.conversation_id, turn=1)
        await wait_for(js, str(envelope.event_id), "OutboundMessageSent")
    assert len(await attempts(sim)) == 1
