"""The event layer against raw nats-py: same server, same payload size, same run.

Each round publishes N events one by one waiting for every PubAck, then consumes them with a
durable pull consumer acking each one. Raw nats-py sends pre-encoded bytes; the event layer
builds and validates an envelope, opens producer and consumer spans (tracing on, exported to
a no-op exporter through the batch processor), injects and extracts trace context, decodes and
types the payload, runs a handler and records metrics. Rounds alternate raw/ours; medians.

Besides the rate, each round records the process's CPU time per event (publish + consume):
on a shared machine the rate swings with the load, the CPU per event much less.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass

import nats
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from switchboard_contracts import Envelope
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.topology import ADVISORIES, DEADLETTER, GATEWAY
from switchboard_devstack.embedded import NatsServer
from switchboard_runtime.bus import Consumer, ConsumerSpec, Publisher, ensure_streams
from switchboard_runtime.telemetry import configure_tracing

from .common import Result, median

N = 5000
ROUNDS = 3
SUBJECT = "gateway.InboundMessageReceived"


class _Discard(SpanExporter):
    def export(self, spans):  # type: ignore[no-untyped-def]
        return SpanExportResult.SUCCESS


def _event(i: int) -> Envelope:
    sid = f"SM{i:032d}"
    data = InboundMessageReceived(
        message_sid=sid, account_sid="AC" + "0" * 32, from_address="whatsapp:+14155550101",
        to_address="whatsapp:+14155550199", body="Hello, can you tell me my order status?",
        profile_name="Ada",
    )
    return Envelope.wrap(data, correlation_id=sid, tenant_id="tenant-a")


@dataclass
class Round:
    rate: float  # events/s
    cpu_us: float  # CPU of this process per event (all threads: span export included)
    publish_cpu_us: float  # of which publishing


def _round(started: float, cpu_started: float, cpu_published: float) -> Round:
    return Round(N / (time.perf_counter() - started),
                 (time.process_time() - cpu_started) / N * 1e6,
                 (cpu_published - cpu_started) / N * 1e6)


def _cpu(r: Round) -> str:
    return (f"{r.cpu_us:.0f} us CPU/event: publish {r.publish_cpu_us:.0f}, "
            f"consume {r.cpu_us - r.publish_cpu_us:.0f}")


async def _raw_round(js: JetStreamContext, payload: bytes, tag: str) -> Round:
    await js.add_stream(name=f"RAW{tag}", subjects=[f"raw{tag}.>"])
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(N):
        await js.publish(f"raw{tag}.x", payload, headers={"Nats-Msg-Id": f"{tag}-{i}"})
    cpu_published = time.process_time()
    sub = await js.pull_subscribe(f"raw{tag}.x", durable="raw", stream=f"RAW{tag}",
                                  config=ConsumerConfig(ack_wait=30, max_deliver=5))
    got = 0
    while got < N:
        for msg in await sub.fetch(100, timeout=5):
            await msg.ack()
            got += 1
    result = _round(started, cpu_started, cpu_published)
    await js.delete_stream(f"RAW{tag}")
    return result


async def _ours_round(js: JetStreamContext, tag: str) -> Round:
    await js.purge_stream(GATEWAY.name)
    publisher = Publisher(js, GATEWAY.name)
    done = asyncio.Event()
    got = 0

    async def handle(event) -> None:  # type: ignore[no-untyped-def]
        nonlocal got
        got += 1
        if got == N:
            done.set()

    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(N):
        await publisher.publish(SUBJECT, _event(i))
    cpu_published = time.process_time()
    spec = ConsumerSpec(durable=f"bench-{tag}", stream=GATEWAY.name, filter_subjects=(SUBJECT,),
                        batch=100)
    consumer = Consumer(js, spec, {"InboundMessageReceived": handle})
    await consumer.start()
    await asyncio.wait_for(done.wait(), 120)
    result = _round(started, cpu_started, cpu_published)
    await consumer.stop()
    await js.delete_consumer(GATEWAY.name, spec.durable)
    return result


async def main() -> Result:
    provider = configure_tracing("bench", None)
    provider.add_span_processor(BatchSpanProcessor(_Discard()))
    load_at_start = os.getloadavg()[0]
    server = NatsServer().start()
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_streams(js, (GATEWAY, DEADLETTER, ADVISORIES))
        payload = _event(0).to_bytes()
        raw: list[Round] = []
        ours: list[Round] = []
        for r in range(ROUNDS):
            tag = uuid.uuid4().hex[:6]
            raw.append(await _raw_round(js, payload, tag))
            ours.append(await _ours_round(js, tag))
            print(f"round {r + 1}: raw {raw[-1].rate:.0f}/s ({_cpu(raw[-1])})  "
                  f"ours {ours[-1].rate:.0f}/s ({_cpu(ours[-1])})")
        await nc.close()
    finally:
        server.cleanup()
    raw_cpu, ours_cpu = median([x.cpu_us for x in raw]), median([x.cpu_us for x in ours])
    raw_pub, ours_pub = (median([x.publish_cpu_us for x in rounds]) for rounds in (raw, ours))
    return Result(
        name="event_layer",
        metric="events/s, publish with PubAck then consume with ack (median of rounds)",
        ours=median([x.rate for x in ours]),
        baseline=median([x.rate for x in raw]),
        goal=">= 0.80",
        conditions={"events_per_round": N, "rounds": ROUNDS, "payload_bytes": len(payload),
                    "server": "nats-server 2.15.1, single node, file store, sync_interval always",
                    "tracing": "on (batch processor, discarding exporter)"},
        extra={"raw_rounds": [round(x.rate) for x in raw],
               "ours_rounds": [round(x.rate) for x in ours],
               "cpu_us_per_event raw / ours (median)": f"{raw_cpu:.0f} / {ours_cpu:.0f}",
               "cpu ratio raw/ours": round(raw_cpu / ours_cpu, 3),
               "publish cpu_us_per_event raw / ours (median)": f"{raw_pub:.0f} / {ours_pub:.0f}",
               "load average at the start / end":
                   f"{load_at_start:.1f} / {os.getloadavg()[0]:.1f}"},
    )
