"""One fault-suite run: start the stack, load it while injecting faults, let it settle, check.

    python -m tests.chaos                                  # make chaos: 180 s, 16 users
    python -m tests.chaos --duration 30 --users 6 --once   # one fault of each kind
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from nats.js import JetStreamContext
from projection.consumer import caught_up
from projection.readmodels import TABLES
from projection.rebuild import rebuild
from projection.settings import ProjectionSettings
from switchboard_contracts.topology import ALL_STREAMS
from switchboard_devstack.demo import NUMBER, OPERATOR, TENANT_ID
from switchboard_devstack.waiting import eventually
from twilio_sim.client import SimClient

from . import checks, cluster_stack
from .collect import collect, lag
from .faults import KINDS, Injector, schedule
from .load import Load, LoadPlan, voice_clips
from .operators import Operator
from .polling import settles
from .report import RESULTS, Outcome

Snapshot = dict[str, list[dict[str, Any]]]
REBUILD_TIMEOUT_S = 120.0


@dataclass
class Options:
    duration_s: float = 180.0
    users: int = 16
    seed: int = 1
    stop_users: int = 3  # of ``users``: some write STOP (and START), some ask for a person
    handoff_users: int = 3
    faults: tuple[str, ...] = KINDS
    services: tuple[str, ...] = cluster_stack.SERVICES  # whose replicas get killed
    once: bool = False  # one fault of each kind (the short run in make test)
    replicas: int = 2
    nats_nodes: int = 3
    max_messages: int = 5000
    settle_timeout_s: float = 300.0
    output: Path | None = RESULTS
    state: Path | None = None  # where the stack keeps its data and logs (default: a temp dir)
    settings: dict[str, Any] = field(default_factory=dict)


async def run(options: Options) -> Outcome:
    root = options.state or Path(tempfile.mkdtemp(prefix="sb-chaos-"))
    timings: dict[str, float] = {}
    began = time.monotonic()
    clips = await asyncio.to_thread(voice_clips)
    async with cluster_stack.started(root, replicas=options.replicas,
                                     nats_nodes=options.nats_nodes) as stack:
        await eventually(stack.all_ready, 180, 0.5, "every replica ready")
        timings["start"] = round(time.monotonic() - began, 1)
        progress(f"stack ready after {timings['start']} s (state and logs: {root}); load for "
                 f"{options.duration_s:.0f} s from {options.users} users")
        operator = Operator(stack.nc, lambda: stack.urls("projection"),
                            stack.tenant.operator_key, TENANT_ID, OPERATOR)
        async with SimClient(stack.sim_url) as sim, contextlib.aclosing(operator):
            load = Load(sim, NUMBER, LoadPlan(
                options.users, options.duration_s, options.max_messages, options.seed,
                stop_users=options.stop_users, handoff_users=options.handoff_users),
                clips, operator)
            injector = Injector(stack, load.elapsed)
            planned = schedule(options.faults, options.services, options.replicas,
                               options.duration_s, options.seed, once=options.once)
            sent, faults, _ = await asyncio.gather(
                load.run(), injector.run(planned),
                stack.long_replies(lambda: load.elapsed() > options.duration_s))
            timings["load"] = round(load.elapsed(), 1)
            progress(f"load and faults done after {timings['load']} s; settling")
            stuck = checks.Finding("lag_not_zero")
            try:
                timings["settle"] = round(await settle(stack, sim, options.settle_timeout_s), 1)
            except (AssertionError, TimeoutError):  # checked all the same: the facts tell
                for consumer, behind in (await lag(stack.js)).items():
                    if behind:
                        stuck.add(consumer, f"{behind} messages not delivered or not "
                                  f"acknowledged after {options.settle_timeout_s:.0f} s", behind)
            progress(f"settled after {timings.get('settle')} s; checking")
            facts = await collect(stack.js, sim, sent, injector.poisons, TENANT_ID,
                                  operator.actions)
            # Everything the checks saw, for a post-mortem beside the services' logs.
            (root / "facts.json").write_text(json.dumps(asdict(facts), default=repr))
        findings = [stuck, *checks.all_findings(facts)]
        started = time.monotonic()
        findings.append(await compare_with_rebuild(stack))
        timings["rebuild"] = round(time.monotonic() - started, 1)
        restarts = stack.restarts()
    settings = {"duration_s": options.duration_s, "users": options.users, "seed": options.seed,
                "stop_users": options.stop_users, "handoff_users": options.handoff_users,
                "nats_nodes": options.nats_nodes, "replicas": options.replicas,
                "voice_notes": bool(clips), **options.settings}
    timings["total"] = round(time.monotonic() - began, 1)
    outcome = Outcome(settings, facts, findings, faults, timings, restarts)
    if options.output is not None:
        outcome.write(options.output)
    return outcome


def progress(line: str) -> None:
    print(f"chaos: {line}", file=sys.stderr, flush=True)


async def quiet_for(js: JetStreamContext) -> float:
    """Longer than any durable consumer's ack wait: whatever a crash left unacknowledged has
    been delivered again by then."""
    longest = 0.0
    for spec in ALL_STREAMS:
        for info in await js.consumers_info(spec.name):
            if info.config.durable_name:
                longest = max(longest, info.config.ack_wait or 0.0)
    return longest + 5.0


async def settle(stack: cluster_stack.ChaosStack, sim: SimClient, timeout_s: float) -> float:
    """Until every consumer's lag is 0 and nothing changes (streams, Messages API calls)
    for longer than the redelivery delay; answers how long that took."""
    started = time.monotonic()

    async def fingerprint() -> tuple[object, ...]:
        behind = await lag(stack.js)
        heads = [(await stack.js.stream_info(spec.name)).state.last_seq for spec in ALL_STREAMS]
        calls = len((await sim.messages())["attempts"])
        return (sum(behind.values()), tuple(heads), calls)

    async def lag_is_zero() -> bool:
        return sum((await lag(stack.js)).values()) == 0

    quiet_s = await quiet_for(stack.js)
    while True:
        remaining = timeout_s - (time.monotonic() - started)
        await eventually(lag_is_zero, remaining, 0.5, "every consumer's lag back to 0")
        await settles(fingerprint, quiet_s, timeout_s - (time.monotonic() - started),
                      "streams and Messages API calls")
        if await lag_is_zero():
            return time.monotonic() - started


async def snapshot(pool: asyncpg.Pool) -> Snapshot:
    return {table.name: [dict(row) for row in await pool.fetch(
        f"SELECT * FROM {table.name} ORDER BY {', '.join(table.key)}")]  # noqa: S608
        for table in TABLES}


async def compare_with_rebuild(stack: cluster_stack.ChaosStack) -> checks.Finding:
    """The read models the running projection built, against a rebuild from the streams
    (while the projection replicas run: they notice the rebuild and replay too)."""
    pool = await stack.pool()
    started = time.monotonic()
    try:
        before = await snapshot(pool)
        settings = ProjectionSettings(database_url=stack.database_url, nats_url=stack.nats_url,
                                      http_port=0)
        try:
            await rebuild(stack.nc, pool, settings, timeout_s=REBUILD_TIMEOUT_S)

            async def caught_up_and_same() -> tuple[bool, Snapshot]:
                return await caught_up(stack.js), await snapshot(pool)

            await settles(caught_up_and_same, 6.0, REBUILD_TIMEOUT_S,
                          "the projection after the rebuild")
        except TimeoutError as exc:  # the deadline, or a NATS request timing out on the way
            finding = checks.Finding("read_model_mismatches")
            finding.add("rebuild_did_not_catch_up", f"{type(exc).__module__}."
                        f"{type(exc).__name__} after {time.monotonic() - started:.0f} s "
                        f"(deadline {REBUILD_TIMEOUT_S:.0f} s)")
            return finding
        return checks.differing_rows(before, await snapshot(pool))
    finally:
        await pool.close()


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stop-users", type=int, default=3,
                        help="of --users: how many write STOP (and START) now and then")
    parser.add_argument("--handoff-users", type=int, default=3,
                        help="of --users: how many ask for a person now and then")
    parser.add_argument("--faults", default=",".join(KINDS),
                        help=f"comma-separated, of: {', '.join(KINDS)}")
    parser.add_argument("--services", default=",".join(cluster_stack.SERVICES),
                        help="whose replicas get killed")
    parser.add_argument("--once", action="store_true",
                        help="one fault of each kind (one replica of the first service)")
    parser.add_argument("--max-messages", type=int, default=5000)
    parser.add_argument("--settle-timeout", type=float, default=300.0,
                        help="seconds to wait for every consumer's lag to be back to 0")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--state", type=Path, default=None,
                        help="keep the stack's data and logs there")
    args = parser.parse_args(argv)
    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = set(faults) - set(KINDS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    return Options(duration_s=args.duration, users=args.users, seed=args.seed,
                   stop_users=args.stop_users, handoff_users=args.handoff_users, faults=faults,
                   services=tuple(s for s in args.services.split(",") if s), once=args.once,
                   max_messages=args.max_messages, settle_timeout_s=args.settle_timeout,
                   output=args.output, state=args.state)


def main(argv: list[str] | None = None) -> int:
    outcome = asyncio.run(run(parse(sys.argv[1:] if argv is None else argv)))
    print(outcome.summary())
    return 0 if outcome.passed else 1
