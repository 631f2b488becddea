"""Micro-benchmark: the sender's Messages API adapter (the twilio SDK's async methods) against
the SDK's synchronous client in worker threads (the adapter before), on the Twilio simulator
in its own process.

    .venv/bin/python services/sender/bench/twilio_clients.py [--messages 200] [--rounds 3]

Prints creates per second and the median latency per client, at concurrency 1 and 16 (the
sender-replies consumer's concurrency), rounds interleaved so load drifts hit both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from multiprocessing.queues import Queue

from sender.twilio_api import Credentials, TwilioMessages
from twilio.rest import Client

ACCOUNT = "AC" + "b" * 32
TOKEN = "4" * 32
NUMBER = "whatsapp:+14155550100"
USER = "whatsapp:+447700900123"

Create = Callable[[int], Awaitable[object]]


def serve_simulator(urls: Queue[str]) -> None:
    from twilio_sim import Account, Number, SimConfig
    from twilio_sim.testing import run_simulator

    config = SimConfig(accounts=[Account(sid=ACCOUNT, auth_token=TOKEN)],
                       numbers=[Number(address=NUMBER, account_sid=ACCOUNT)])
    with run_simulator(config) as sim:
        urls.put(sim.url)
        time.sleep(3600)  # until terminated


async def measure(create: Create, messages: int, concurrency: int) -> tuple[float, float]:
    """(creates per second, median latency in ms)."""
    slots = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with slots:
            started = time.perf_counter()
            await create(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(messages)))
    return messages / (time.perf_counter() - started), statistics.median(latencies) * 1000


async def run(url: str, messages: int, rounds: int) -> None:
    from twilio_sim.sdk import simulator_http_client

    sync_client = Client(ACCOUNT, TOKEN, http_client=simulator_http_client(url, timeout=10))

    async def threaded(i: int) -> object:
        return await asyncio.to_thread(
            sync_client.messages.create, to=USER, from_=NUMBER, body=f"bench {i}")

    adapter = TwilioMessages(url, timeout_s=10)
    credentials = Credentials(ACCOUNT, TOKEN)

    async def native(i: int) -> object:
        return await adapter.create(credentials, to=USER, from_=NUMBER, body=f"bench {i}",
                                    status_callback=None)

    clients: dict[str, Create] = {"sync SDK in threads": threaded, "async SDK (adapter)": native}
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for concurrency in (1, 16):
        for _ in range(rounds):
            for name, create in clients.items():
                results.setdefault((name, concurrency), []).append(
                    await measure(create, messages, concurrency))
    await adapter.aclose()
    print(f"{messages} creates per round, {rounds} rounds, medians of the rounds")
    for (name, concurrency), found in results.items():
        rate = statistics.median(r for r, _ in found)
        latency = statistics.median(lat for _, lat in found)
        print(f"  concurrency {concurrency:2d}  {name:22s} {rate:8.1f} creates/s"
              f"  p50 {latency:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    urls: Queue[str] = multiprocessing.Queue()
    simulator = multiprocessing.Process(target=serve_simulator, args=(urls,), daemon=True)
    simulator.start()
    try:
        asyncio.run(run(urls.get(timeout=30), args.messages, args.rounds))
    finally:
        simulator.terminate()


if __name__ == "__main__":
    main()
