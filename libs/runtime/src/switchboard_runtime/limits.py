"""Rate limits that hold across replicas, without a round trip per decision (docs/adr/0015).

Every replica counts hits locally and, every ``sync_interval_s`` in the background, adds its
unsynced hits to a JetStream distributed counter (ADR-49, server 2.12+: a publish with
``Nats-Incr: +<delta>`` to a stream with ``allow_msg_counter``; the PubAck carries the
subject's new total, so the same message teaches the replica what the others counted; keys
only consulted are synced with ``+0`` to learn theirs). One
subject per (scope, window length, window, key digest):
``limits.<service>.<scope>.<window_s>s.<window index>.<digest>``.

A sync is one batch: every due key's increment is published at once, each with its own reply
subject under one inbox subscription, and the batch waits for all the PubAcks together (no
request, task or timer per key). A previous window is synced only if this replica counted in
it or a decision on that key had to wait for a sync: a key seen for the first time costs one
increment, not two.

A decision is the sliding-window-counter estimate (the previous window's total weighted by
how much of it still overlaps, plus the current window's total), each total being the global
one at the last sync plus the hits this replica has not synced yet. A replica may admit at
most ``burst`` unsynced hits per key (what the rate allows in one sync interval, at least 1);
the next decision on that key first syncs it (a round trip, for that bursting key only). So
across R replicas a window admits at most ``amount + R x burst``.

When NATS is unreachable (not connected, or a sync fails or times out) decisions are local:
each replica holds the full limit on its own, as the per-replica limiter did, and its unsynced
hits are added to the shared count once NATS is back (while their window still matters).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from prometheus_client import Counter
from pydantic_settings import BaseSettings, SettingsConfigDict

from .bus.streams import StreamOverrides
from .service import Service
from .telemetry import get_logger

log = get_logger(__name__)

SYNC_FAILURES = Counter(
    "switchboard_limits_sync_failures_total",
    "Syncs of shared rate-limit counters that failed (decisions were local meanwhile)",
    ["service"],
)
WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$", re.I)


@dataclass(frozen=True, slots=True)
class Rate:
    amount: int
    window_s: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"20/minute"``, ``"300 per second"``, ``"5/10 seconds"``."""
        match = _RATE.match(text)
        if match is None or int(match[1]) < 1:
            raise ValueError(f"not a rate: {text!r} (expected e.g. 20/minute)")
        return cls(int(match[1]), int(match[2] or 1) * WINDOWS[match[3].lower()])

    def burst(self, sync_interval_s: float) -> int:
        """Unsynced hits a replica may admit per key: what the rate allows in one interval."""
        return max(1, math.ceil(self.amount * sync_interval_s / self.window_s))


@dataclass(slots=True)
class _Count:
    synced: int = 0  # the global total at the last sync (our synced hits included)
    in_flight: int = 0  # hits being added by a sync not yet answered
    pending: int = 0  # hits counted here and not sent yet
    known: bool = False  # synced at least once
    consulted: bool = False  # decided on since the last sync: learn its total again

    @property
    def total(self) -> int:
        return self.synced + self.in_flight + self.pending


_Key = tuple[str, int, int, str]  # scope, window_s, window index, digest


class _Batch:
    """One sync's increments, answered by PubAcks in any order."""

    def __init__(self, size: int) -> None:
        self.totals: list[int | None] = [None] * size
        self.unanswered = size
        self.no_responders = False  # the stream is gone (a memory stream after a restart)
        self.error = ""  # why the batch ended early: not sent, or timed out
        self.done = asyncio.get_running_loop().create_future()

    def answer(self, index: int, msg: Msg) -> None:
        if self.totals[index] is not None:
            return
        try:
            self.totals[index] = int(json.loads(msg.data)["val"])
        except Exception:  # an error answer (status header or JetStream error): failed
            self.no_responders |= (msg.headers or {}).get("Status") == "503"
        self.unanswered -= 1
        if self.unanswered == 0 and not self.done.done():
            self.done.set_result(None)


