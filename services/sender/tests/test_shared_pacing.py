"""The 80 msg/s per number holds across sender replicas (two pacers on one real NATS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import nats
from sender.ratelimit import SenderPacer
from switchboard_runtime.limits import SharedCounters

RATE = 20
NUMBER = "whatsapp:+14155550100"


@asynccontextmanager
async def counters(nats_url: str) -> AsyncIterator[SharedCounters]:
    # A clock that stays in one second: the shared count never resets during the test, so
    # what two replicas send is what that one second allowed them.
    nc = await nats.connect(nats_url)
    shared = SharedCounters(nc, "sender", clock=lambda: 1_800_000_000.5)
    await shared.start()
    try:
        yield shared
    finally:
        await shared.stop()
        await nc.close()


async def sends_within(pacers: list[SenderPacer], seconds: float) -> int:
    """Calls the pacers let through in ``seconds``, 2 x RATE asking at once on each."""
    tasks = [asyncio.create_task(pacer.wait(NUMBER)) for pacer in pacers for _ in range(2 * RATE)]
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return len(done)


async def test_two_replicas_share_one_numbers_second(nats_url: str) -> None:
    async with AsyncExitStack() as stack:
        pacers = [SenderPacer(RATE, await stack.enter_async_context(counters(nats_url)))
                  for _ in range(2)]
        sent = await sends_within(pacers, 1.5)
    assert RATE <= sent <= RATE + 2  # the documented bound: rate + replicas x burst (1)


async def test_per_replica_pacing_alone_lets_two_replicas_send_twice_the_rate() -> None:
    sent = await sends_within([SenderPacer(RATE), SenderPacer(RATE)], 1.5)
    assert sent >= 2 * RATE  # what the shared count above prevents
