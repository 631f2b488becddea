"""The stack the faults hit: a 3-node NATS cluster with R3 streams and KV buckets, Postgres,
every service as real processes with 2 replicas each (a supervisor restarts a killed one), the
Twilio and LLM simulators, the demo tenant, and a load balancer in front of the gateways."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import nats
import nats.errors
from nats.aio.client import Client as NATS
from switchboard_contracts.topology import CONVERSATION, DEADLETTER
from switchboard_devstack import demo
from switchboard_devstack.embedded import NatsCluster, free_port
from switchboard_devstack.serving import serve_in_thread
from switchboard_devstack.stack import Process, Stack, bin_path
from switchboard_devstack.waiting import eventually

from . import checks
from .balancer import Balancer
from .collect import dead_letter_facts, durable_consumers, read_stream
from .facts import Facts, Poison

LONG_REPLY_CHARS = 2500  # WhatsApp parts hold at most 1600 characters
# What a NATS call may raise while a node is down or a leader is being elected.
NATS_TROUBLE = (nats.errors.Error, TimeoutError, OSError)
SERVICES = ("gateway", "conversation", "agent", "sender", "transcription", "projection")


# Settings for a busy local run: quiet logs; limits sized for many users behind one address;
# an interrupted send looked up after 20 s rather than 2 minutes (every bucket's replicas
# follow SB_KV_REPLICAS, set by the cluster stack).
TUNING = {"LOG_LEVEL": "WARNING", "SENDER_RATE_LIMIT": "600/minute",
          "IP_RATE_LIMIT": "2000/second", "IN_FLIGHT_GUARD_S": "20"}


class ChaosStack:
    """Implements ``faults.Target``."""

    def __init__(self, stack: Stack, tenant: demo.Demo, gateway_url: str, sim_url: str,
                 llm_url: str, nc: NATS) -> None:
        self.stack, self.tenant, self.nc = stack, tenant, nc
        self.js = nc.jetstream()
        self.gateway_url, self.sim_url, self.llm_url = gateway_url, sim_url, llm_url
        self._http = httpx.AsyncClient(timeout=2.0)
        self.nats_killed: list[str] = []

    @property
    def cluster(self) -> NatsCluster:
        assert isinstance(self.stack.nats, NatsCluster), "the faults need a NATS cluster"
        return self.stack.nats

    @property
    def nats_url(self) -> str:
        return str(self.stack.nats.url)

    @property
    def database_url(self) -> str:
        return str(self.stack.postgres.url)

    # -- service replicas --------------------------------------------------------------------
    def _replica(self, service: str, number: int) -> Process:
        return next(p for p in self.stack.replicas(service) if p.replica == number)

    def kill_replica(self, service: str, number: int) -> int:
        process = self._replica(service, number)
        pid = process.pid
        assert pid is not None, f"{process.label} is not running"
        process.kill()
        return int(pid)

    async def _ready(self, process: Process) -> bool:
        if not process.alive():
            return False
        try:
            response = await self._http.get(f"{process.url}/readyz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def urls(self, service: str) -> list[str]:
        """The service's replicas' base URLs now (they change on restarts)."""
        return [str(p.url) for p in self.stack.replicas(service)]

    async def replica_restarted(self, service: str, number: int, old_pid: int) -> bool:
        process = self._replica(service, number)
        return process.pid != old_pid and await self._ready(process)

    async def service_ready(self, service: str) -> bool:
        return all([await self._ready(p) for p in self.stack.replicas(service)])

    async def all_ready(self) -> bool:
        return all([await self.service_ready(name) for name in SERVICES])

    # -- NATS --------------------------------------------------------------------------------
    async def kill_nats(self, leader_of: str | None) -> str:
        cluster = self.cluster
        leader = await asyncio.to_thread(cluster.leader_of, CONVERSATION.name)
        # "Another node": neither the leader nor, when possible, a node killed before.
        others = [n for n in cluster.nodes if n is not leader]
        fresh = [n for n in others if n.name not in self.nats_killed]
        node = leader if leader_of else (fresh or others)[0]
        self.nats_killed.append(node.name)
        node.kill()
        return str(node.name)

    async def start_nats(self, node: str) -> None:
        await asyncio.to_thread(self.cluster.node(node).start)

    async def streams_led(self) -> bool:
        """Every stream has a leader, as a live node itself reports it."""
        def led() -> bool:
            cluster = self.cluster
            details = {n.name: cluster.stream_details(n) for n in cluster.nodes if n.alive()}
            streams = {name for found in details.values() for name in found}
            return all(any(found.get(s, {}).get("cluster", {}).get("leader") == node
                           for node, found in details.items()) for s in streams)
        return await asyncio.to_thread(led)

    async def nats_healthy(self) -> bool:
        try:
            await asyncio.to_thread(self.cluster.wait_healthy, 1.0)
        except TimeoutError:
            return False
        return True

    async def publish(self, stream: str, subject: str, payload: bytes) -> None:
        """Published once, whatever the cluster is going through: retried with the same
        ``Nats-Msg-Id`` until the stream answers (its duplicate window decides)."""
        headers = {"Nats-Msg-Id": str(uuid.uuid4())}

        async def published() -> bool:
            try:
                await self.js.publish(subject, payload, stream=stream, timeout=5.0,
                                      headers=headers)
            except NATS_TROUBLE:
                return False
            return True

        await eventually(published, 60.0, interval_s=0.5, what=f"publishing to {stream}")

    async def dead_lettered_by_every_reader(self, poison: Poison) -> bool:
        try:
            readers = await durable_consumers(self.js, poison.stream)
            stored = await read_stream(self.js, DEADLETTER.name)
        except NATS_TROUBLE:
            return False
        facts = Facts(poisons=[poison], consumers={poison.stream: readers})
        dead_letter_facts(facts, stored)
        return checks.dead_letters(facts)[1].count == 0

    # -- the LLM simulator -------------------------------------------------------------------
    async def long_replies(self, until: Callable[[], bool], every_s: float = 4.0) -> None:
        """Now and then the next answer is long enough for 2 WhatsApp parts (so part order is
        checked too), until ``until()``."""
        while not until():
            with contextlib.suppress(httpx.HTTPError):
                await self._http.post(f"{self.llm_url}/sim/reply",
                                      json={"length": LONG_REPLY_CHARS, "count": 1})
            await asyncio.sleep(every_s)

    # -- Postgres ----------------------------------------------------------------------------
    async def stop_postgres(self) -> None:
        await asyncio.to_thread(self.stack.postgres.stop)

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.stack.postgres.start)

    async def pool(self) -> asyncpg.Pool:
        return await asyncpg.create_pool(self.database_url, min_size=1, max_size=2)

    def restarts(self) -> dict[str, int]:
        return dict(self.stack.restarts)


def _compose(stack: Stack, tenant: demo.Demo, balancer_url: str, replicas: int
             ) -> tuple[str, str]:
    """Every process; answers the simulators' URLs."""
    sim_port, llm_port = free_port(), free_port()
    sim_url, llm_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{llm_port}"
    # Twilio retries a webhook 5 times on a 5xx or a refused connection (URL fragment).
    webhook = f"{balancer_url}/twilio/whatsapp/inbound#rc=5&rp=5xx,ct"
    config = tenant.simulator_config(stack.root / "simulator.json", webhook)
    stack.add("twilio-sim", [bin_path("twilio-sim"), "--port", str(sim_port),
                             "--config", str(config)], sim_port)
    stack.add("llm-sim", [bin_path("llm-sim"), "--port", str(llm_port)], llm_port)
    common = {"SB_TENANT_KEYS": tenant.tenant_key, **TUNING}
    extra = {
        "gateway": {"PUBLIC_BASE_URL": balancer_url},
        "agent": {"OPENAI_BASE_URL": f"{llm_url}/v1", "OPENAI_API_KEY": "sk-chaos-not-a-key"},
        "sender": {"GATEWAY_PUBLIC_URL": balancer_url, "TWILIO_API_BASE_URL": sim_url},
        "transcription": {"MEDIA_ALLOWED_HOSTS": f"127.0.0.1:{sim_port}"},
    }
    for name in SERVICES:
        stack.add(name, [bin_path(f"switchboard-{name}")], free_port(), replicas=replicas,
                  **common, **extra.get(name, {}))
    return sim_url, llm_url


