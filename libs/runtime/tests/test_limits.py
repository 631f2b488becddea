"""Limits shared by replicas through JetStream counters, on a real nats-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import nats
import pytest
from switchboard_runtime.limits import Rate, SharedCounters, SharedLimit

PER_MINUTE = Rate(20, 60)
NOW = 1_800_000_030.0  # mid-window: the previous window weighs half, and it is empty


def fixed() -> float:
    return NOW


@asynccontextmanager
async def replica(nats_url: str, clock: Callable[[], float] = fixed
                  ) -> AsyncIterator[SharedCounters]:
    """One replica's counters, on its own connection."""
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    counters = SharedCounters(nc, "test", sync_interval_s=0.2, timeout_s=0.5, clock=clock)
    await counters.start()
    try:
        yield counters
    finally:
        await counters.stop()
        await nc.close()


def test_rates_parse() -> None:
    assert Rate.parse("20/minute") == Rate(20, 60)
    assert Rate.parse("300 per second") == Rate(300, 1)
    assert Rate.parse("5/10 seconds") == Rate(5, 10)
    assert Rate(20, 60).burst(0.2) == 1
    assert Rate(300, 1).burst(0.2) == 60
    with pytest.raises(ValueError, match="not a rate"):
        Rate.parse("lots")


async def admitted(limits: list[SharedLimit], key: str, attempts: int) -> int:
    """Hits from every replica, interleaved and concurrent, as a burst spread by a balancer."""
    results = await asyncio.gather(*(limits[i % len(limits)].hit(key) for i in range(attempts)))
    return sum(results)


async def test_two_replicas_together_admit_the_limit_within_the_documented_bound(
        nats_url: str) -> None:
    async with replica(nats_url) as a, replica(nats_url) as b:
        limits = [a.limit("sender", PER_MINUTE), b.limit("sender", PER_MINUTE)]
        total = await admitted(limits, "tenant|whatsapp:+447700900123", 60)
        # And one at a time, as Twilio's retries arrive: each replica learns the other's hits.
        for i in range(20):
            total += await limits[i % 2].hit("tenant|whatsapp:+447700900999")
    bound = PER_MINUTE.amount + 2 * limits[0].burst
    assert total <= 2 * bound, total  # two keys, each within amount + replicas x burst
    assert total >= 2 * PER_MINUTE.amount - 2  # and the limit is not much stricter either


async def test_per_replica_counting_lets_two_replicas_admit_twice_the_limit(
        nats_url: str) -> None:
    # What the limit was before: each replica alone (as here, never syncing) admits it all.
    async with replica(nats_url) as a, replica(nats_url) as b:
        a._local_until = b._local_until = float("inf")
        limits = [a.limit("sender", PER_MINUTE), b.limit("sender", PER_MINUTE)]
        assert await admitted(limits, "k", 60) == 2 * PER_MINUTE.amount


async def test_a_replica_learns_the_others_hits_from_the_background_sync(nats_url: str) -> None:
    async with replica(nats_url) as a, replica(nats_url) as b:
        first, second = a.limit("ip", Rate(100, 60)), b.limit("ip", Rate(100, 60))
        for _ in range(30):
            assert await first.hit("203.0.113.7")
        deadline = time.monotonic() + 5
        while await second.allowed("203.0.113.7"):  # reads, never counts
            second_sees = b._estimate("ip", Rate(100, 60), "203.0.113.7")[0]
            if second_sees >= 30 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert b._estimate("ip", Rate(100, 60), "203.0.113.7")[0] == 30


async def test_with_nats_unreachable_each_replica_holds_the_limit_alone_without_waiting(
        nats_url: str, nats_server) -> None:
    async with replica(nats_url) as a:
        limit = a.limit("sender", PER_MINUTE)
        assert await limit.hit("k")
        nats_server.stop()
        started = time.monotonic()
        results = [await limit.hit("k") for _ in range(30)]
        assert sum(results) == PER_MINUTE.amount - 1  # the per-replica limit, nothing shared
        assert time.monotonic() - started < 2  # at most one failed sync's timeout
        nats_server.start()
        # Back (the counters live in memory: a single server's restart forgot the first hit),
        # the hits counted meanwhile reach the shared counter, so other replicas see them.
        async with replica(nats_url) as b:
            b.limit("sender", PER_MINUTE)
            deadline = time.monotonic() + 10
            while b._estimate("sender", PER_MINUTE, "k")[0] < sum(results):
                assert time.monotonic() < deadline, "the outage's hits were never shared"
                await asyncio.sleep(0.1)
                await b._sync(b._due())


async def test_keys_never_appear_in_subjects(nats_url: str) -> None:
    async with replica(nats_url) as a:
        a.limit("sender", PER_MINUTE).count("whatsapp:+447700900123")
        await a._sync(a._due())
        nc = await nats.connect(nats_url)
        info = await nc.jetstream().stream_info(a.stream, subjects_filter=">")
        await nc.close()
    assert info.state.subjects
    assert not any("447700900123" in subject for subject in info.state.subjects)


async def test_a_sync_sends_each_new_keys_hits_once_and_no_previous_window(nats_url: str) -> None:
    # One increment per key seen (the current window); the previous window of a key this
    # replica never counted in is not synced in the background.
    async with replica(nats_url) as a:
        a._local_until = float("inf")  # no background sync: this test's sync is the one
        limit = a.limit("sender", PER_MINUTE)
        for i in range(50):
            assert await limit.hit(f"tenant|whatsapp:+4477009{i:05d}")
        sent = a._nc.stats["out_msgs"]
        await a._sync(a._due())
        assert a._nc.stats["out_msgs"] - sent == 50
        nc = await nats.connect(nats_url)
        info = await nc.jetstream().stream_info(a.stream, subjects_filter=">")
        await nc.close()
    window = int(NOW // PER_MINUTE.window_s)
    assert info.state.subjects is not None
    assert len(info.state.subjects) == 50
    assert all(f".{window}." in subject for subject in info.state.subjects)