class SharedCounters:
    """The counters of one service's limits, in its ``LIMITS_<SERVICE>`` counter stream."""

    def __init__(self, nc: NATS, service: str, *, sync_interval_s: float = 0.2,
                 timeout_s: float = 0.5, max_age_s: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._nc = nc
        self._service = service
        self.stream = f"LIMITS_{service.upper()}"
        self.sync_interval_s = sync_interval_s
        self._timeout_s = timeout_s  # a decision's sync; the background's may take longer
        self._background_timeout_s = max(timeout_s, 5 * sync_interval_s)
        self._max_age_s = max_age_s
        self._clock = clock  # wall clock: every replica must agree on window boundaries
        self._counts: dict[_Key, _Count] = {}
        self._syncing: dict[_Key, asyncio.Task[None]] = {}  # key -> the batch syncing it
        self._batches: dict[int, _Batch] = {}  # by batch number, until answered or timed out
        self._batch_numbers = itertools.count()
        self._inbox = ""
        self._answers: Subscription | None = None
        self._local_until = 0.0  # after a failed sync, decide locally until then
        self._task: asyncio.Task[None] | None = None
        self._stream_missing = False

    async def start(self) -> None:
        await self._ensure_stream()
        self._inbox = self._nc.new_inbox()
        self._answers = await self._nc.subscribe(f"{self._inbox}.*.*", cb=self._answered)
        self._task = asyncio.create_task(self._run(), name=f"limits-sync-{self._service}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._shared():  # the last hits, so other replicas still see them
            await self._sync(self._due())
        if self._answers is not None:
            with contextlib.suppress(Exception):  # a closed connection has no subscription
                await self._answers.unsubscribe()

    def limit(self, scope: str, rate: Rate, *, burst: int | None = None) -> SharedLimit:
        """``burst``: unsynced hits per key before a decision waits for a sync (default: what
        the rate allows in one sync interval); 1 when a round trip per hit is affordable."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", scope):
            raise ValueError(f"scope {scope!r} must be one subject token")
        return SharedLimit(self, scope, rate, burst or rate.burst(self.sync_interval_s))

    # -- counting (SharedLimit's side) ---------------------------------------------------------
    def _keys(self, scope: str, rate: Rate, key: str) -> tuple[_Key, _Key, float]:
        """The current and previous windows' keys, and how much of the previous one counts."""
        now = self._clock()
        index = int(now // rate.window_s)
        digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()  # no raw key out
        weight = 1.0 - (now - index * rate.window_s) / rate.window_s
        return ((scope, rate.window_s, index, digest), (scope, rate.window_s, index - 1, digest),
                weight)

    def _count(self, key: _Key) -> _Count:
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = _Count()
        return count

    def _estimate(self, scope: str, rate: Rate, key: str) -> tuple[float, _Count]:
        current, previous, weight = self._keys(scope, rate, key)
        count = self._count(current)
        count.consulted = True
        # Not created when absent: a previous window this replica never counted in is synced
        # only when a decision on this key waits for a sync (_sync_now).
        before = self._counts.get(previous)
        return (before.total * weight if before else 0.0) + count.total, count

    def _add(self, scope: str, rate: Rate, key: str, hits: int) -> None:
        current, _, _ = self._keys(scope, rate, key)
        self._count(current).pending += hits

    async def _sync_now(self, scope: str, rate: Rate, key: str) -> None:
        """Sync this key's windows before a decision (its unsynced budget is spent)."""
        current, previous, _ = self._keys(scope, rate, key)
        await self._sync([current, previous])

    # -- syncing -------------------------------------------------------------------------------
    def _shared(self) -> bool:
        """Whether decisions may wait for a sync (else they are local)."""
        return self._nc.is_connected and time.monotonic() >= self._local_until

    def _due(self) -> list[_Key]:
        return [key for key, count in self._counts.items()
                if count.pending or count.consulted or not count.known]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval_s)
            self._forget_old()
            if self._stream_missing and self._nc.is_connected:
                with contextlib.suppress(Exception):  # tried again on the next round
                    await self._ensure_stream()
                    self._stream_missing = False
            if self._shared():
                await self._sync(self._due(), self._background_timeout_s)

    async def _sync(self, keys: Iterable[_Key], timeout_s: float | None = None) -> None:
        batch: list[_Key] = []
        waits: set[asyncio.Task[None]] = set()
        for key in keys:
            syncing = self._syncing.get(key)
            if syncing is None:  # one sync per key at a time; later callers wait for it
                batch.append(key)
            else:
                waits.add(syncing)
        if batch:
            task = asyncio.create_task(self._sync_batch(batch, timeout_s or self._timeout_s))
            for key in batch:
                self._syncing[key] = task
            task.add_done_callback(lambda _: self._forget_syncing(batch))
            waits.add(task)
        if waits:
            await asyncio.gather(*waits)

    def _forget_syncing(self, keys: list[_Key]) -> None:
        for key in keys:
            self._syncing.pop(key, None)

    async def _sync_batch(self, keys: list[_Key], timeout_s: float) -> None:
        """Adds every key's unsynced hits in one batch of publishes; learns their totals."""
        counts = [self._count(key) for key in keys]
        deltas = [count.pending for count in counts]
        for count, delta in zip(counts, deltas, strict=True):
            count.pending, count.consulted = 0, False
            count.in_flight += delta
        number = next(self._batch_numbers)
        batch = self._batches[number] = _Batch(len(keys))
        try:
            for index, ((scope, window_s, window, digest), delta) in enumerate(
                    zip(keys, deltas, strict=True)):
                await self._nc.publish(
                    f"limits.{self._service}.{scope}.{window_s}s.{window}.{digest}",
                    reply=f"{self._inbox}.{number}.{index}",
                    headers={"Nats-Incr": f"{delta:+d}"})
            await asyncio.wait_for(batch.done, timeout_s)
        except Exception as exc:  # not sent, or not all answered in time: those fail below
            batch.error = type(exc).__name__
        finally:
            del self._batches[number]
            for count, delta in zip(counts, deltas, strict=True):
                count.in_flight -= delta
        failed = 0
        for count, delta, total in zip(counts, deltas, batch.totals, strict=True):
            if total is None:
                count.pending += delta  # added again by a later sync, while it matters
                failed += 1
            else:
                count.synced = total  # one sync per key at a time: answers come in order
                count.known = True
        if failed:
            self._failed(batch)

    async def _answered(self, msg: Msg) -> None:
        _, number, index = msg.subject.rsplit(".", 2)
        batch = self._batches.get(int(number))
        if batch is not None:  # else answered after its batch timed out: ignored
            batch.answer(int(index), msg)

    def _failed(self, batch: _Batch) -> None:
        """Decide locally for a while; a memory stream lost with a single server's restart
        is created again on the next round."""
        self._stream_missing |= batch.no_responders
        SYNC_FAILURES.labels(self._service).inc()
        if self._shared():  # once per episode, not once per key
            log.warning("shared rate-limit sync failed: deciding per replica",
                        error=batch.error or "error answer")
        self._local_until = time.monotonic() + self.sync_interval_s

    def _forget_old(self) -> None:
        now = self._clock()
        for key in [k for k in self._counts if (k[2] + 2) * k[1] <= now]:
            if key not in self._syncing:
                del self._counts[key]

    async def _ensure_stream(self) -> None:
        own = StreamOverrides(_env_prefix=f"SB_STREAM_{self.stream}_")
        default = StreamOverrides(_env_prefix="SB_STREAM_DEFAULT_")
        replicas = own.replicas or default.replicas or 1
        config = StreamConfig(
            name=self.stream, subjects=[f"limits.{self._service}.>"],
            description=f"Shared rate-limit counters of the {self._service} (one per window)",
            allow_msg_counter=True, storage=StorageType.MEMORY, max_msgs_per_subject=1,
            max_age=self._max_age_s, num_replicas=replicas, allow_direct=True,
        )
        js = self._nc.jetstream()
        try:
            await js.update_stream(config)
        except (NotFoundError, BadRequestError):
            await js.add_stream(config)


class SharedLimit:
    """One rate per key, e.g. 20/minute per (tenant, sender), held across replicas."""

    def __init__(self, counters: SharedCounters, scope: str, rate: Rate, burst: int) -> None:
        self._counters = counters
        self.scope = scope
        self.rate = rate
        self.burst = burst

    async def allowed(self, key: str) -> bool:
        """Whether one more hit fits, without counting it."""
        return (await self._fits(key)) is not None

    def count(self, key: str, hits: int = 1) -> None:
        """Count hits now (locally; the next sync shares them); negative gives hits back."""
        self._counters._add(self.scope, self.rate, key, hits)

    async def hit(self, key: str) -> bool:
        """Count one hit if it fits; answers whether it did."""
        count = await self._fits(key)
        if count is None:
            return False
        count.pending += 1  # the current window's, as just estimated: its key derived once
        return True

    async def _fits(self, key: str) -> _Count | None:
        """The current window's count if one more hit fits, else None."""
        estimate, count = self._counters._estimate(self.scope, self.rate, key)
        # Hits admitted by others while this one waited are not in that sync: until the
        # unsynced hits are under the burst again (or the sync fails and decisions go local).
        while count.pending >= self.burst and self._counters._shared():
            await self._counters._sync_now(self.scope, self.rate, key)
            estimate, count = self._counters._estimate(self.scope, self.rate, key)
        return count if estimate + 1 <= self.rate.amount else None


class LimitSettings(BaseSettings):
    """``LIMITS_SYNC_INTERVAL_S`` and ``LIMITS_SYNC_TIMEOUT_S``, for every service's limits."""

    model_config = SettingsConfigDict(env_prefix="LIMITS_", extra="ignore")

    sync_interval_s: float = 0.2
    sync_timeout_s: float = 0.5


async def attach_limits(svc: Service, settings: LimitSettings | None = None) -> SharedCounters:
    """The service's shared counters, started now and stopped (last hits synced) with it."""
    settings = settings or LimitSettings()
    counters = SharedCounters(svc.nc, svc.name,
                              sync_interval_s=settings.sync_interval_s,
                              timeout_s=settings.sync_timeout_s)
    await counters.start()

    @svc.on_stop
    async def stop_counters(_: Service) -> None:
        await counters.stop()

    return counters