@contextlib.contextmanager
def _balancer(stack_ref: list[Stack]) -> Iterator[str]:
    def gateways() -> list[str]:
        return [p.url for p in stack_ref[0].replicas("gateway")] if stack_ref else []
    with serve_in_thread(Balancer(gateways)) as url:
        yield url


async def _expected(error: Exception) -> None:
    """Disconnections are what the faults do: nothing to report."""


@contextlib.asynccontextmanager
async def started(root: Path, *, replicas: int = 2, nats_nodes: int = 3,
                  llm_delay_s: float = 1.0) -> AsyncIterator[ChaosStack]:
    """The whole stack, ready; stopped (every process, then the servers) at the end."""
    stack_ref: list[Stack] = []
    with _balancer(stack_ref) as balancer_url:
        stack = Stack.prepare(root, cluster=nats_nodes > 1)
        stack_ref.append(stack)
        # The tenant directory this process writes, replicated as the services' buckets are;
        # put back afterwards, since this process may go on to run single-node tests.
        saved = {name: os.environ.get(name) for name in stack.replica_settings}
        os.environ.update(stack.replica_settings)
        try:
            await asyncio.to_thread(stack.start_servers)
            tenant = demo.Demo.load_or_create(stack.root)
            await tenant.register(stack.postgres.url, stack.nats.url)
            sim_url, llm_url = _compose(stack, tenant, balancer_url, replicas)
            # Started under supervision rather than with start_processes, which gives up when
            # one exits early: 12 services creating R3 streams at once on a busy machine can
            # time out, and the restart is what production would do (counted in restarts).
            for process in stack.processes:
                process.start(stack.env, stack.root / "logs")
            stack.supervise_in_thread()
            for simulator in ("twilio-sim", "llm-sim"):
                await asyncio.to_thread(stack.replicas(simulator)[0].wait_listening,
                                        stack.root / "logs")
            # Replies take a while, so users write again while one is in flight.
            async with httpx.AsyncClient() as http:
                await http.post(f"{llm_url}/sim/delay", json={"seconds": llm_delay_s})
            nc = await nats.connect(servers=stack.nats.url.split(","), error_cb=_expected,
                                    max_reconnect_attempts=-1, reconnect_time_wait=0.2)
            chaos = ChaosStack(stack, tenant, balancer_url, sim_url, llm_url, nc)
            try:
                yield chaos
            finally:
                await chaos._http.aclose()
                await nc.close()
        finally:
            await asyncio.to_thread(stack.stop)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
