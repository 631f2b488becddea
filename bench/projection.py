"""Projection catch-up: 100,000 recorded events replayed into empty read models.

The events are realistic conversations (text turns with two-part replies, voice notes with
their transcription, every delivery status; the projection's test scripts) stored in the real
streams on a local nats-server, with an embedded Postgres. Each round empties the read models (the
rebuild's reset) and times the projection from the first fetch until every stream is written
and acknowledged: fetch, decode and type each envelope, order-insensitive upserts in batches,
checkpoint in each transaction, one ack per batch.

Baseline, in the same run on the same tables: raw asyncpg writing the same final rows (read
back after our replay) with ``executemany``, 100 rows per transaction. Ceiling: COPY of the
same rows (``copy_records_to_table``). Rounds alternate ours / baseline / COPY; medians.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
from nats.aio.client import Client as NATS
from projection.consumer import Projector
from projection.readmodels import TABLES
from projection.rebuild import reset, wait_caught_up
from projection.schema import apply_migrations
from projection.settings import ProjectionSettings
from switchboard_contracts.topology import ALL_STREAMS
from switchboard_devstack.embedded import NatsServer, PostgresServer
from switchboard_runtime.bus import ensure_streams

from .common import Result, median

# The conversation scripts are the projection's test code, not part of its package: imported
# from its tests folder (on pytest's pythonpath; added here for the benchmark).
sys.path.append(str(Path(__file__).resolve().parents[1] / "services" / "projection" / "tests"))
from projection_scripts import ConversationScript, Published, publish

EVENTS = int(os.environ.get("BENCH_PROJECTION_EVENTS", "100000"))
BATCH = int(os.environ.get("BENCH_PROJECTION_BATCH", "1000"))
ROUNDS = int(os.environ.get("BENCH_PROJECTION_ROUNDS", "3"))
BASELINE_ROWS_PER_TXN = 100
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

Rows = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


def record(count: int) -> list[Published]:
    """Conversations until ``count`` stream messages: per user, a text turn answered in two
    parts, a voice note, a text turn whose reply is undelivered."""
    events: list[Published] = []
    n = 0
    while len(events) < count:
        talk = ConversationScript(f"tenant-{n % 20}", f"whatsapp:+4477{n:08d}", start=START)
        talk.text_message("Hello, can you tell me when my order ships?",
                          reply="It ships tomorrow morning. You will get a tracking link.",
                          parts=2)
        talk.voice_note("Can I change the delivery address", reply="Yes: send me the new one.")
        talk.text_message("Thanks", reply="You are welcome.", statuses=("sent", "undelivered"))
        events += talk.events
        n += 1
    return events[:count]


async def _ours(nc: NATS, pool: asyncpg.Pool, settings: ProjectionSettings) -> float:
    await reset(pool, nc.jetstream())
    projector = Projector(nc, pool, settings)
    started = time.perf_counter()
    await projector.start()
    await wait_caught_up(projector, 600)
    elapsed = time.perf_counter() - started
    await projector.stop()
    return elapsed


async def _final_rows(pool: asyncpg.Pool) -> Rows:
    rows: Rows = {}
    for table in TABLES:
        columns = [r["column_name"] for r in await pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
            "AND is_generated = 'NEVER' ORDER BY ordinal_position", table.name)]
        records = await pool.fetch(f"SELECT {', '.join(columns)} FROM {table.name}")  # noqa: S608
        rows[table.name] = (columns, [tuple(r) for r in records])
    return rows


async def _empty(pool: asyncpg.Pool) -> None:
    await pool.execute(f"TRUNCATE {', '.join(t.name for t in TABLES)}")


async def _executemany(pool: asyncpg.Pool, rows: Rows) -> float:
    await _empty(pool)
    started = time.perf_counter()
    async with pool.acquire() as conn:
        for table, (columns, records) in rows.items():
            sql = (f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                   f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})")
            for first in range(0, len(records), BASELINE_ROWS_PER_TXN):
                async with conn.transaction():
                    await conn.executemany(sql, records[first:first + BASELINE_ROWS_PER_TXN])
    return time.perf_counter() - started


async def _copy(pool: asyncpg.Pool, rows: Rows) -> float:
    await _empty(pool)
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        for table, (columns, records) in rows.items():
            await conn.copy_records_to_table(table, records=records, columns=columns)
    return time.perf_counter() - started


async def main() -> Result:
    # Recording is not measured: NATS without fsync per message, so it is quick to fill.
    server = NatsServer(sync_always=False).start()
    postgres = PostgresServer().start()
    try:
        await asyncio.to_thread(apply_migrations, postgres.url)
        events = record(EVENTS)
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_streams(js, ALL_STREAMS)
        started = time.perf_counter()
        await publish(js, events, concurrency=512)
        print(f"recorded {len(events)} events in {time.perf_counter() - started:.1f}s")
        count, timers = len(events), sum("Nats-Schedule" in e.headers for e in events)
        # The recording is this process's, not the projection's: keep it out of the garbage
        # collector's way (a service does not hold 100,000 envelopes in memory).
        del events
        gc.collect()
        gc.freeze()
        pool = await asyncpg.create_pool(postgres.url, min_size=2, max_size=8)
        settings = ProjectionSettings(nats_url=server.url, database_url=postgres.url,
                                      batch_size=BATCH)
        ours, baseline, ceiling = [], [], []
        rows: Rows = {}
        for r in range(ROUNDS):
            ours.append(count / await _ours(nc, pool, settings))
            rows = rows or await _final_rows(pool)
            baseline.append(count / await _executemany(pool, rows))
            ceiling.append(count / await _copy(pool, rows))
            print(f"round {r + 1}: ours {ours[-1]:.0f} ev/s  executemany {baseline[-1]:.0f} "
                  f"ev/s  COPY {ceiling[-1]:.0f} ev/s")
        await pool.close()
        await nc.close()
    finally:
        server.cleanup()
        postgres.cleanup()
    return Result(
        name="projection",
        metric=f"events/s, catch-up of {count:,} recorded events into empty read models",
        ours=median(ours),
        baseline=median(baseline),
        goal=">= 0.5",
        conditions={
            "events": count, "of_which_timer_definitions": timers,
            "batch_size": BATCH, "rounds": ROUNDS,
            "baseline": f"asyncpg executemany of the same final rows, "
                        f"{BASELINE_ROWS_PER_TXN} rows per transaction",
            "rows": {name: len(records) for name, (_, records) in rows.items()},
            "postgres": "embedded PostgreSQL 16 (pgserver), fsync off, synchronous_commit off",
            "nats": "nats-server 2.15.1, single node, file store, default sync",
            "gc": "young-generation threshold 50,000 (the projection's default, set when it "
                  "starts; the same process runs the baseline)",
        },
        extra={
            "COPY ceiling (ev/s)": round(median(ceiling)),
            "ours / COPY": round(median(ours) / median(ceiling), 3),
            "ours rounds": [round(x) for x in ours],
            "executemany rounds": [round(x) for x in baseline],
            "COPY rounds": [round(x) for x in ceiling],
        },
    )
