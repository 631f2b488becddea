"""End to end: webhook to Messages API call, against a raw nats-py relay over as many hops.

Every service runs as its own process (1 or 2 replicas each), with an instant LLM (llm-sim)
and the Twilio simulator, on one nats-server. The load is an open loop of signed webhooks,
each from a new WhatsApp user (no coalescing), at a fixed rate. Latency runs from the webhook
POST to the simulator receiving the Messages API call; the time in each hop comes from the
events' ``occurred_at``. The relay baseline publishes to a stream, and three raw nats-py
workers each consume and publish to the next stream; the last calls the same simulator with
the twilio SDK: the same JetStream hops and the same final call, with no envelope, state,
decisions or retries.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from switchboard_contracts import Envelope
from switchboard_devstack.embedded import NatsServer, free_port, wait_for_port
from switchboard_devstack.stack import Process
from switchboard_tenants import generate_key
from twilio.request_validator import RequestValidator
from twilio_sim.sdk import simulator_http_client

from .common import Result
from .gateway import ACCOUNT, NUMBER, TOKEN, _publish_tenant
from .loadgen import post_request

RATE, SECONDS = float(os.environ.get("BENCH_RATE", 15)), int(os.environ.get("BENCH_SECONDS", 12))
BIN = Path(sys.executable).parent
SERVICES = ("gateway", "conversation", "agent", "sender")
REPLICAS = tuple(int(n) for n in os.environ.get("BENCH_REPLICAS", "1,2").split(","))
STORED = "@stored"  # suffix of an event's mark: when JetStream stored it


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _open_loop(count: int, rate: float, send: Callable[[int], Awaitable[None]]) -> None:
    start = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)


async def _calls(sim_url: str, expected: int, timeout_s: float = 120) -> dict[str, float]:
    """To address -> when the simulator received its first Messages API call (epoch s)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=sim_url) as http:
        while True:
            attempts = (await http.get("/sim/messages")).json()["attempts"]
            seen: dict[str, float] = {}
            for attempt in attempts:
                to = attempt["form"].get("To", "")
                seen.setdefault(to, datetime.fromisoformat(attempt["at"]).timestamp())
            if len(seen) >= expected or time.monotonic() > deadline:
                await http.post("/sim/reset")
                return seen
            await asyncio.sleep(0.5)


def _users(tag: str, count: int) -> list[str]:
    return [f"whatsapp:+4477{abs(hash(tag)) % 1000:03d}{i:05d}" for i in range(count)]


async def _run_ours(nats_url: str, sim_url: str, gateway_port: int, tag: str
                    ) -> tuple[list[float], dict[str, list[float]]]:
    count = int(RATE * SECONDS)
    users = _users(tag, count)
    validator = RequestValidator(TOKEN)
    url = f"http://127.0.0.1:{gateway_port}/twilio/whatsapp/inbound"
    sent_at: dict[str, float] = {}

    async def send(i: int) -> None:
        sid = "SM" + uuid.uuid4().hex
        params = {"MessageSid": sid, "AccountSid": ACCOUNT, "From": users[i], "To": NUMBER,
                  "Body": "Hello! Is the clinic open tomorrow?", "NumMedia": "0"}
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": validator.compute_signature(url, params)}
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway_port)
        sent_at[users[i]] = time.time()
        writer.write(post_request("/twilio/whatsapp/inbound", urlencode(params).encode(),
                                  headers))
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    await _open_loop(count, RATE, send)
    calls = await _calls(sim_url, count)
    latencies = [calls[u] - sent_at[u] for u in users if u in calls]
    return latencies, await _hops(nats_url)


