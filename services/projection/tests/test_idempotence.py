"""Each event applied once, whatever the order, the duplicates or the redeliveries."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
import nats
import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from projection import metrics
from projection.checkpoint import BatchWriter, OutOfOrder, read_epoch
from projection.consumer import consumer_config, durable_for
from projection.decoding import Raw, decode
from projection.main import build
from projection.schema import apply_migrations
from projection_helpers import START, Snapshot, settings_for, snapshot, wait_caught_up
from projection_scripts import ConversationScript, Published
from switchboard_contracts.topology import ALL_STREAMS, GATEWAY
from switchboard_devstack.embedded import NatsServer, PostgresServer
from switchboard_runtime.bus import ensure_streams


def conversations() -> list[Published]:
    """Two users: a text and a voice-note turn, a close, a new session; one user's text."""
    ada = ConversationScript("clinic", "whatsapp:+447700900001", start=START)
    ada.text_message("Can I book a cleaning?", reply="Sure, which day suits you best?", parts=2)
    ada.voice_note("Thursday afternoon please", reply="Booked: Thursday at three.")
    ada.close_idle()
    ada.text_message("Sorry, can we make it four?", reply="Moved to four.",
                     statuses=("sent", "undelivered"))
    bob = ConversationScript("clinic", "whatsapp:+447700900002", start=START)
    bob.text_message("Hi", reply="Hello! How can I help?", statuses=("delivered", "sent"))
    return ada.events + bob.events


def shuffled_with_duplicates(events: list[Published]) -> list[tuple[Published, str]]:
    """Each stream's events backwards, the streams interleaved, every third event twice
    (under another Nats-Msg-Id, as a republish after the duplicate window would)."""
    by_stream: dict[str, list[Published]] = {}
    for event in events:
        by_stream.setdefault(event.stream, []).append(event)
    backwards = [list(reversed(group)) for group in by_stream.values()]
    mixed = [e for row in itertools.zip_longest(*backwards) for e in row if e is not None]
    out: list[tuple[Published, str]] = []
    for n, event in enumerate(mixed):
        out.append((event, str(event.envelope.event_id)))
        if n % 3 == 0 and "Nats-Schedule" not in event.headers:  # a timer is one per subject
            out.append((event, f"again:{event.envelope.event_id}"))
    return out


async def project(nats_url: str, database_url: str,
                  events: list[tuple[Published, str]]) -> Snapshot:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, ALL_STREAMS)
    try:
        async with build(settings_for(nats_url, database_url)).running() as service:
            for event, msg_id in events:
                await event.publish(js, msg_id)
            await wait_caught_up(js)
            assert service.db is not None
            return await snapshot(service.db)
    finally:
        await nc.close()


@pytest.fixture
def another_database(postgres_server: PostgresServer | None
                     ) -> Callable[[], AbstractAsyncContextManager[str]]:
    """A second empty database in the session's cluster (for a second, independent run)."""

    @asynccontextmanager
    async def make() -> AsyncIterator[str]:
        if postgres_server is None:
            pytest.skip("needs the embedded Postgres")
        admin = await asyncpg.connect(postgres_server.url)
        await admin.execute('CREATE DATABASE "second_run"')
        base, _, _ = postgres_server.url.rpartition("/")
        try:
            yield f"{base}/second_run"
        finally:
            await admin.execute('DROP DATABASE IF EXISTS "second_run" WITH (FORCE)')
            await admin.close()

    return make


async def test_duplicate_and_out_of_order_events_leave_the_same_state(
        nats_url: str, migrated_url: str,
        another_database: Callable[[], AbstractAsyncContextManager[str]]) -> None:
    events = conversations()
    in_order = await project(nats_url, migrated_url,
                             [(e, str(e.envelope.event_id)) for e in events])

    other_nats = NatsServer(sync_always=False).start()
    try:
        async with another_database() as second_url:
            await asyncio.to_thread(apply_migrations, second_url)
            shuffled = await project(other_nats.url, second_url,
                                     shuffled_with_duplicates(events))
    finally:
        other_nats.cleanup()

    assert shuffled == in_order
    [ada, bob] = sorted(in_order["conversations"], key=lambda c: c["user_address"])
    assert (ada["status"], ada["session"], ada["closed_session"], ada["turns"]) == (
        "open", 2, 1, 3)
    assert (ada["user_messages"], ada["assistant_messages"]) == (3, 3)
    assert (bob["status"], bob["user_messages"]) == ("open", 1)
    assert len(in_order["timeline_events"]) == len(
        [e for e in events if "Nats-Schedule" not in e.headers])


