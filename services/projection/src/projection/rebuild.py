"""Rebuild: empty the read models and replay every stream from its start.

``reset`` runs in one transaction under the writers' lock: it empties the read models and the
checkpoints, bumps the epoch and deletes the projection's consumers before committing. So no
batch fetched before it can land after it (the epoch check), and every consumer that exists
once it has committed was created after it, from the first message of its stream. A running
projection service notices (epoch check, or its consumer gone) and replays too; ``rebuild``
also replays in-process if it gets the writer lease (no service is writing) and returns once
every stream is caught up, whoever replayed them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import asyncpg
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from switchboard_contracts.topology import StreamSpec
from switchboard_runtime.telemetry import get_logger

from .checkpoint import lock_writers
from .consumer import PROJECTED, Projector, durable_for
from .lease import WriterLease
from .readmodels import TABLES
from .settings import ProjectionSettings

log = get_logger(__name__)

READ_MODELS = tuple(table.name for table in TABLES)


async def reset(pool: asyncpg.Pool, js: JetStreamContext,
                streams: Sequence[StreamSpec] = PROJECTED) -> int:
    """Empty the read models; returns the new epoch."""
    async with pool.acquire() as conn, conn.transaction():
        await lock_writers(conn)
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)}, projection_checkpoints")
        epoch: int = await conn.fetchval(
            "UPDATE projection_state SET epoch = epoch + 1, rebuilt_at = now() RETURNING epoch")
        # Before the commit: if NATS fails here, nothing was emptied.
        for spec in streams:
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(spec.name, durable_for(spec.name))
    log.info("read models emptied for a rebuild", epoch=epoch)
    return epoch


async def wait_caught_up(projector: Projector | WriterLease, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not await projector.caught_up():  # noqa: ASYNC110 - polls NATS, no event to await
            await asyncio.sleep(0.05)


async def rebuild(nc: NATS, pool: asyncpg.Pool, settings: ProjectionSettings,
                  timeout_s: float = 3600.0) -> int:
    """Reset, replay every stream in-process until caught up; returns the new epoch."""
    epoch = await reset(pool, nc.jetstream())
    lease = WriterLease(nc, pool, settings)
    await lease.start()
    try:
        await wait_caught_up(lease, timeout_s)
    finally:
        await lease.stop()
    log.info("read models rebuilt", epoch=epoch)
    return epoch