async def _hops(nats_url: str) -> dict[str, list[float]]:
    """Per correlation, the time between the events that mark each hop."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    marks: dict[str, dict[str, float]] = {}
    for stream, types in (("GATEWAY", {"InboundMessageReceived"}),
                          ("CONVERSATION", {"ReplyRequested", "AssistantMessageAppended"}),
                          ("AGENT", {"ReplyGenerated"}),
                          ("SENDER", {"OutboundReplyAccepted", "OutboundPartAttempted",
                                      "OutboundMessageSent"})):
        sub = await js.pull_subscribe(">", stream=stream, config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, inactive_threshold=10))
        pending = (await sub.consumer_info()).num_pending or 0
        while pending:
            for msg in await sub.fetch(min(pending, 256), timeout=5):
                pending = msg.metadata.num_pending
                if msg.headers and "Nats-Schedule" in msg.headers:
                    continue
                try:
                    env = Envelope.from_bytes(msg.data)
                except ValueError:
                    continue
                if env.type in types:
                    times = marks.setdefault(env.correlation_id, {})
                    times.setdefault(env.type, env.occurred_at.timestamp())
                    # When JetStream stored it: splits a hop into the producer's append and
                    # the consumer's delivery and work.
                    times.setdefault(env.type + STORED, msg.metadata.timestamp.timestamp())
        await sub.unsubscribe()
    await nc.close()
    chain = ["InboundMessageReceived", "ReplyRequested", "ReplyGenerated",
             "OutboundPartAttempted", "OutboundMessageSent"]
    names = ["gateway -> conversation", "conversation -> agent", "agent -> sender",
             "sender: attempt -> Twilio answered"]
    # Inside the agent -> sender hop: the sender records the reply while the conversation
    # accepts it (in parallel); the sender's first part waits for that acceptance in the view.
    spans = [*zip(names, itertools.pairwise(chain), strict=True),
             ("  agent -> sender: reply recorded", ("ReplyGenerated", "OutboundReplyAccepted")),
             ("  agent -> conversation: reply accepted",
              ("ReplyGenerated", "AssistantMessageAppended")),
             ("  sender: recorded -> attempt", ("OutboundReplyAccepted", "OutboundPartAttempted")),
             ("  conversation accepted -> sender's attempt",
              ("AssistantMessageAppended", "OutboundPartAttempted")),
             # Each side of the hops above: decided (occurred_at) -> stored -> next decided.
             ("  conversation: inbound stored -> reply requested",
              ("InboundMessageReceived" + STORED, "ReplyRequested")),
             ("  conversation: reply requested -> stored",
              ("ReplyRequested", "ReplyRequested" + STORED)),
             ("  agent: request stored -> reply generated",
              ("ReplyRequested" + STORED, "ReplyGenerated")),
             ("  agent: reply generated -> stored", ("ReplyGenerated", "ReplyGenerated" + STORED)),
             ("  conversation: reply stored -> accepted and stored",
              ("ReplyGenerated" + STORED, "AssistantMessageAppended" + STORED))]
    hops: dict[str, list[float]] = {name: [] for name, _ in spans}
    for times in marks.values():
        for name, (a, b) in spans:
            if a in times and b in times:
                hops[name].append(times[b] - times[a])
    return hops


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _view_waits(ports: list[int]) -> dict[str, Any]:
    """The senders' view waits (their /metrics, summed over replicas): how often a waiting
    handler was woken by a pushed view or by a re-read, and how long the waits took."""
    looks = {'switchboard_sender_view_looks_total{how="pushed"}': "woken by a push",
             'switchboard_sender_view_looks_total{how="reread"}': "woken by a re-read"}
    bucket = "switchboard_sender_view_settle_seconds_bucket{le="
    found: dict[str, float] = dict.fromkeys(looks.values(), 0.0)
    within: dict[str, float] = {}
    async with httpx.AsyncClient() as http:
        for port in ports:
            for line in (await http.get(f"http://127.0.0.1:{port}/metrics")).text.splitlines():
                name, _, value = line.rpartition(" ")
                if name in looks:
                    found[looks[name]] += float(value)
                elif name.startswith(bucket):
                    le = name[len(bucket):].strip('"}')
                    within[le] = within.get(le, 0.0) + float(value)
    total = within.get("+Inf", 0.0)
    shares = {f"<= {float(le) * 1000:g} ms": f"{count / total:.0%}" for le, count in
              within.items() if le != "+Inf" and total} if total else {}
    return {**found, "waits": total, "waits within": shares}


def _load() -> str:
    """The machine's load average (1, 5, 15 min): it is shared, and the figures depend on it."""
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


