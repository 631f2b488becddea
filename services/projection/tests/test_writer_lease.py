"""Two projection replicas on one database and one NATS: exactly one writes, and the other takes
over when the writer is killed, each event applied once (ADR 0021, ``lease.py``).

The first replica runs in a process of its own, so it can be killed (SIGKILL: no drain, its
connections cut by the kernel); the second runs in this one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import asyncpg
import httpx
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from projection import metrics
from projection.checkpoint import BatchWriter, LeaseLost, read_epoch
from projection.consumer import PROJECTED_NAMES, consumer_config
from projection.decoding import Raw, decode
from projection.fence import Fence, take
from projection.main import build
from projection.rebuild import rebuild
from projection_helpers import START, publish_steadily, settings_for, snapshot, wait_caught_up
from projection_scripts import ACCOUNT, ConversationScript, Published, orphaned_message
from prometheus_client.parser import text_string_to_metric_families
from switchboard_contracts.topology import ALL_STREAMS, GATEWAY
from switchboard_devstack.embedded import NatsAuth, NatsServer, free_port
from switchboard_devstack.waiting import eventually
from switchboard_runtime.bus import ensure_streams

CONVERSATIONS = 60
BATCH_SIZE = 20  # many batches in flight when the writer dies
SETTINGS = {"batch_size": BATCH_SIZE, "poll_interval_s": 0.05, "retry_base_s": 0.05,
            "retry_max_s": 0.3, "lease_interval_s": 0.2}


def conversations() -> list[Published]:
    events: list[Published] = []
    for n in range(CONVERSATIONS):
        talk = ConversationScript("clinic", f"whatsapp:+4477008{n:05d}", start=START)
        talk.text_message(f"Question number {n}", reply="An answer in two parts.", parts=2)
        events += talk.events
    return events


@pytest.fixture
def other_replica(nats_url: str, migrated_url: str, streams: None) -> Iterator[tuple[
        subprocess.Popen[bytes], str]]:
    """A projection replica in a process of its own, and its HTTP address."""
    port = free_port()
    env = os.environ | {key.upper(): str(value) for key, value in SETTINGS.items()} | {
        "NATS_URL": nats_url, "DATABASE_URL": migrated_url, "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port), "MIGRATE_ON_START": "false", "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from projection.main import main; main()"], env=env,
        stdout=subprocess.DEVNULL)
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


async def scrape(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """The replica's applied events and writer gauge ({} while it is not serving yet)."""
    try:
        text = (await http.get(f"{url}/metrics")).text
    except httpx.HTTPError:
        return {}
    found = {"applied": 0.0, "writer": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "switchboard_projection_events_total"
                    and sample.labels.get("outcome") == "applied"):
                found["applied"] += sample.value
            elif sample.name == "switchboard_projection_writer":
                found["writer"] = sample.value
    return found


def applied_here() -> float:
    return sum(sample.value for family in metrics.EVENTS.collect() for sample in family.samples
               if sample.name.endswith("_total") and sample.labels["outcome"] == "applied")


