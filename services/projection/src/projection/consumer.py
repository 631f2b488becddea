"""The projection's consumers: one durable pull consumer per stream, applied in batches.

Each loop fetches up to ``batch_size`` messages (``pull.py``), prepares the rows they mean,
hands both to the ``BatchWriter`` (one transaction with the checkpoint) and acknowledges the
batch only after the commit, with one ack (``AckPolicy.ALL``). While a batch is written, the
next one is fetched and prepared, and handed over only once the first is committed: a
stream's batches are applied strictly in order, which the "skip at or below the checkpoint"
rule relies on. ``max_ack_pending`` is two batches, so JetStream delivers nothing beyond
those two while they are unacknowledged. ``max_deliver`` is unlimited: a Postgres outage of
any length must not make the server give up on an event.

When Postgres fails, the loop keeps its batch, backs off and writes it again (nothing is
acked meanwhile); when it returns, the loop carries on from there.

A ``Projector`` runs only in the replica holding the writer lease (``lease.py``): one ack
covers every earlier delivery of the durable consumer, so a second process on it could ack
messages it never wrote. When it starts (and after a batch is refused as out of order or from
an older epoch) each loop deletes its consumer and creates it again at the checkpoint: what
the previous writer had fetched and not written is delivered again at once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from switchboard_contracts.topology import (
    AGENT,
    CONVERSATION,
    DEADLETTER,
    GATEWAY,
    SENDER,
    TRANSCRIPTION,
    StreamSpec,
)
from switchboard_runtime.bus import dead_letter
from switchboard_runtime.bus.pull import PullFetcher
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .checkpoint import (
    BatchWriter,
    DataProblem,
    EpochChanged,
    LeaseLost,
    Outcome,
    OutOfOrder,
    read_epoch,
    read_position,
)
from .decoding import Fact, PoisonFact, Raw, decode
from .fence import Fence
from .readmodels import READ_TYPES, project
from .settings import ProjectionSettings
from .writes import Writes

log = get_logger(__name__)

# Every stream with events (ADVISORIES holds server advisories, which the services' collectors
# already turn into dead letters).
PROJECTED: tuple[StreamSpec, ...] = (GATEWAY, CONVERSATION, TRANSCRIPTION, AGENT, SENDER,
                                     DEADLETTER)
PROJECTED_NAMES = tuple(spec.name for spec in PROJECTED)
# Decoding and preparing rows yield to the event loop this often, so the writer (committing
# other batches) is not kept waiting between its round trips to Postgres.
YIELD_EVERY = 50
# While idle, how often a loop checks that its consumer and epoch are still current (a
# rebuild from another process deletes the consumers and bumps the epoch).
RECHECK_S = 5.0


def durable_for(stream: str) -> str:
    return f"projection-{stream.lower()}"


def consumer_config(stream: str, settings: ProjectionSettings,
                    start_seq: int = 1) -> ConsumerConfig:
    """The durable consumer, delivering from ``start_seq`` (the checkpoint's next)."""
    durable = durable_for(stream)
    return ConsumerConfig(
        durable_name=durable, name=durable,
        description="Projection: read models in Postgres (position checkpointed there too)",
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq,
        ack_policy=AckPolicy.ALL,
        ack_wait=settings.ack_wait_s, max_deliver=-1,
        # The batch being written and the next one, fetched meanwhile (StreamLoop._step).
        max_ack_pending=2 * settings.batch_size,
    )


def _unreachable(exc: BaseException) -> bool:
    """The database cannot be reached (no traceback needed to understand that)."""
    return isinstance(exc, OSError | TimeoutError | asyncpg.PostgresConnectionError
                      | asyncpg.InterfaceError | asyncpg.CannotConnectNowError)


async def caught_up(js: JetStreamContext, streams: Sequence[str] = PROJECTED_NAMES) -> bool:
    """Every message of every stream delivered, written and acknowledged (acks follow
    commits)."""
    for stream in streams:
        try:
            info = await js.consumer_info(stream, durable_for(stream))
        except NotFoundError:
            return False
        if info.num_pending or info.num_ack_pending:
            return False
    return True


@dataclass(eq=False)
class _Prepared:
    msgs: Sequence[Msg]
    facts: list[Fact] = field(default_factory=list)
    writes: Writes = field(default_factory=Writes)


class StreamLoop:
    def __init__(self, nc: NATS, pool: asyncpg.Pool, writer: BatchWriter,
                 stream: str, settings: ProjectionSettings, stopping: asyncio.Event) -> None:
        self.stream = stream
        self._nc = nc
        self._js = nc.jetstream()
        self._pool = pool
        self._writer = writer
        self._settings = settings
        self._stopping = stopping
        self._durable = durable_for(stream)
        self._epoch = -1
        self._fetcher: PullFetcher | None = None
        self._ahead: _Prepared | None = None
        self._checked_at = 0.0
        # Start from the checkpoint, whatever the consumer's state (a new writer's first bind).
        self._recreate = True

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    await self._step()
                except Exception:  # never die quietly: a dead loop would stall its stream
                    log.exception("projection loop failed, re-binding", stream=self.stream)
                    await self._unbind()
                    await self._pause(1.0)
        finally:  # also when cancelled (the lease lost): no more deliveries to this process
            await self._unbind()

    async def _step(self) -> None:
        if self._fetcher is None and not await self._bind():
            return
        current, self._ahead = self._ahead or await self._fetch(), None
        if current is None:
            await self._recheck_when_idle()  # caught up: ask again in a moment
            await self._pause(self._settings.poll_interval_s)
            return
        # The next batch is fetched and prepared (Python) while this one is written
        # (Postgres); it is handed to the writer only once this one is committed, so a
        # stream's batches still commit in order.
        ahead = asyncio.create_task(self._fetch())
        committed, dropped_for = await self._commit(current)
        following = await ahead
        if committed:
            self._ahead = following
        elif following is not None:  # dropped with it: delivered again like it
            await self._drop(following, dropped_for)

    async def _fetch(self) -> _Prepared | None:
        """The next batch, decoded and its rows prepared; None when there is none (or the
        fetch failed: then bound again)."""
        if self._fetcher is None:
            return None
        try:
            async with asyncio.timeout(self._settings.fetch_timeout_s):
                msgs = await self._fetcher.fetch(self._settings.batch_size)
        except Exception as exc:  # NATS away, or no answer: bind again
            log.warning("fetch failed, re-binding", stream=self.stream, error=type(exc).__name__)
            await self._unbind()
            await self._pause(1.0)
            return None
        if not msgs:
            return None
        batch = _Prepared(msgs)
        for start in range(0, len(msgs), YIELD_EVERY):
            for msg in msgs[start:start + YIELD_EVERY]:
                fact = decode(Raw.of(msg), READ_TYPES)
                batch.facts.append(fact)
                project(fact, batch.writes)
            await asyncio.sleep(0)  # let the writer go on with its round trips meanwhile
        return batch

    async def _commit(self, batch: _Prepared) -> tuple[bool, Exception | None]:
        """Write, then ack. (False, why) if the batch was dropped: it is delivered again."""
        try:
            outcome = await self._write(batch.facts, batch.writes)
        except LeaseLost as exc:
            log.warning("writer lease lost, batch dropped", stream=self.stream)
            self._stopping.set()  # every loop stops; the lease steps down (lease.py)
            return False, exc
        except (EpochChanged, OutOfOrder) as exc:
            log.warning("batch dropped, consumer re-created at the checkpoint",
                        stream=self.stream, reason=type(exc).__name__)
            metrics.RETRIES.labels(self.stream, type(exc).__name__).inc()
            await self._drop(batch, reason=exc)
            await self._unbind()
            self._recreate = True
            # Out of order again and again (a message delivered elsewhere meanwhile): not a
            # hot loop of consumer re-creations.
            await self._pause(self._settings.retry_max_s if isinstance(exc, OutOfOrder) else 0)
            return False, exc
        if outcome is None:  # stopping while the database is away: redelivered later
            return False, None
        await self._ack(batch.msgs[-1])
        self._observe(outcome, batch.msgs[-1])
        return True, None

    @staticmethod
    async def _drop(batch: _Prepared, reason: Exception | None) -> None:
        """After a rebuild, deliver it again at once (to the consumer made since). Otherwise
        (a message lost on its way here) no nak: the batch comes back after ACK_WAIT_S
        together with the lost one, sorted by sequence."""
        if isinstance(reason, EpochChanged):
            for msg in batch.msgs:
                with contextlib.suppress(Exception):
                    await msg.nak()

    @staticmethod
    async def _ack(last: Msg) -> None:
        """One ack for the batch (AckPolicy.ALL). A lost ack means a redelivery, then a skip."""
        with contextlib.suppress(Exception):
            await last.ack()

    async def _write(self, facts: Sequence[Fact], writes: Writes) -> Outcome | None:
        """Write the batch, retrying while the database fails; None if stopping first."""
        delay = self._settings.retry_base_s
        isolate = False
        try:
            while True:
                try:
                    with metrics.BATCH_SECONDS.labels(self.stream).time():
                        if isolate:
                            return await self._writer.write_isolated(self.stream, self._epoch,
                                                                     facts)
                        return await self._writer.write(self.stream, self._epoch, facts, writes)
                except (EpochChanged, OutOfOrder, LeaseLost, asyncio.CancelledError):
                    raise
                except DataProblem as exc:
                    log.warning("a row was refused; isolating the event", stream=self.stream,
                                error=str(exc))
                    isolate = True
                except Exception as exc:
                    metrics.STALLED.labels(self.stream).set(1)
                    metrics.RETRIES.labels(self.stream, type(exc).__name__).inc()
                    # The database is away (or a bug: then with the traceback): keep the
                    # batch, write it again after a pause; nothing is acked meanwhile.
                    log.warning("batch not written, kept for retry", stream=self.stream,
                                error=type(exc).__name__, retry_in_s=delay,
                                exc_info=not _unreachable(exc))
                    if await self._pause(delay):
                        return None
                    delay = min(delay * 2, self._settings.retry_max_s)
        finally:
            metrics.STALLED.labels(self.stream).set(0)

    async def _bind(self) -> bool:
        """Read the epoch and the checkpoint, then bind the consumer, creating it (again when
        asked to) just past the checkpoint. A rebuild deletes the consumers and empties the
        checkpoints in one transaction, so one created after it starts at the stream's
        beginning and is never older than the epoch read here."""
        try:
            self._epoch, last = await read_position(self._pool, self.stream)
            if self._recreate:
                with contextlib.suppress(NotFoundError):
                    await self._js.delete_consumer(self.stream, self._durable)
            try:
                await self._js.consumer_info(self.stream, self._durable)
            except NotFoundError:
                await self._js.add_consumer(
                    self.stream, consumer_config(self.stream, self._settings, last + 1))
            self._recreate = False
            self._fetcher = PullFetcher(self._nc, self.stream, self._durable)
            await self._fetcher.start()
        except Exception as exc:
            log.warning("cannot bind the consumer yet", stream=self.stream,
                        error=type(exc).__name__)
            await self._pause(self._settings.retry_max_s)
            return False
        self._checked_at = time.monotonic()
        return True

    async def _unbind(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.stop()
        self._fetcher = None

    async def _recheck_when_idle(self) -> None:
        if time.monotonic() - self._checked_at < RECHECK_S:
            return
        self._checked_at = time.monotonic()
        try:
            await self._js.consumer_info(self.stream, self._durable)
            current = await read_epoch(self._pool)
        except NotFoundError:
            current = None
        except Exception:
            return  # the database or NATS is away: the next batch will say so
        if current != self._epoch:
            log.info("consumer gone or epoch changed, re-binding", stream=self.stream)
            await self._unbind()

    async def _pause(self, seconds: float) -> bool:
        """Sleep, unless asked to stop first (then True)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    def _observe(self, outcome: Outcome, last: Msg) -> None:
        stream = self.stream
        for name in ("applied", "skipped", "ignored", "dead_lettered"):
            count = getattr(outcome, name)
            if count:
                metrics.EVENTS.labels(stream, name).inc(count)
        metrics.BATCH_EVENTS.labels(stream).observe(
            outcome.applied + outcome.skipped + outcome.ignored + outcome.dead_lettered)
        metrics.CHECKPOINT.labels(stream).set(outcome.last_seq)
        metrics.LAG.labels(stream).set(last.metadata.num_pending)


class Projector:
    """Every stream's loop, sharing one writer. ``fence``: the writer lease this process
    holds, checked by every write transaction (None only where a single process runs)."""

    def __init__(self, nc: NATS, pool: asyncpg.Pool, settings: ProjectionSettings,
                 streams: Sequence[StreamSpec] = PROJECTED, fence: Fence | None = None) -> None:
        self._js = nc.jetstream()
        self._stopping = asyncio.Event()
        self._writer = BatchWriter(pool, self._dead_letter, self._first_after,
                                   settings.batch_timeout_s, fence)
        self._loops = [StreamLoop(nc, pool, self._writer, spec.name, settings, self._stopping)
                       for spec in streams]
        self._tasks: list[asyncio.Task[None]] = []
        self._gc_young_threshold = settings.gc_young_threshold

    async def start(self) -> None:
        # Process-wide, and meant to be: the projection runs in a process of its own.
        gc.set_threshold(self._gc_young_threshold, *gc.get_threshold()[1:])
        self._tasks = [asyncio.create_task(loop.run(), name=f"projection:{loop.stream}")
                       for loop in self._loops]

    async def stop(self) -> None:
        """Finish the batches being written (and ack them), then return."""
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._writer.stop()

    async def abandon(self) -> None:
        """Stop at once (the lease is lost): batches in flight are neither written nor
        acknowledged; the next writer gets them again."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._writer.stop()

    def running(self) -> bool:
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def caught_up(self) -> bool:
        return await caught_up(self._js, [loop.stream for loop in self._loops])

    async def _first_after(self, stream: str, seq: int) -> int | None:
        try:
            found = await self._js.get_msg(stream, seq=seq + 1, subject=">", next=True)
        except NotFoundError:
            return None
        return found.seq

    async def _dead_letter(self, fact: PoisonFact) -> None:
        raw = fact.raw
        await dead_letter(self._js, stream=raw.stream, consumer=durable_for(raw.stream),
                          subject=raw.subject, stream_seq=raw.seq, deliveries=raw.deliveries,
                          payload=raw.data, headers=raw.headers, reason=fact.reason,
                          error=fact.error)