async def _run_relay(js: JetStreamContext, sim_url: str, tag: str) -> list[float]:
    """Raw nats-py: publish, then three consume-and-publish hops, then the Twilio call."""
    count = int(RATE * SECONDS)
    users = _users("relay" + tag, count)
    streams = [f"RELAY{tag}{i}" for i in range(3)]
    for i, name in enumerate(streams):
        await js.add_stream(name=name, subjects=[f"relay{tag}.{i}"])
    client = _twilio(sim_url)
    sent_at: dict[str, float] = {}
    workers = []

    async def worker(i: int) -> None:
        sub = await js.pull_subscribe(f"relay{tag}.{i}", durable=f"relay{i}", stream=streams[i])
        while True:
            try:
                msgs = await sub.fetch(16, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in msgs:
                if i + 1 < len(streams):
                    await js.publish(f"relay{tag}.{i + 1}", msg.data,
                                     headers={"Nats-Msg-Id": f"{i}-{msg.metadata.sequence.stream}"})
                else:
                    body = json.loads(msg.data)
                    await asyncio.to_thread(client.messages.create, to=body["to"],
                                            from_=NUMBER, body="Relayed reply")
                await msg.ack()

    workers = [asyncio.create_task(worker(i)) for i in range(len(streams))]

    async def send(i: int) -> None:
        sent_at[users[i]] = time.time()
        await js.publish(f"relay{tag}.0", json.dumps({"to": users[i]}).encode(),
                         headers={"Nats-Msg-Id": users[i]})

    await _open_loop(count, RATE, send)
    calls = await _calls(sim_url, count)
    for task in workers:
        task.cancel()
    return [calls[u] - sent_at[u] for u in users if u in calls]


def _twilio(sim_url: str) -> Any:
    from twilio.rest import Client

    return Client(ACCOUNT, TOKEN, http_client=simulator_http_client(sim_url))


async def main() -> Result:
    server = NatsServer().start()
    key = generate_key()
    await _publish_tenant(server.url, key)
    sim_port, llm_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    config = Path(server.store) / "sim.json"
    config.write_text(json.dumps({
        "accounts": [{"sid": ACCOUNT, "auth_token": TOKEN}],
        "numbers": [{"address": NUMBER, "account_sid": ACCOUNT}], "read_receipts": False,
    }))
    env = {**os.environ, "NATS_URL": server.url, "SB_TENANT_KEYS": key, "LOG_LEVEL": "WARNING",
           "OPENAI_BASE_URL": f"http://127.0.0.1:{llm_port}/v1", "OPENAI_API_KEY": "sk-bench",
           "IP_RATE_LIMIT": "1000000/second", "SENDER_RATE_LIMIT": "1000000/minute"}
    logs = Path(server.store)
    helpers = [Process("twilio-sim", [str(BIN / "twilio-sim"), "--port", str(sim_port),
                                      "--config", str(config)], sim_port),
               Process("llm-sim", [str(BIN / "llm-sim"), "--port", str(llm_port)], llm_port)]
    results: dict[int, dict[str, Any]] = {}
    relay_latencies: list[float] = []
    try:
        for helper in helpers:
            helper.start(env, logs)
            wait_for_port(helper.port, 60)
        nc = await nats.connect(server.url)
        relay_load = _load()
        relay_latencies = await _run_relay(nc.jetstream(), sim_url, "a")
        for replicas in REPLICAS:
            processes = []
            gateway_port = free_port()
            for name in SERVICES:
                for r in range(replicas):
                    port = gateway_port if (name == "gateway" and r == 0) else free_port()
                    extra = {"HTTP_PORT": str(port),
                             "PUBLIC_BASE_URL": f"http://127.0.0.1:{gateway_port}",
                             "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
                             "TWILIO_API_BASE_URL": sim_url}
                    processes.append(Process(f"{name}-{replicas}-{r}", [str(BIN /
                                             f"switchboard-{name}")], port, extra))
            for process in processes:
                process.start(env, logs)
                wait_for_port(process.port, 60)
            await asyncio.sleep(1.0)
            load_before = _load()
            # The simulators too: not ours (llm-sim stands for the LLM, twilio-sim for Twilio and
            # also answers the bench's polls), but they share the cores.
            watched = [*processes, *helpers]
            cpu_before = {p.name: _cpu_s(p.pid) for p in watched}
            latencies, hops = await _run_ours(server.url, sim_url, gateway_port, str(replicas))
            views = await _view_waits([p.port for p in processes if p.name.startswith("sender")])
            cpu: dict[str, float] = {}
            for p in watched:  # per service, summed over its replicas
                service = p.name if p in helpers else p.name.split("-")[0]
                cpu[service] = cpu.get(service, 0.0) + _cpu_s(p.pid) - cpu_before[p.name]
            for process in reversed(processes):
                process.stop()
            results[replicas] = {"latencies": latencies, "hops": hops, "cpu": cpu, "views": views,
                                 "load": f"{load_before}, after: {_load()}"}
            # A fresh server state for the next replica count: the streams are purged.
            js = nc.jetstream()
            for stream in ("GATEWAY", "CONVERSATION", "AGENT", "SENDER"):
                await js.purge_stream(stream)
            print(f"{replicas} replica(s): {len(latencies)} replies, "
                  f"p50 {statistics.median(latencies) * 1000:.0f} ms")
        await nc.close()
    finally:
        for helper in helpers:
            helper.stop()
        server.cleanup()
    relay_p50, relay_p99 = _pct(relay_latencies, 50) * 1000, _pct(relay_latencies, 99) * 1000
    one = results[REPLICAS[0]]["latencies"]
    extra: dict[str, Any] = {"relay p50/p99 ms": f"{relay_p50:.0f} / {relay_p99:.0f}",
                             "relay: load average 1/5/15 min before": relay_load}
    for replicas, found in results.items():
        lat = found["latencies"]
        extra[f"{replicas} replica(s): replies / sent"] = f"{len(lat)} / {int(RATE * SECONDS)}"
        extra[f"{replicas} replica(s): p50/p99 ms"] = (
            f"{_pct(lat, 50) * 1000:.0f} / {_pct(lat, 99) * 1000:.0f}")
        extra[f"{replicas} replica(s): p50 ratio to relay"] = round(
            _pct(lat, 50) * 1000 / relay_p50, 2)
        extra[f"{replicas} replica(s): p99 ratio to relay"] = round(
            _pct(lat, 99) * 1000 / relay_p99, 2)
        extra[f"{replicas} replica(s): load average 1/5/15 min before"] = found["load"]
        extra[f"{replicas} replica(s): CPU s per service during the run"] = {
            name: round(value, 2) for name, value in found["cpu"].items()}
        extra[f"{replicas} replica(s): CPU ms per reply per service"] = {
            name: round(value * 1000 / max(len(lat), 1), 1)
            for name, value in found["cpu"].items()}
        extra[f"{replicas} replica(s): sender's view waits"] = found["views"]
        extra[f"{replicas} replica(s): median ms per hop"] = {
            name: round(statistics.median(v) * 1000, 1) for name, v in found["hops"].items()
            if v}
    return Result(
        name="pipeline",
        metric="p50 latency, webhook to Messages API call, ms (1 replica each)",
        ours=_pct(one, 50) * 1000,
        baseline=relay_p50,
        goal="ours/relay p50 <= 3, p99 <= 5 (ratio here is p50 ours/relay: lower is better)",
        conditions={"rate_per_s": RATE, "seconds": SECONDS, "llm": "llm-sim, instant",
                    "twilio": "twilio-sim", "nats": "single node, sync_interval always",
                    "processes": "one per service replica, plus both simulators"},
        extra=extra,
    )