async def test_one_replica_writes_and_another_takes_over_when_it_is_killed(
        js: JetStreamContext, nc: NATS, nats_url: str, migrated_url: str,
        other_replica: tuple[subprocess.Popen[bytes], str]) -> None:
    first, first_url = other_replica
    events = conversations()
    sent: list[Published] = []
    settings = settings_for(nats_url, migrated_url, **SETTINGS)
    async with httpx.AsyncClient(timeout=2) as http:
        # The first replica projects a first event before the second one starts.
        await events[0].publish(js)
        sent.append(events[0])

        async def first_applied() -> float | None:
            return (await scrape(http, first_url)).get("applied")

        await eventually(first_applied, timeout_s=60, what="the first replica projecting")

        async with build(settings).running() as second:
            assert second.db is not None
            applied_before = applied_here()
            publishing = asyncio.create_task(publish_steadily(js, events[1:], sent))
            await eventually(lambda: len(sent) >= len(events) // 2, what="half published")
            # Only the first replica wrote meanwhile; the second stands by, ready for reads.
            assert applied_here() == applied_before
            assert (await scrape(http, first_url))["writer"] == 1
            assert metrics.WRITER._value.get() == 0
            assert await second.db.fetchval("SELECT count(*) FROM conversations")

            first.kill()  # mid-stream: batches fetched, some written, none drained
            killed_at = time.monotonic()
            await eventually(lambda: metrics.WRITER._value.get() == 1, timeout_s=15,
                             what="the second replica taking over")
            takeover_s = time.monotonic() - killed_at
            await publishing
            await wait_caught_up(js, timeout_s=60)
            assert applied_here() > applied_before
            checkpoints = {r["stream"]: r for r in await second.db.fetch(
                "SELECT * FROM projection_checkpoints")}
            projected = await snapshot(second.db)

            # The same streams replayed into emptied tables (by the second replica: it holds
            # the lease, so the rebuild's own projector stands by).
            await rebuild(nc, second.db, settings, timeout_s=60)
            rebuilt = await snapshot(second.db)

    print(f"takeover after SIGKILL: {takeover_s:.2f}s")
    assert takeover_s < 5
    for stream in PROJECTED_NAMES:
        stored = (await js.stream_info(stream)).state
        if stored.messages:
            assert checkpoints[stream]["last_seq"] == stored.last_seq, stream
            assert checkpoints[stream]["processed"] == stored.messages, stream  # each once
    assert sum(c["processed"] for c in checkpoints.values()) == len(events)
    assert projected == rebuilt


async def test_a_writer_that_lost_the_lease_cannot_commit(
        js: JetStreamContext, streams: None, migrated_url: str) -> None:
    """The lease's connection ended (and another replica took the lease) before this writer
    noticed: its next transaction is refused, nothing is written."""
    talk = ConversationScript("clinic", "whatsapp:+447700900001", start=START)
    talk.text_message("Hello", reply="Hi there!")
    for event in talk.events:
        await event.publish(js)
    sub = await js.pull_subscribe(GATEWAY.subjects[0], stream=GATEWAY.name)
    facts = [decode(Raw.of(m)) for m in await sub.fetch(100, timeout=2)]

    pool = await asyncpg.create_pool(migrated_url, min_size=1, max_size=2)
    lease, successor = await asyncpg.connect(migrated_url), await asyncpg.connect(migrated_url)
    try:
        assert await take(lease)
        assert not await take(successor)  # one holder at a time
        writer = BatchWriter(pool, dead_letter=lambda fact: asyncio.sleep(0),
                             first_after=lambda stream, seq: asyncio.sleep(0, seq + 1),
                             timeout_s=5, fence=await Fence.of(lease))
        epoch = await read_epoch(pool)
        assert (await writer.write(GATEWAY.name, epoch, facts[:1])).applied == 1

        await lease.close()  # the lock goes with the session
        assert await take(successor)
        with pytest.raises(LeaseLost):
            await writer.write(GATEWAY.name, epoch, facts[1:])
        await writer.stop()
        assert await pool.fetchval("SELECT processed FROM projection_checkpoints") == 1
    finally:
        await successor.close()
        await pool.close()


async def test_a_new_writer_recreates_its_consumers_under_its_own_nats_user(
        migrated_url: str) -> None:
    """Taking the lease, the writer deletes and re-creates its consumers at the checkpoint:
    its NATS user may (deploy/nats/permissions.conf), and nothing is refused."""
    server = NatsServer(auth=NatsAuth.generate()).start()  # no anonymous user
    try:
        assert server.auth is not None
        passwords = server.auth.passwords
        operator = await nats.connect(server.url, user="operator", password=passwords["operator"])
        settings = settings_for(server.url, migrated_url, nats_user="projection",
                                nats_password=passwords["projection"])
        try:
            js = operator.jetstream()
            await ensure_streams(js, ALL_STREAMS)
            await orphaned_message(ACCOUNT, "whatsapp:+14155550999", START).publish(js)
            # The consumer a previous writer left behind.
            await js.add_consumer(GATEWAY.name, consumer_config(GATEWAY.name, settings))
            async with build(settings).running() as service:
                assert service.db is not None
                db = service.db
                await eventually(lambda: db.fetchval("SELECT count(*) FROM orphaned_messages"),
                                 what="the orphaned message projected")
        finally:
            await operator.close()
        log = (server.store / "nats.log").read_text()
        assert "Violation" not in log
    finally:
        server.cleanup()
