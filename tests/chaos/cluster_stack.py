"""The stack the faults hit: a 3-node NATS cluster with R3 streams and KV buckets, Postgres,
every service as real processes with 2 replicas each (a supervisor restarts a killed one), the
Twilio and LLM simulators, the demo tenant, and a load balancer in front of the gateways."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import nats
from nats.aio.client import Client as NATS
from switchboard_contracts.topology import CONVERSATION, DEADLETTER
from switchboard_devstack import demo
from switchboard_devstack.embedded import free_port
from switchboard_devstack.serving import serve_in_thread
from switchboard_devstack.stack import Stack, bin_path

from . import checks
from .balancer import Balancer
from .collect import dead_letter_facts, durable_consumers, read_stream
from .facts import Facts, Poison

SERVICES = ("gateway", "conversation", "agent", "sender", "transcription", "projection")


def replicated(nats_nodes: int) -> dict[str, str]:
    """Every stream and bucket on every node (up to 3), as in production."""
    replicas = str(min(nats_nodes, 3))
    return {"SB_STREAM_DEFAULT_REPLICAS": replicas, "SB_KV_REPLICAS": replicas,
            "CONVERSATION_VIEW_REPLICAS": replicas, "MESSAGES_KV_REPLICAS": replicas}


# Settings for a busy local run: quiet logs; limits sized for many users behind one address;
# an interrupted send looked up after 20 s rather than 2 minutes.
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

    @property
    def cluster(self):  # type: ignore[no-untyped-def]  # devstack's NatsCluster
        return self.stack.nats

    @property
    def nats_url(self) -> str:
        return str(self.stack.nats.url)

    @property
    def database_url(self) -> str:
        return str(self.stack.postgres.url)

    # -- service replicas --------------------------------------------------------------------
    def kill_replica(self, service: str, index: int) -> int:
        process = self.stack.replicas(service)[index]
        pid = int(process.pid)
        process.kill()
        return pid

    async def _ready(self, process: object) -> bool:
        if not process.alive():  # type: ignore[attr-defined]
            return False
        try:
            response = await self._http.get(f"{process.url}/readyz")  # type: ignore[attr-defined]
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def replica_restarted(self, service: str, index: int, old_pid: int) -> bool:
        process = self.stack.replicas(service)[index]
        return process.pid != old_pid and await self._ready(process)

    async def service_ready(self, service: str) -> bool:
        return all([await self._ready(p) for p in self.stack.replicas(service)])

    async def all_ready(self) -> bool:
        return all([await self.service_ready(name) for name in SERVICES])

    # -- NATS --------------------------------------------------------------------------------
    async def kill_nats(self, leader_of: str | None) -> str:
        cluster = self.cluster
        leader = await asyncio.to_thread(cluster.leader_of, CONVERSATION.name)
        node = leader if leader_of else next(n for n in cluster.nodes if n is not leader)
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
        await self.js.publish(subject, payload, stream=stream, timeout=10.0,
                              headers={"Nats-Msg-Id": str(uuid.uuid4())})

    async def dead_lettered_by_every_reader(self, poison: Poison) -> bool:
        facts = Facts(poisons=[poison],
                      consumers={poison.stream: await durable_consumers(self.js, poison.stream)})
        dead_letter_facts(facts, await read_stream(self.js, DEADLETTER.name))
        return checks.dead_letters(facts)[1].count == 0

    # -- Postgres ----------------------------------------------------------------------------
    async def stop_postgres(self) -> None:
        await asyncio.to_thread(self.stack.postgres.stop)

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.stack.postgres.start)

    async def pool(self) -> asyncpg.Pool:
        return await asyncpg.create_pool(self.database_url, min_size=1, max_size=2)

    def restarts(self) -> dict[str, int]:
        return dict(self.stack.restarts)


def _compose(stack: Stack, tenant: demo.Demo, balancer_url: str, replicas: int,
             nats_nodes: int) -> tuple[str, str]:
    """Every process; answers the simulators' URLs."""
    sim_port, llm_port = free_port(), free_port()
    sim_url, llm_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{llm_port}"
    # Twilio retries a webhook 5 times on a 5xx or a refused connection (URL fragment).
    webhook = f"{balancer_url}/twilio/whatsapp/inbound#rc=5&rp=5xx,ct"
    config = tenant.simulator_config(stack.root / "simulator.json", webhook)
    stack.add("twilio-sim", [bin_path("twilio-sim"), "--port", str(sim_port),
                             "--config", str(config)], sim_port)
    stack.add("llm-sim", [bin_path("llm-sim"), "--port", str(llm_port)], llm_port)
    common = {"SB_TENANT_KEYS": tenant.tenant_key, **replicated(nats_nodes), **TUNING}
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


@contextlib.asynccontextmanager
async def started(root: Path, *, replicas: int = 2, nats_nodes: int = 3,
                  llm_delay_s: float = 1.0) -> AsyncIterator[ChaosStack]:
    """The whole stack, ready; stopped (every process, then the servers) at the end."""
    os.environ.update(replicated(nats_nodes))  # for the tenant directory this process writes
    stack_ref: list[Stack] = []
    with _balancer(stack_ref) as balancer_url:
        stack = Stack.prepare(root, cluster=True)
        stack_ref.append(stack)
        try:
            await asyncio.to_thread(stack.start_servers)
            tenant = demo.Demo.load_or_create(stack.root)
            await tenant.register(stack.postgres.url, stack.nats.url)
            sim_url, llm_url = _compose(stack, tenant, balancer_url, replicas, nats_nodes)
            await asyncio.to_thread(stack.start_processes)
            stack.supervise_in_thread()
            # Replies take a while, so users write again while one is in flight.
            async with httpx.AsyncClient() as http:
                await http.post(f"{llm_url}/sim/delay", json={"seconds": llm_delay_s})
            nc = await nats.connect(servers=stack.nats.url.split(","),
                                    max_reconnect_attempts=-1, reconnect_time_wait=0.2)
            chaos = ChaosStack(stack, tenant, balancer_url, sim_url, llm_url, nc)
            try:
                yield chaos
            finally:
                await chaos._http.aclose()
                await nc.close()
        finally:
            await asyncio.to_thread(stack.stop)
