"""The writer lease: any number of replicas serve the read API, exactly one projects.

Each replica keeps a dedicated connection (outside the pool) and tries
``pg_try_advisory_lock(LEASE_LOCK)`` on it every ``LEASE_INTERVAL_S``. The one that gets it
runs the ``Projector`` (every stream's consumer and the writes) for as long as that session
lives; the others stand by. The writer pings its connection at the same interval: when the
connection ends or does not answer within ``LEASE_TIMEOUT_S`` it stops consuming at once
(batches in flight are dropped, not acknowledged) and closes the connection, which releases
the lock. Postgres releases it by itself when the writer is killed (its socket closes), so a
standby takes over within about ``LEASE_INTERVAL_S``. Every write transaction also checks
that the lease's session still holds the lock (``fence.py``): the ping only makes a writer
that lost it stop early, the fence is what keeps it from committing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import asyncpg
from nats.aio.client import Client as NATS
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .consumer import Projector, caught_up
from .fence import Fence, take
from .settings import ProjectionSettings

log = get_logger(__name__)


class WriterLease:
    def __init__(self, nc: NATS, pool: asyncpg.Pool, settings: ProjectionSettings) -> None:
        assert settings.database_url is not None
        self._nc = nc
        self._pool = pool
        self._settings = settings
        self._dsn = settings.database_url
        # Names the writer in pg_stat_activity (`switchboard-projection-admin status`).
        self._application_name = f"{settings.service_name} writer {socket.gethostname()}"[:63]
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._projector: Projector | None = None

    @property
    def writing(self) -> bool:
        return self._projector is not None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="projection:lease")

    async def stop(self) -> None:
        """The writer finishes its batches (and acks them), then releases the lease."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    def running(self) -> bool:
        """Writing or standing by (ready either way: the read API serves from any replica)."""
        return self._task is not None and not self._task.done()

    async def caught_up(self) -> bool:
        """Every stream written and acknowledged, by whichever replica writes."""
        return await caught_up(self._nc.jetstream())

    async def _run(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            while not self._stopping.is_set():
                try:
                    if conn is None or conn.is_closed():
                        conn = await self._connect()
                    if await asyncio.wait_for(take(conn), self._settings.lease_timeout_s):
                        await self._write_while_held(conn)
                        await _close(conn)  # releases the lock if the session is still alive
                        conn = None
                        continue
                except Exception as exc:  # the database is away: try again
                    log.debug("writer lease not taken", error=type(exc).__name__)
                    if conn is not None:
                        await _close(conn)
                    conn = None
                await self._pause(self._settings.lease_interval_s)
        finally:
            if conn is not None:
                await _close(conn)

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self._dsn, timeout=self._settings.lease_timeout_s,
            server_settings={"application_name": self._application_name})

    async def _write_while_held(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        fence = await Fence.of(conn)
        projector = Projector(self._nc, self._pool, self._settings, fence=fence)
        log.info("writer lease taken: projecting", pid=fence.pid)
        self._projector = projector
        metrics.WRITER.set(1)
        await projector.start()
        try:
            while not self._stopping.is_set() and projector.running():
                if await _wait(lost, self._settings.lease_interval_s):
                    break
                try:
                    await conn.fetchval("SELECT 1", timeout=self._settings.lease_timeout_s)
                except Exception as exc:
                    log.warning("writer lease connection lost", error=type(exc).__name__)
                    break
        finally:
            metrics.WRITER.set(0)
            self._projector = None
            if self._stopping.is_set() and not lost.is_set() and not conn.is_closed():
                await projector.stop()  # shutting down: still the writer, finish the batches
            else:
                await projector.abandon()
                log.warning("writer lease given up: standing by")

    async def _pause(self, seconds: float) -> None:
        await _wait(self._stopping, seconds)


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except Exception:
        conn.terminate()
