"""A small HTTP/1.1 load generator over keep-alive connections (same one for every target).

Requests are pre-built bytes, so the generator's own cost per request is a socket write and a
response parse. Two modes: closed loop (max throughput with C connections) and open loop at a
fixed rate (latency at a given load, measured from the scheduled send time).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass
class Run:
    sent: int
    elapsed_s: float
    latencies_s: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def closed_loop(port: int, requests: list[bytes], connections: int) -> Run:
    queue = iter(requests)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in queue:
            started = time.perf_counter()
            status = await _exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return Run(len(latencies), time.perf_counter() - started, latencies, statuses)


async def open_loop(port: int, requests: list[bytes], rate: float, connections: int) -> Run:
    """Send at ``rate`` per second; latency counts from when a request was due."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))

    async def one(request: bytes, due: float) -> None:
        reader, writer = await pool.get()
        try:
            status = await _exchange(reader, writer, request)
        finally:
            pool.put_nowait((reader, writer))
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1

    start = time.perf_counter()
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    return Run(len(latencies), elapsed, latencies, statuses)


def post_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
