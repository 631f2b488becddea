"""A replayed dead letter goes back to the consumer that failed it, and only to it: the
original stream (an aggregate's history, a fact other consumers read) stays as it was."""

from __future__ import annotations

import asyncio

import pytest
from nats.js import JetStreamContext
from switchboard_contracts import Envelope
from switchboard_contracts.deadletter import DeadLetter
from switchboard_contracts.topology import CONVERSATION, GATEWAY, event_subject
from switchboard_devstack.waiting import eventually
from switchboard_runtime.bus import Consumer, ConsumerSpec, Publisher, dead_letter, ensure_streams
from switchboard_runtime.deadletters.store import NotReplayable, list_dead_letters, replay

TYPE = "InboundMessageReceived"


def conversation_subject(conversation_id: str, event_type: str) -> str:
    return event_subject("conversation", event_type, conversation_id)


class Recorder:
    """A handler that fails on the events in ``broken`` and records what it handled."""

    def __init__(self, *broken: Envelope) -> None:
        self.broken = {str(env.event_id) for env in broken}
        self.handled: list[str] = []

    async def __call__(self, event) -> None:
        if str(event.envelope.event_id) in self.broken:
            raise RuntimeError("downstream unavailable")
        self.handled.append(str(event.envelope.event_id))


def spec(durable: str, stream: str, subjects: tuple[str, ...]) -> ConsumerSpec:
    return ConsumerSpec(durable=durable, stream=stream, filter_subjects=subjects, ack_wait_s=5.0,
                        max_deliver=2, retry_delays_s=(0.1,), batch=4)


async def only_dead_letter(js: JetStreamContext) -> tuple[int, DeadLetter]:
    letters: list = []

    async def filed() -> bool:
        letters[:] = await list_dead_letters(js)
        return len(letters) == 1

    await eventually(filed)
    return letters[0].seq, letters[0].record


async def stream_state(js: JetStreamContext, stream: str) -> tuple[int, int]:
    state = (await js.stream_info(stream)).state
    return state.messages, state.last_seq


@pytest.fixture
async def conversation(streams: JetStreamContext) -> JetStreamContext:
    await ensure_streams(streams, (CONVERSATION,))
    return streams


async def test_a_replayed_conversation_event_reaches_the_failed_consumer_and_not_the_history(
    conversation: JetStreamContext, make_inbound
) -> None:
    js = conversation
    subjects = (conversation_subject("*", TYPE),)
    first, second = make_inbound(), make_inbound()
    failing, other = Recorder(first), Recorder()
    consumers = [Consumer(js, spec("test-agent", CONVERSATION.name, subjects), {TYPE: failing}),
                 Consumer(js, spec("test-projector", CONVERSATION.name, subjects), {TYPE: other})]
    for consumer in consumers:
        await consumer.start()
    try:
        history = Publisher(js, CONVERSATION.name)
        await history.publish(conversation_subject("c1", TYPE), first,
                              expected_last_subject_seq=0)
        await history.publish(conversation_subject("c1", TYPE), second)
        seq, letter = await only_dead_letter(js)
        assert (letter.stream, letter.consumer) == (CONVERSATION.name, "test-agent")
        before = await stream_state(js, CONVERSATION.name)

        # Replayed while the cause is still there: dead-lettered again, under its origin.
        await replay(js, seq)
        seq, again = await only_dead_letter(js)
        assert (again.stream, again.subject, again.stream_seq, again.consumer) == (
            letter.stream, letter.subject, letter.stream_seq, letter.consumer)
        assert "Switchboard-Replay-Of" not in again.headers

        failing.broken.clear()
        await replay(js, seq)

        async def handled_by_the_failed_consumer() -> bool:
            return len(failing.handled) == 2

        await eventually(handled_by_the_failed_consumer)
        assert failing.handled == [str(second.event_id), str(first.event_id)]
        assert await list_dead_letters(js) == []
        # The aggregate's history is what it was: no event appended, no version moved.
        assert await stream_state(js, CONVERSATION.name) == before
        # The consumer that had handled it never sees it again.
        info = await js.consumer_info(CONVERSATION.name, "test-projector")
        assert info.delivered.stream_seq == before[1] and info.num_pending == 0
        assert sorted(other.handled) == sorted([str(first.event_id), str(second.event_id)])
    finally:
        for consumer in consumers:
            await consumer.stop()


async def test_a_replayed_fact_is_not_duplicated_in_its_stream(
    streams: JetStreamContext, make_inbound
) -> None:
    fact: Envelope = make_inbound()
    failing = Recorder(fact)
    consumer = Consumer(streams, spec("test-sender", GATEWAY.name, (f"gateway.{TYPE}",)),
                        {TYPE: failing})
    await consumer.start()
    try:
        await Publisher(streams, GATEWAY.name).publish(f"gateway.{TYPE}", fact)
        seq, _ = await only_dead_letter(streams)
        before = await stream_state(streams, GATEWAY.name)
        failing.broken.clear()
        ack = await replay(streams, seq)
        assert ack.stream == "REPLAY"

        async def handled() -> bool:
            return failing.handled == [str(fact.event_id)]

        await eventually(handled)
        assert await stream_state(streams, GATEWAY.name) == before == (1, 1)
    finally:
        await consumer.stop()


async def test_a_dead_letter_of_a_consumer_without_replays_is_left_in_place(
    streams: JetStreamContext, make_inbound
) -> None:
    await dead_letter(streams, stream=GATEWAY.name, consumer="projection-gateway",
                      subject=f"gateway.{TYPE}", stream_seq=7, deliveries=1,
                      payload=make_inbound().to_bytes(), headers=None, reason="refused")
    seq, _ = await only_dead_letter(streams)
    with pytest.raises(NotReplayable, match="projection-gateway takes no replays"):
        await replay(streams, seq)
    assert [item.seq for item in await list_dead_letters(streams)] == [seq]


async def test_a_replay_that_never_answers_is_filed_under_its_origin_by_the_collector(
    streams: JetStreamContext, make_inbound
) -> None:
    from switchboard_runtime.bus.collector import AdvisoryCollector
    from switchboard_runtime.bus.deadletters import NO_ANSWER

    async def hang(event) -> None:
        await asyncio.sleep(3600)

    hung = ConsumerSpec(durable="test-hung", stream=GATEWAY.name,
                        filter_subjects=(f"gateway.{TYPE}",), ack_wait_s=0.5, max_deliver=2,
                        batch=1, concurrency=4)
    consumer = Consumer(streams, hung, {TYPE: hang})
    collector = AdvisoryCollector(streams, "test", consumer.specs)
    await consumer.start()
    await collector.start()
    try:
        await Publisher(streams, GATEWAY.name).publish(f"gateway.{TYPE}", make_inbound())
        seq, first = await only_dead_letter(streams)
        await replay(streams, seq)
        seq_again, again = await only_dead_letter(streams)
        assert seq_again != seq and again.reason == first.reason == NO_ANSWER
        assert (again.stream, again.subject, again.stream_seq, again.consumer) == (
            GATEWAY.name, f"gateway.{TYPE}", 1, "test-hung")
    finally:
        await collector.stop()
        for task in list(consumer._in_flight):
            task.cancel()
        await consumer.stop()
