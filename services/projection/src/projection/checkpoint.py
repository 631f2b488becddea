"""Batches and their checkpoints, committed together: each stream message is taken into
account exactly once.

Every stream's loop hands its batch (the facts, and the rows they mean, prepared outside any
transaction) to one ``BatchWriter``. The writer commits what is queued in one transaction
(group commit: while it writes, the next batches of every stream queue up and go together).
Inside the transaction it (1) takes a Postgres advisory lock, so batches from every replica
and the rebuild command are applied one at a time; (2) checks the epoch, so a batch fetched
before a rebuild cannot land after it; (3) skips the messages at or below their stream's
checkpoint (a redelivery after a commit whose ack was lost); (4) refuses a batch that starts
after a message that exists and was not written (lost on its way to this process: the
checkpoint must never pass it); (5) writes the rest and moves each stream's checkpoint to its
batch's last sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from .cross_tenant import foreign_statuses, report_foreign_statuses
from .decoding import DeadLetterFact, EventFact, Fact, PoisonFact, TimerFact
from .fence import Fence
from .handoff_waits import EndedWait, end_waits, observe_waits
from .readmodels import project
from .writes import Writes, recount

WRITER_LOCK = 0x5342_5052_4F4A  # "SBPROJ": the projection's single-writer advisory lock
# Batches committed in one transaction at most (they wait for the writer anyway).
MAX_GROUP = 16

_STATE = """
SELECT s.epoch, c.stream, c.last_seq
FROM projection_state s LEFT JOIN projection_checkpoints c ON c.stream = ANY($1::text[])
"""
_SAVE = """
INSERT INTO projection_checkpoints (stream, last_seq, processed, updated_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (stream) DO UPDATE SET
    last_seq = GREATEST(projection_checkpoints.last_seq, EXCLUDED.last_seq),
    processed = projection_checkpoints.processed + EXCLUDED.processed,
    updated_at = now()
"""

DeadLetterer = Callable[[PoisonFact], Awaitable[None]]
# The sequence of the first message of ``stream`` after ``seq`` that still exists (None: none).
FirstAfter = Callable[[str, int], Awaitable[int | None]]


class EpochChanged(Exception):
    """A rebuild happened since this batch's consumer was bound: drop the batch and rebind."""


class OutOfOrder(Exception):
    """The batch starts after a message not yet written (one lost on its way): writing it
    would move the checkpoint past that message. Drop it; the server delivers both again."""


class LeaseLost(Exception):
    """This process no longer holds the writer lease: another replica may be writing. Drop the
    batch unacknowledged and stop consuming."""


class DataProblem(Exception):
    """Postgres refused a row (e.g. a NUL in a text): isolate the event that causes it."""


@dataclass(frozen=True, slots=True)
class Outcome:
    applied: int = 0
    skipped: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    last_seq: int = 0

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(self.applied + other.applied, self.skipped + other.skipped,
                       self.ignored + other.ignored, self.dead_lettered + other.dead_lettered,
                       max(self.last_seq, other.last_seq))


async def lock_writers(conn: asyncpg.Connection) -> None:
    """Within a transaction: wait until no other batch (or rebuild) is being written."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITER_LOCK)


async def read_position(pool: asyncpg.Pool, stream: str) -> tuple[int, int]:
    """The epoch and ``stream``'s checkpoint, read once every batch being written has
    committed (a previous writer's last one included)."""
    async with pool.acquire() as conn, conn.transaction():
        await lock_writers(conn)
        row = await conn.fetchrow(_STATE, [stream])
    return row["epoch"], row["last_seq"] or 0


async def read_epoch(pool: asyncpg.Pool) -> int:
    epoch: int = await pool.fetchval("SELECT epoch FROM projection_state")
    return epoch


def prepare(facts: Sequence[Fact]) -> Writes:
    """The rows ``facts`` mean, merged (outside the transaction, so this Python work overlaps
    another batch's round trips to Postgres)."""
    writes = Writes()
    for fact in facts:
        project(fact, writes)
    return writes


@dataclass(eq=False)
class _Batch:
    stream: str
    epoch: int
    facts: Sequence[Fact]
    writes: Writes | None  # prepared from every fact; None: prepare inside
    done: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class BatchWriter:
    def __init__(self, pool: asyncpg.Pool, dead_letter: DeadLetterer, first_after: FirstAfter,
                 timeout_s: float, fence: Fence | None = None) -> None:
        self._pool = pool
        self._fence = fence  # None: a single process, no lease (tests, benchmarks)
        self._dead_letter = dead_letter
        self._first_after = first_after
        self._timeout_s = timeout_s
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def write(self, stream: str, epoch: int, facts: Sequence[Fact],
                    writes: Writes | None = None) -> Outcome:
        """Commit the batch (with whatever else is queued); raises what made it fail."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="projection:writer")
        batch = _Batch(stream, epoch, facts, writes)
        self._queue.put_nowait(batch)
        return await batch.done

    async def write_isolated(self, stream: str, epoch: int, facts: Sequence[Fact]) -> Outcome:
        """One event per transaction; one that Postgres refuses is dead-lettered instead."""
        total = Outcome()
        for fact in facts:
            try:
                total += await self.write(stream, epoch, [fact])
            except DataProblem as exc:
                refused = PoisonFact(fact.raw, "the projection could not store it", str(exc))
                total += await self.write(stream, epoch, [refused])
        return total

    async def stop(self) -> None:
        """Interrupt the transaction under way, if any, and end. The flag, not only the
        cancellation: one can be lost on its way (Python 3.11's ``wait_for`` as its inner
        wait ends, a library's cleanup while Postgres is down) and come out as a failed
        write; without the flag the loop would then wait on its queue for ever."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            group = [await self._queue.get()]
            while not self._queue.empty() and len(group) < MAX_GROUP:
                group.append(self._queue.get_nowait())
            await self._commit_group(group)

    async def _commit_group(self, group: list[_Batch]) -> None:
        try:
            results = await self._commit(group)
        except DataProblem as exc:
            if len(group) == 1:
                _settle(group[0], exc)
                return
            for batch in group:  # which one? each in its own transaction
                await self._commit_group([batch])
            return
        except Exception as exc:  # the database is away, a timeout...: each loop retries
            for batch in group:
                _settle(batch, exc)
            return
        for batch, result in zip(group, results, strict=True):
            _settle(batch, result)

    async def _commit(self, group: list[_Batch]) -> list[Outcome | Exception]:
        results: list[Outcome | Exception] = []
        streams = sorted({b.stream for b in group})
        foreign = None
        waits: list[EndedWait] = []
        async with (
            asyncio.timeout(self._timeout_s),
            self._pool.acquire() as conn,
            conn.transaction(),
        ):
            await lock_writers(conn)
            # After the lock: a writer that took over waits for this transaction to commit
            # before it reads the checkpoints, and this one cannot begin after it took over.
            if self._fence is not None and not await self._fence.held(conn):
                raise LeaseLost
            rows = await conn.fetch(_STATE, streams)
            epoch = rows[0]["epoch"]
            last = {s: 0 for s in streams} | {r["stream"]: r["last_seq"] for r in rows
                                              if r["stream"]}
            prepared: list[Writes] = []
            saves: list[tuple[str, int, int]] = []
            for batch in group:
                if batch.epoch != epoch:
                    results.append(EpochChanged(batch.stream))
                    continue
                fresh = _after(last[batch.stream], batch.facts)
                if fresh and await self._skips_a_message(batch.stream, last[batch.stream],
                                                         fresh[0].raw.seq):
                    results.append(OutOfOrder(batch.stream))
                    continue
                results.append(_outcome(batch.facts, fresh, last[batch.stream]))
                if not fresh:
                    continue
                for fact in fresh:
                    if isinstance(fact, PoisonFact):
                        # Filed before the commit: a retry files it again under the same
                        # Nats-Msg-Id, which the DEADLETTER stream drops as a duplicate.
                        await self._dead_letter(fact)
                whole = batch.writes is not None and len(fresh) == len(batch.facts)
                prepared.append(batch.writes if whole and batch.writes else prepare(fresh))
                last[batch.stream] = fresh[-1].raw.seq
                saves.append((batch.stream, fresh[-1].raw.seq, len(fresh)))
            try:
                for writes in prepared:
                    await writes.flush(conn)
                await recount(conn, set().union(*(w.conversations for w in prepared)))
                foreign = await foreign_statuses(conn, prepared)
                waits = await end_waits(conn, prepared)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                raise DataProblem(f"{exc.sqlstate}: {type(exc).__name__}") from exc
            if saves:
                await conn.executemany(_SAVE, saves)
        if foreign:
            report_foreign_statuses(foreign)
        observe_waits(waits)
        return results


    async def _skips_a_message(self, stream: str, last: int, first: int) -> bool:
        """A gap after the checkpoint is normal when messages were deleted (timers that
        fired, age limits); one that still exists there was never written."""
        if first == last + 1:
            return False
        existing = await self._first_after(stream, last)
        return existing is not None and existing < first


def _settle(batch: _Batch, result: Outcome | Exception) -> None:
    if batch.done.done():
        return
    if isinstance(result, Exception):
        batch.done.set_exception(result)
    else:
        batch.done.set_result(result)


def _after(last: int, facts: Sequence[Fact]) -> list[Fact]:
    """The facts past the checkpoint, once each, in stream order."""
    fresh: dict[int, Fact] = {}
    for fact in facts:
        if fact.raw.seq > last:
            fresh.setdefault(fact.raw.seq, fact)
    return [fresh[seq] for seq in sorted(fresh)]


def _outcome(facts: Sequence[Fact], fresh: Sequence[Fact], last: int) -> Outcome:
    return Outcome(
        applied=sum(isinstance(f, EventFact | DeadLetterFact) for f in fresh),
        skipped=len(facts) - len(fresh),
        ignored=sum(isinstance(f, TimerFact) for f in fresh),
        dead_lettered=sum(isinstance(f, PoisonFact) for f in fresh),
        last_seq=max((f.raw.seq for f in fresh), default=last),
    )
