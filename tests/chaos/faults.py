"""The faults: when each happens (a seeded random schedule) and what each does to the stack,
with how long the stack took to recover from it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from switchboard_devstack.waiting import eventually

from .facts import Poison

SERVICE_KILL = "service_kill"  # kill -9 of one replica; the supervisor restarts it
NATS_LEADER_KILL = "nats_leader_kill"  # kill -9 of the node leading CONVERSATION, restarted
NATS_NODE_KILL = "nats_node_kill"  # kill -9 of another node, restarted
POSTGRES_STOP = "postgres_stop"  # Postgres stopped, started again
POISON = "poison"  # a malformed event published to a stream consumers read
KINDS = (SERVICE_KILL, NATS_LEADER_KILL, NATS_NODE_KILL, POSTGRES_STOP, POISON)
# Where poison goes: each is read by several services' consumers and the projection (the
# first is one of the inbound partitions, which the conversation reads one at a time).
POISON_SUBJECTS = (("GATEWAY", "gateway.7.InboundMessageReceived"),
                   ("AGENT", "agent.ReplyGenerated"))
RECOVERY_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Planned:
    at_s: float
    kind: str
    target: str = ""  # "<service>#<replica number>" for a kill; "<stream> <subject>" of poison


@dataclass
class Fault:
    """What was injected, when (seconds into the load), and how long recovery took."""

    kind: str
    target: str
    at_s: float
    recovery_s: float | None = None
    detail: str = ""


def schedule(kinds: tuple[str, ...], services: tuple[str, ...], replicas: int,
             duration_s: float, seed: int, *, once: bool = False) -> list[Planned]:
    """Random times within the load (none in its first or last tenth). Every replica of every
    service is killed once, or, with ``once``, one replica of the first service; two poison
    events, or one with ``once``."""
    rng = random.Random(seed)

    def some_time(low: float = 0.1, high: float = 0.8) -> float:
        return round(rng.uniform(low * duration_s, high * duration_s), 1)

    planned = []
    if SERVICE_KILL in kinds:
        targets = ([f"{services[0]}#{rng.randint(1, replicas)}"] if once else
                   [f"{name}#{i}" for name in services for i in range(1, replicas + 1)])
        planned += [Planned(some_time(), SERVICE_KILL, target) for target in targets]
    # The two NATS faults in separate halves: never two nodes down at once (quorum is 2 of 3).
    if NATS_LEADER_KILL in kinds:
        planned.append(Planned(some_time(0.1, 0.3), NATS_LEADER_KILL, "CONVERSATION"))
    if NATS_NODE_KILL in kinds:
        planned.append(Planned(some_time(0.5, 0.7), NATS_NODE_KILL))
    if POSTGRES_STOP in kinds:
        planned.append(Planned(some_time(), POSTGRES_STOP))
    if POISON in kinds:
        for stream, subject in POISON_SUBJECTS[:1] if once else POISON_SUBJECTS:
            planned.append(Planned(some_time(), POISON, f"{stream} {subject}"))
    return sorted(planned, key=lambda p: p.at_s)


class Target(Protocol):
    """What the faults act on (``ChaosStack``)."""

    def kill_replica(self, service: str, index: int) -> int: ...
    async def replica_restarted(self, service: str, index: int, old_pid: int) -> bool: ...
    async def kill_nats(self, leader_of: str | None) -> str: ...
    async def start_nats(self, node: str) -> None: ...
    async def streams_led(self) -> bool: ...
    async def nats_healthy(self) -> bool: ...
    async def stop_postgres(self) -> None: ...
    async def start_postgres(self) -> None: ...
    async def service_ready(self, service: str) -> bool: ...
    async def publish(self, stream: str, subject: str, payload: bytes) -> None: ...
    async def dead_lettered_by_every_reader(self, poison: Poison) -> bool: ...


@dataclass
class Injector:
    stack: Target
    clock: Callable[[], float]  # seconds into the load
    nats_down_s: float = 5.0
    postgres_down_s: float = 10.0
    faults: list[Fault] = field(default_factory=list)
    poisons: list[Poison] = field(default_factory=list)
    _locks: defaultdict[str, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock))

    async def run(self, planned: list[Planned]) -> list[Fault]:
        await asyncio.gather(*(self._at(p) for p in planned))
        return self.faults

    async def _at(self, planned: Planned) -> None:
        await asyncio.sleep(max(0.0, planned.at_s - self.clock()))
        # One fault per NATS cluster, per service, at a time: a second one waits for the
        # first to heal (two NATS nodes down would be a lost quorum, not a fault to survive).
        lock = "nats" if planned.kind.startswith("nats") else planned.target.split("#")[0]
        async with self._locks[lock]:
            fault = Fault(planned.kind, planned.target, round(self.clock(), 1))
            self.faults.append(fault)
            try:
                await getattr(self, f"_{planned.kind}")(fault)
            except Exception as exc:  # reported as a fault that did not recover
                fault.recovery_s = None
                fault.detail = f"injection failed: {type(exc).__name__}: {exc}"

    async def _timed(self, fault: Fault, recovered: Callable[[], Awaitable[bool]],
                     started: float) -> None:
        try:
            await eventually(recovered, RECOVERY_TIMEOUT_S, 0.2, f"recovery from {fault.kind}")
        except AssertionError:  # left as None: the summary names the fault that did not heal
            return
        fault.recovery_s = round(time.monotonic() - started, 2)

    async def _service_kill(self, fault: Fault) -> None:
        service, index = fault.target.split("#")
        started = time.monotonic()
        pid = self.stack.kill_replica(service, int(index))
        fault.detail = f"kill -9 of pid {pid}; recovery: restarted and ready"
        await self._timed(fault, lambda: self.stack.replica_restarted(service, int(index), pid),
                          started)

    async def _nats_leader_kill(self, fault: Fault) -> None:
        await self._kill_nats(fault, leader_of=fault.target)

    async def _nats_node_kill(self, fault: Fault) -> None:
        await self._kill_nats(fault, leader_of=None)

    async def _kill_nats(self, fault: Fault, leader_of: str | None) -> None:
        started = time.monotonic()
        node = await self.stack.kill_nats(leader_of)
        fault.target = f"{node}" + (f" (leader of {leader_of})" if leader_of else "")
        await self._timed(fault, self.stack.streams_led, started)
        await asyncio.sleep(max(0.0, self.nats_down_s - (time.monotonic() - started)))
        restarted = time.monotonic()
        await self.stack.start_nats(node)
        with contextlib.suppress(AssertionError):  # the next NATS fault then finds it unhealthy
            await eventually(self.stack.nats_healthy, RECOVERY_TIMEOUT_S, 0.5, "NATS healthy")
        fault.detail = (f"kill -9, restarted after {restarted - started:.1f} s; recovery: every "
                        f"stream led by a live node; whole again {time.monotonic() - restarted:.1f}"
                        " s after the restart")

    async def _postgres_stop(self, fault: Fault) -> None:
        await self.stack.stop_postgres()
        await asyncio.sleep(self.postgres_down_s)  # the outage itself
        started = time.monotonic()
        await self.stack.start_postgres()
        fault.target = "postgres"
        fault.detail = (f"stopped for {self.postgres_down_s:.0f} s; recovery: from its restart "
                        "until every projection replica is ready")
        await self._timed(fault, lambda: self.stack.service_ready("projection"), started)

    async def _poison(self, fault: Fault) -> None:
        stream, subject = fault.target.split(" ")
        payload = f'{{"chaos": "poison {len(self.poisons) + 1}", "at": {fault.at_s}}}'.encode()
        poison = Poison(stream, subject, payload)
        self.poisons.append(poison)
        started = time.monotonic()
        await self.stack.publish(stream, subject, payload)
        fault.detail = "not an envelope; recovery: dead-lettered by every consumer reading it"
        await self._timed(fault, lambda: self.stack.dead_lettered_by_every_reader(poison),
                          started)
