"""The operator queue as gauges: conversations waiting for a person now, and the age of the
oldest, read from the read model every ``HANDOFF_QUEUE_INTERVAL_S``.

Every replica runs it, the writer and the standbys alike: the answer is one query on the
shared read model, so each reports the same value (alerts take the max), and the gauges do not
vanish while the writer lease moves from one replica to another, nor depend on which replica
holds it. It is the queue operators see (``/v1/operator/queue``), as far as the read model has
caught up with the streams (its lag has its own alerts). When Postgres does not answer, the
gauges keep their last value until it does.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from switchboard_runtime.telemetry import get_logger

from . import metrics

log = get_logger(__name__)

# Served by the partial index conversations_tenant_mode (mode waiting or human).
_QUEUE = """
SELECT count(*) AS waiting,
       COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - min(waiting_since)), 0), 0)::float8
           AS oldest_s
FROM conversations WHERE mode = 'waiting'
"""


async def refresh(pool: asyncpg.Pool) -> None:
    row = await pool.fetchrow(_QUEUE)
    metrics.HANDOFFS_WAITING.set(row["waiting"])
    metrics.HANDOFF_OLDEST_WAITING_SECONDS.set(row["oldest_s"])


class HandoffQueueGauges:
    def __init__(self, pool: asyncpg.Pool, interval_s: float) -> None:
        self._pool = pool
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="projection:handoff-queue")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._interval_s):
                    await refresh(self._pool)
            except Exception as exc:  # Postgres away: the last values stay, try again
                log.warning("handoff queue not read", error=type(exc).__name__)
            await asyncio.sleep(self._interval_s)
