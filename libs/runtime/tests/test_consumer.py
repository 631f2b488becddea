from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from nats.aio.msg import Msg
from opentelemetry import trace
from switchboard_contracts import Envelope
from switchboard_contracts.deadletter import DeadLetter
from switchboard_contracts.topology import DEADLETTER, GATEWAY
from switchboard_devstack.waiting import drained, eventually
from switchboard_runtime.bus import Consumer, ConsumerSpec, Publisher
from switchboard_runtime.bus.consumer import _delivered
from switchboard_runtime.bus.pull import PullFetcher
from switchboard_runtime.deadletters.store import list_dead_letters
from switchboard_runtime.telemetry import configure_tracing

SUBJECT = "gateway.InboundMessageReceived"


def spec(**overrides) -> ConsumerSpec:
    values = dict(durable="test-consumer", stream=GATEWAY.name, filter_subjects=("gateway.>",),
                  ack_wait_s=2.0, max_deliver=3, retry_delays_s=(0.3,), batch=4)
    values.update(overrides)
    return ConsumerSpec(**values)


async def dead_letters(js) -> list[DeadLetter]:
    return [item.record for item in await list_dead_letters(js)]


async def test_handled_event_is_acked_once(streams, make_inbound) -> None:
    seen: list[Envelope] = []

    async def handle(event) -> None:
        seen.append(event.envelope)

    consumer = Consumer(streams, spec(), {"InboundMessageReceived": handle})
    await consumer.start()
    sent = make_inbound()
    await Publisher(streams, GATEWAY.name).publish(SUBJECT, sent)
    await eventually(lambda: len(seen) == 1)
    await drained(streams, [GATEWAY.name])  # an unacked message would be back before this
    await consumer.stop()
    assert [e.event_id for e in seen] == [sent.event_id]
    info = await streams.consumer_info(GATEWAY.name, "test-consumer")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_failing_handler_is_retried_with_backoff_then_dead_lettered_and_replayed(
    streams, make_inbound, nats_url
) -> None:
    attempts: list[float] = []
    healed = asyncio.Event()

    async def handle(event) -> None:
        attempts.append(asyncio.get_running_loop().time())
        if not healed.is_set():
            raise RuntimeError("downstream unavailable")

    retrying = spec(retry_delays_s=(0.5, 1.0))
    consumer = Consumer(streams, retrying, {"InboundMessageReceived": handle})
    await consumer.start()
    await Publisher(streams, GATEWAY.name).publish(SUBJECT, make_inbound())

    await eventually(lambda: len(attempts) == 3)
    # Redeliveries wait for the nak delay of their attempt: 0.5 s, then 1.0 s.
    assert attempts[1] - attempts[0] >= 0.45
    assert attempts[2] - attempts[1] >= 0.95
    letters = await eventually(lambda: dead_letters(streams), what="a dead letter")
    assert len(letters) == 1
    letter = letters[0]
    assert letter.consumer == "test-consumer"
    assert letter.deliveries == 3
    assert letter.reason == "handler failed 3 times"
    assert letter.error == "RuntimeError: downstream unavailable"
    assert letter.event_type == "InboundMessageReceived"
    await drained(streams, [GATEWAY.name])  # a delivery still due would come first
    assert len(attempts) == 3  # terminated: no fourth delivery

    # The operator fixes the cause and replays from the CLI: the handler gets it again.
    healed.set()
    cli = Path(sys.executable).parent / "switchboard-deadletters"
    result = subprocess.run([str(cli), "replay", "--all", "--nats-url", nats_url],
                            capture_output=True, text=True, env=os.environ, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "1 replayed" in result.stdout
    await eventually(lambda: len(attempts) == 4)
    assert await dead_letters(streams) == []
    await consumer.stop()


async def test_unknown_major_version_is_dead_lettered_with_reason(streams, make_inbound) -> None:
    handled: list[object] = []

    async def handle(event) -> None:
        handled.append(event)

    consumer = Consumer(streams, spec(), {"InboundMessageReceived": handle})
    await consumer.start()
    future = make_inbound().model_copy(update={"version": "2.0"})
    await Publisher(streams, GATEWAY.name).publish(SUBJECT, future)

    letters = await eventually(lambda: dead_letters(streams), what="a dead letter")
    await consumer.stop()
    assert handled == []
    assert len(letters) == 1
    assert letters[0].reason.startswith("unsupported version")
    assert "major version 2" in letters[0].reason
    assert letters[0].deliveries == 1


async def test_unknown_fields_and_minor_versions_are_accepted(streams, make_inbound) -> None:
    handled: list[object] = []

    async def handle(event) -> None:
        handled.append(event.data)

    consumer = Consumer(streams, spec(), {"InboundMessageReceived": handle})
    await consumer.start()
    raw = json.loads(make_inbound().to_bytes())
    raw["version"] = "1.7"
    raw["added_later"] = True
    raw["data"]["new_field"] = "ignored"
    await streams.publish(SUBJECT, json.dumps(raw).encode(), stream=GATEWAY.name)
    await eventually(lambda: len(handled) == 1)
    await consumer.stop()


async def test_poison_message_is_dead_lettered_not_retried(streams) -> None:
    consumer = Consumer(streams, spec(), {})
    await consumer.start()
    await streams.publish(SUBJECT, b"\x00not json", stream=GATEWAY.name)
    letters = await eventually(lambda: dead_letters(streams), what="a dead letter")
    await consumer.stop()
    assert letters[0].reason == "malformed envelope"
    assert letters[0].payload == b"\x00not json"


async def test_handler_that_never_answers_is_dead_lettered_by_the_advisory(
    streams, make_inbound
) -> None:
    from switchboard_runtime.bus.collector import AdvisoryCollector
    from switchboard_runtime.bus.deadletters import NO_ANSWER

    async def hang(event) -> None:
        await asyncio.sleep(3600)

    hung = spec(ack_wait_s=0.5, max_deliver=2, batch=1, concurrency=4)
    consumer = Consumer(streams, hung, {"InboundMessageReceived": hang})
    collector = AdvisoryCollector(streams, "test", [hung])
    await consumer.start()
    await collector.start()
    await Publisher(streams, GATEWAY.name).publish(SUBJECT, make_inbound())
    letters = await eventually(lambda: dead_letters(streams), what="a dead letter")
    await collector.stop()
    for task in list(consumer._in_flight):
        task.cancel()
    await consumer.stop()
    assert len(letters) == 1
    assert letters[0].reason == NO_ANSWER
    assert letters[0].event_type == "InboundMessageReceived"
    info = await streams.stream_info(DEADLETTER.name)
    assert info.state.messages == 1


async def test_a_handler_knows_which_delivery_it_runs_and_whether_it_is_the_last(
    streams, make_inbound
) -> None:
    from switchboard_runtime.bus import current_delivery

    seen = []

    async def handle(event) -> None:
        delivery = current_delivery()
        seen.append((delivery.number, delivery.last))
        if not delivery.last:
            raise RuntimeError("not yet")

    consumer = Consumer(streams, spec(retry_delays_s=(0.1,), max_deliver=3, concurrency=2),
                        {"InboundMessageReceived": handle})
    await consumer.start()
    await Publisher(streams, GATEWAY.name).publish(SUBJECT, make_inbound())
    await eventually(lambda: len(seen) == 3)
    await consumer.stop()
    assert seen == [(1, False), (2, False), (3, True)]
    assert current_delivery() is None
    assert await dead_letters(streams) == []



async def test_the_handler_runs_in_the_events_context_and_the_outer_one_comes_back(
    streams, make_inbound
) -> None:
    configure_tracing("test", None)  # a real tracer: its spans are made current
    inside: list[dict] = []

    async def handle(event) -> None:
        inside.append(structlog.contextvars.get_contextvars())

    consumer = Consumer(streams, spec(), {"InboundMessageReceived": handle})
    await streams.add_consumer(GATEWAY.name, consumer.spec.config())
    sent = make_inbound()
    await Publisher(streams, GATEWAY.name).publish(SUBJECT, sent)
    fetcher = PullFetcher(streams._nc, GATEWAY.name, consumer.spec.durable)
    await fetcher.start()
    msgs = await fetcher.fetch(1, wait_s=10)
    await fetcher.stop()
    structlog.contextvars.bind_contextvars(consumer="outer", request="kept")
    try:
        await consumer._process(msgs[0])  # in this task's context, as the loop does
        after = structlog.contextvars.get_contextvars()
        span_after = trace.get_current_span()
    finally:
        structlog.contextvars.clear_contextvars()
    assert inside == [{"consumer": "test-consumer", "request": "kept",
                       "correlation_id": sent.correlation_id, "tenant_id": sent.tenant_id,
                       "event_id": str(sent.event_id), "event_type": sent.type}]
    assert after == {"consumer": "outer", "request": "kept"}
    assert span_after is trace.INVALID_SPAN  # the consumer span is current no longer


@pytest.mark.parametrize("reply", [
    "$JS.ACK.GATEWAY.test-consumer.3.1042.17.1700000000123456789.5",
    "$JS.ACK._.ACCHASH.GATEWAY.test-consumer.3.1042.17.1700000000123456789.5.rand",
    "$JS.ACK.hub.ACCHASH.GATEWAY.test-consumer.3.1042.17.1700000000123456789.5",
])
def test_the_ack_subject_is_read_as_nats_py_reads_it(reply) -> None:
    msg = Msg(None, subject=SUBJECT, reply=reply)  # type: ignore[arg-type]
    meta = msg.metadata
    assert _delivered(msg) == (meta.consumer, meta.num_delivered, meta.sequence.stream)
    assert _delivered(msg) == ("test-consumer", 3, 1042)