async def test_a_redelivered_batch_changes_nothing(
        js: JetStreamContext, streams: None, migrated_url: str, nats_url: str) -> None:
    """A projection commits a batch and dies before acking it. The same events delivered
    again are skipped (checkpoint), and the next writer starts past the checkpoint anyway (it
    re-creates its consumer there): nothing is applied twice."""
    talk = ConversationScript("clinic", "whatsapp:+447700900001", start=START)
    talk.text_message("Hello", reply="Hi there!")
    for event in talk.events:
        await event.publish(js)
    gateway_events = sum(e.stream == GATEWAY.name for e in talk.events)
    settings = settings_for(nats_url, migrated_url, ack_wait_s=1.0)

    pool = await asyncpg.create_pool(migrated_url, min_size=1, max_size=2)
    try:
        await js.add_consumer(GATEWAY.name, consumer_config(GATEWAY.name, settings))
        sub = await js.pull_subscribe_bind(durable=durable_for(GATEWAY.name),
                                           stream=GATEWAY.name)
        msgs = await sub.fetch(100, timeout=2)
        assert len(msgs) == gateway_events
        writer = BatchWriter(pool, dead_letter=lambda fact: asyncio.sleep(0),
                             first_after=lambda stream, seq: asyncio.sleep(0, seq + 1),
                             timeout_s=5)
        facts = [decode(Raw.of(m)) for m in msgs]
        first = await writer.write(GATEWAY.name, await read_epoch(pool), facts)
        again = await writer.write(GATEWAY.name, await read_epoch(pool), facts)
        await writer.stop()
        await sub.unsubscribe()  # ... and the process dies here, before the ack
    finally:
        await pool.close()

    assert (first.applied, again.applied, again.skipped) == (gateway_events, 0, gateway_events)
    applied_before = _counted(GATEWAY.name, "applied")
    async with build(settings).running() as service:
        await wait_caught_up(js)
        assert service.db is not None
        processed = await service.db.fetchval(
            "SELECT processed FROM projection_checkpoints WHERE stream = $1", GATEWAY.name)
    assert processed == gateway_events
    assert _counted(GATEWAY.name, "applied") == applied_before


def _counted(stream: str, outcome: str) -> float:
    value = metrics.EVENTS.labels(stream, outcome)._value.get()
    return float(value)



async def test_a_batch_that_skips_an_existing_message_is_refused(
        js: JetStreamContext, streams: None, pool: asyncpg.Pool) -> None:
    """A message lost on its way to the projection (a dropped connection) must not be passed
    by the checkpoint; a gap left by a deleted message (a timer that fired) is fine."""
    talk = ConversationScript("clinic", "whatsapp:+447700900001", start=START)
    talk.text_message("Hello", reply="Hi there!")
    for event in [e for e in talk.events if e.stream == GATEWAY.name][:3]:
        await event.publish(js)
    fetched = await js.subscribe("gateway.>", stream=GATEWAY.name, ordered_consumer=True)
    facts = [decode(Raw.of(await fetched.next_msg(timeout=2))) for _ in range(3)]
    await fetched.unsubscribe()

    async def first_after(stream: str, seq: int) -> int | None:
        try:
            return (await js.get_msg(stream, seq=seq + 1, subject=">", next=True)).seq
        except NotFoundError:
            return None

    writer = BatchWriter(pool, dead_letter=lambda fact: asyncio.sleep(0),
                         first_after=first_after, timeout_s=5)
    epoch = await read_epoch(pool)
    try:
        await writer.write(GATEWAY.name, epoch, facts[:1])
        with pytest.raises(OutOfOrder):
            await writer.write(GATEWAY.name, epoch, facts[2:])  # message 2 exists, unwritten
        await js.delete_msg(GATEWAY.name, 2)
        outcome = await writer.write(GATEWAY.name, epoch, facts[2:])
    finally:
        await writer.stop()
    assert (outcome.applied, outcome.last_seq) == (1, 3)
