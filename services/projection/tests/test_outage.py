"""Postgres goes away under load and comes back: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from nats.js import JetStreamContext
from projection import metrics
from projection.checkpoint import BatchWriter
from projection.consumer import PROJECTED_NAMES
from projection.main import build
from projection.schema import apply_migrations
from projection_helpers import START, publish_steadily, settings_for, wait_caught_up
from projection_scripts import ConversationScript, Published
from switchboard_devstack.embedded import PostgresServer
from switchboard_devstack.waiting import eventually

CONVERSATIONS = 30
BATCH_SIZE = 20
# Events published while Postgres is down: several batches pile up for after the outage.
BACKLOG = 6 * BATCH_SIZE


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster of this test's own, so stopping it disturbs no other test."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.cleanup()


async def assert_whole_pool_usable(pool: asyncpg.Pool, timeout_s: float = 10.0) -> None:
    """Every connection of the pool can be taken at once: none was kept by a query the
    outage cut off (asyncpg 0.30 kept one now and then: the pool shrank at each outage)."""
    async with contextlib.AsyncExitStack() as taken:
        for n in range(pool.get_max_size()):
            try:
                await taken.enter_async_context(pool.acquire(timeout=timeout_s))
            except TimeoutError:
                raise AssertionError(f"only {n} of {pool.get_max_size()} connections "
                                     "came back to the pool") from None


def retries() -> float:
    return sum(sample.value for family in metrics.RETRIES.collect()
               for sample in family.samples if sample.name.endswith("_total"))


async def test_postgres_outage_under_load_loses_nothing_and_applies_each_event_once(
        js: JetStreamContext, streams: None, nats_url: str, own_postgres: PostgresServer,
) -> None:
    await asyncio.to_thread(apply_migrations, own_postgres.url)
    events: list[Published] = []
    for n in range(CONVERSATIONS):
        talk = ConversationScript("clinic", f"whatsapp:+4477009{n:05d}", start=START)
        talk.text_message(f"Question number {n}", reply="An answer in two parts.", parts=2)
        events += talk.events

    settings = settings_for(nats_url, own_postgres.url, batch_size=BATCH_SIZE)
    async with build(settings).running() as service:
        db = service.db
        assert db is not None
        sent: list[Published] = []
        publishing = asyncio.create_task(publish_steadily(js, events, sent))
        await eventually(lambda: db.fetchval("SELECT sum(processed) FROM projection_checkpoints"),
                         what="the first events projected")
        retried, sent_before = retries(), len(sent)

        await asyncio.to_thread(own_postgres.stop)
        # Down until a write has failed and a backlog has built up meanwhile.
        # (A write failed, or the writer gave its lease up: its connection ended.)
        await eventually(lambda: (retries() > retried or not metrics.WRITER._value.get())
                         and len(sent) >= sent_before + BACKLOG,
                         timeout_s=10, what="the outage noticed under load")
        await asyncio.to_thread(own_postgres.start)

        await publishing
        await wait_caught_up(js, timeout_s=60)
        checkpoints = {r["stream"]: r for r in await db.fetch(
            "SELECT * FROM projection_checkpoints")}
        timeline = await db.fetchval("SELECT count(*) FROM timeline_events")
        replies = await db.fetchval(
            "SELECT count(*) FROM messages WHERE direction = 'outbound'")
        await assert_whole_pool_usable(db)

    for stream in PROJECTED_NAMES:
        stored = (await js.stream_info(stream)).state
        if stored.messages:
            assert checkpoints[stream]["last_seq"] == stored.last_seq, stream
            assert checkpoints[stream]["processed"] == stored.messages, stream  # each once
    assert sum(c["processed"] for c in checkpoints.values()) == len(events)
    assert timeline == len([e for e in events if "Nats-Schedule" not in e.headers])
    assert replies == CONVERSATIONS


class CancellationLostPool:
    """A pool whose connection attempt turns the cancellation that interrupts it into a
    connection error, as a cancellation lost on its way does (Python 3.11's ``wait_for``
    as its inner wait ends, a library's cleanup while Postgres is down)."""

    def __init__(self) -> None:
        self.connecting = asyncio.Event()

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[None]:
        self.connecting.set()
        try:
            await asyncio.Event().wait()  # Postgres away: no answer
        except asyncio.CancelledError:
            raise ConnectionRefusedError("the cancellation came out as this") from None
        yield


async def test_the_writer_stops_even_when_its_cancellation_is_lost() -> None:
    """The lease gives up at an outage (``Projector.abandon``): the writer must end, or the
    lease waits on it for ever, never writes again, and the service never stops."""
    pool = CancellationLostPool()
    writer = BatchWriter(pool, dead_letter=lambda fact: asyncio.sleep(0),  # type: ignore[arg-type]
                         first_after=lambda stream, seq: asyncio.sleep(0), timeout_s=30)
    batch = asyncio.create_task(writer.write("GATEWAY", 0, []))
    await pool.connecting.wait()

    stopping = asyncio.create_task(writer.stop())
    done, _ = await asyncio.wait([stopping], timeout=5)
    if not done:  # without the flag: back to waiting on its queue
        stopping.cancel()
    assert done, "the writer did not stop"
    with pytest.raises(ConnectionRefusedError):  # the loop retries it with the next writer
        await batch
