"""The event-sourcing toolkit against a real nats-server (2.15): version checks, atomic
batches, reads by batch direct get, the decide-and-append loop."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from switchboard_contracts import Envelope
from switchboard_contracts.events.conversation import ConversationStarted, UserMessageAppended
from switchboard_contracts.topology import CONVERSATION
from switchboard_runtime.bus import Publisher, ensure_stream
from switchboard_runtime.eventsourcing import (
    ConcurrencyConflict,
    KeyedLocks,
    LruCache,
    aggregate_subject,
    append,
    append_batch,
    decide_and_append,
    event_id_for,
    last_version,
    replay,
    rfc3339,
)

NS = uuid.UUID("11111111-2222-3333-4444-555555555555")


def tree(cid: str) -> str:
    return aggregate_subject("conversation", cid)


def subject(cid: str, kind: str) -> str:
    return aggregate_subject("conversation", cid, kind)


def started(cid: str) -> Envelope:
    return Envelope.wrap(ConversationStarted(user_address="whatsapp:+1555", business_address=
                                             "whatsapp:+1666", account_sid="AC1"),
                         correlation_id="SM1", tenant_id="t", conversation_id=cid)


def message(cid: str, sid: str) -> Envelope:
    data = UserMessageAppended(message_sid=sid, text="hi", received_at=datetime.now(UTC), turn=1)
    return Envelope.wrap(data, correlation_id=sid, tenant_id="t", conversation_id=cid)


def pairs(*envelopes: Envelope) -> list[tuple[str, Envelope]]:
    return [(subject(e.conversation_id or "", e.type), e) for e in envelopes]


async def stored(js, cid: str) -> list[tuple[str, int]]:
    return [(s.envelope.type, s.seq) for s in await replay(js, CONVERSATION.name, tree(cid))]


async def test_append_checks_the_version_of_the_whole_aggregate(js) -> None:
    await ensure_stream(js, CONVERSATION)
    publisher = Publisher(js, CONVERSATION.name)
    ack = await append(publisher, tree("c1"), subject("c1", "ConversationStarted"),
                       started("c1"), 0)
    # Another aggregate's events do not move this one's version.
    await append(publisher, tree("c2"), subject("c2", "ConversationStarted"), started("c2"), 0)
    await append(publisher, tree("c1"), subject("c1", "UserMessageAppended"),
                 message("c1", "SM1"), ack.seq)
    with pytest.raises(ConcurrencyConflict):  # a writer that read before the last append
        await append(publisher, tree("c1"), subject("c1", "UserMessageAppended"),
                     message("c1", "SM2"), ack.seq)
    assert [kind for kind, _ in await stored(js, "c1")] == [
        "ConversationStarted", "UserMessageAppended"]


async def test_concurrent_writers_one_wins(js) -> None:
    await ensure_stream(js, CONVERSATION)
    publisher = Publisher(js, CONVERSATION.name)
    results = await asyncio.gather(
        *(append(publisher, tree("c3"), subject("c3", "UserMessageAppended"),
                 message("c3", f"SM{i}"), 0) for i in range(5)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, ConcurrencyConflict) for r in results if isinstance(r, Exception))


async def test_an_atomic_batch_is_stored_whole_or_not_at_all(nc, js) -> None:
    """What nats-server 2.15 does with ADR-50 batches: one PubAck for the batch (its last
    sequence); a batch whose first message fails the version check stores none of its
    messages; one that holds an already stored Nats-Msg-Id is refused whole (duplicate)."""
    await ensure_stream(js, CONVERSATION)
    first = pairs(started("b1"), message("b1", "SM1"), message("b1", "SM2"))
    ack = await append_batch(nc, CONVERSATION.name, tree("b1"), first, 0)
    assert ack.seq > 0 and not ack.duplicate
    assert await stored(js, "b1") == [("ConversationStarted", ack.seq - 2),
                                      ("UserMessageAppended", ack.seq - 1),
                                      ("UserMessageAppended", ack.seq)]
    # A writer that read the aggregate before that batch: nothing of its batch is stored.
    with pytest.raises(ConcurrencyConflict):
        await append_batch(nc, CONVERSATION.name, tree("b1"),
                           pairs(message("b1", "SM3"), message("b1", "SM4")), 0)
    assert len(await stored(js, "b1")) == 3
    # The same decision stored again (a redelivery): refused whole, reported as a duplicate.
    again = await append_batch(nc, CONVERSATION.name, tree("b1"), first, ack.seq)
    assert again.duplicate and len(await stored(js, "b1")) == 3
    # Two writers racing with different batches at the same version: exactly one wins.
    results = await asyncio.gather(
        *(append_batch(nc, CONVERSATION.name, tree("b1"),
                       pairs(message("b1", f"R{i}a"), message("b1", f"R{i}b")), ack.seq)
          for i in range(4)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, ConcurrencyConflict) for r in results if isinstance(r, Exception))
    assert len(await stored(js, "b1")) == 5


async def test_a_batch_of_one_is_a_checked_publish(nc, js) -> None:
    """One event needs no staging: stored without the batch headers, with the same version
    check and the same duplicate answer."""
    await ensure_stream(js, CONVERSATION)
    one = pairs(started("b2"))
    ack = await append_batch(nc, CONVERSATION.name, tree("b2"), one, 0)
    assert ack.seq > 0 and not ack.duplicate
    stored_msg = await js.get_msg(CONVERSATION.name, ack.seq)
    assert not any(h.startswith("Nats-Batch") for h in (stored_msg.headers or {}))
    with pytest.raises(ConcurrencyConflict):
        await append_batch(nc, CONVERSATION.name, tree("b2"), pairs(message("b2", "SM1")), 0)
    again = await append_batch(nc, CONVERSATION.name, tree("b2"), one, ack.seq)
    assert again.duplicate and await stored(js, "b2") == [("ConversationStarted", ack.seq)]


async def test_replay_reads_more_than_one_batch_and_leaves_no_consumer(nc, js) -> None:
    await ensure_stream(js, CONVERSATION)
    events = [started("long")] + [message("long", f"SM{i}") for i in range(599)]
    version = 0
    for start in range(0, len(events), 100):
        version = (await append_batch(nc, CONVERSATION.name, tree("long"),
                                      pairs(*events[start:start + 100]), version)).seq
    before = (await js.stream_info(CONVERSATION.name)).state.consumer_count
    read = await replay(js, CONVERSATION.name, tree("long"))
    assert [s.envelope.event_id for s in read] == [e.event_id for e in events]
    assert read[-1].seq == version
    assert await replay(js, CONVERSATION.name, tree("nobody")) == []
    assert (await js.stream_info(CONVERSATION.name)).state.consumer_count == before


def test_event_ids_are_uuid5_of_the_fact() -> None:
    other = uuid.uuid4()
    for parts in (("c1", "ReplyRequested:1"), ("InboundMessageReceived", "SM" + "0" * 32),
                  ("",), ("é€", "x" * 300)):
        for namespace in (NS, other):
            assert event_id_for(namespace, *parts) == uuid.uuid5(namespace, ":".join(parts))
    assert event_id_for(NS, "a") == event_id_for(NS, "a")  # the cached prefix is not consumed


def test_event_ids_and_schedule_times_have_one_form() -> None:
    assert event_id_for(NS, "c1", "ReplyRequested:1") == event_id_for(NS, "c1", "ReplyRequested:1")
    assert event_id_for(NS, "c1", "ReplyRequested:1") != event_id_for(NS, "c2", "ReplyRequested:1")
    moment = datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=UTC)
    assert rfc3339(moment) == "2026-01-02T03:04:06Z"  # rounded up: a timer never fires early
    assert rfc3339(moment.replace(microsecond=0)) == "2026-01-02T03:04:05Z"


def test_the_lru_keeps_the_most_recently_used() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # "b" was used least recently
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


async def test_keyed_locks_serialize_one_key_only() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def hold(key: str, name: str) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(0.01)
            order.append(f"{name}-")

    await asyncio.gather(hold("k", "a"), hold("k", "b"), hold("other", "c"))
    assert order.index("a-") < order.index("b+")  # one holder of "k" at a time
    assert order.index("c+") < order.index("a-")  # another key does not wait
    assert not locks._locks  # nothing left behind


@dataclass
class Counter:
    """A toy aggregate: its value is how many times it was incremented."""

    value: int = 0
    version: int = 0


@dataclass
class Memory:
    """A toy repository: a list as the stream, a stale cache, and a writer that may race."""

    log: list[int] = field(default_factory=list)
    stale: Counter | None = None
    race: int = 0  # how many appends another writer wins first
    loads: int = 0

    def cached(self, _: str) -> Counter | None:
        return self.stale

    async def load(self, _: str) -> Counter:
        self.loads += 1
        return Counter(len(self.log), len(self.log))

    async def version(self, _: str) -> int:
        return len(self.log)

    async def append(self, state: Counter, decision: int) -> Counter:
        if self.race:
            self.race -= 1
            self.log.append(1)
        if state.version != len(self.log):
            raise ConcurrencyConflict("toy")
        self.log.extend([1] * decision)
        return Counter(len(self.log), len(self.log))


def up_to(target: int):
    return lambda state: (target - state.value) if state.value < target else None


async def test_decide_and_append_retries_conflicts_then_gives_up() -> None:
    repo = Memory(race=2)
    conflicts: list[int] = []
    state = await decide_and_append(repo, "x", up_to(5), max_conflicts=3,
                                    on_conflict=lambda: conflicts.append(1))
    assert state.value == 5 and len(conflicts) == 2
    with pytest.raises(ConcurrencyConflict):
        await decide_and_append(Memory(race=5), "x", up_to(5), max_conflicts=3)


async def test_a_stale_cache_is_checked_before_nothing_is_done() -> None:
    """The cached copy (or a replica's read) says the target is reached; the stream's leader
    says otherwise: the loop must not believe "nothing to do" from it."""
    repo = Memory(log=[1, 1], stale=Counter(5, 5))
    state = await decide_and_append(repo, "x", up_to(5), max_conflicts=3)
    assert state.value == 5 and repo.log == [1] * 5 and repo.loads == 1
    # A current cache that has nothing to do costs no load at all... once verified by append.
    repo = Memory(log=[1] * 5)
    repo.stale = await repo.load("x")
    repo.loads = 0
    await decide_and_append(repo, "x", up_to(6), max_conflicts=3)
    assert repo.loads == 0 and repo.log == [1] * 6


async def test_last_version_is_the_leaders_view_of_the_tree(nc, js) -> None:
    await ensure_stream(js, CONVERSATION)
    assert await last_version(js, CONVERSATION.name, tree("v1")) == 0
    ack = await append_batch(nc, CONVERSATION.name, tree("v1"),
                             pairs(started("v1"), message("v1", "SM1")), 0)
    await append_batch(nc, CONVERSATION.name, tree("v2"), pairs(started("v2")), 0)
    assert await last_version(js, CONVERSATION.name, tree("v1")) == ack.seq
