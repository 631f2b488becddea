"""A latency on /metrics links to its trace: the handler and publish histograms carry the
trace id as an exemplar, served when the scraper asks for OpenMetrics."""

from __future__ import annotations

import asyncio

import httpx
from opentelemetry import trace
from switchboard_contracts.topology import GATEWAY
from switchboard_runtime import Service
from switchboard_runtime.bus import ConsumerSpec, Publisher
from switchboard_runtime.config import ServiceSettings
from switchboard_runtime.telemetry import configure_tracing

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def exemplar_lines(scrape: str, histogram: str, label: str) -> list[str]:
    """The histogram's bucket lines with ``label`` and an exemplar (after " # ")."""
    return [line for line in scrape.splitlines()
            if line.startswith(f"{histogram}_bucket{{") and label in line and " # " in line]


async def test_handler_and_publish_latencies_carry_the_trace_they_measured(
        nats_url, make_inbound) -> None:
    configure_tracing("exemplars", None)  # a recording provider: spans have trace ids
    handled = asyncio.Event()

    async def handle(_event) -> None:  # type: ignore[no-untyped-def]
        handled.set()

    service = Service(ServiceSettings(service_name="exemplars", nats_url=nats_url),
                      owns=(GATEWAY,))
    service.consume(ConsumerSpec("exemplars-inbound", GATEWAY.name, ("gateway.>",)),
                    {"InboundMessageReceived": handle})
    async with service.running():
        with trace.get_tracer("test").start_as_current_span("webhook") as root:
            await Publisher(service.js, GATEWAY.name).publish(
                "gateway.InboundMessageReceived", make_inbound())
        await asyncio.wait_for(handled.wait(), 10)
        trace_id = format(root.get_span_context().trace_id, "032x")
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            deadline = asyncio.get_running_loop().time() + 5
            while True:  # observed once the handler's span ends, just after it returns
                scrape = await http.get("/metrics", headers={"Accept": OPENMETRICS})
                exemplars = exemplar_lines(scrape.text, "switchboard_handler_seconds",
                                           'consumer="exemplars-inbound"')
                if exemplars or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.05)
            plain = await http.get("/metrics")

    assert scrape.headers["content-type"].startswith("application/openmetrics-text")
    assert any(f'# {{trace_id="{trace_id}"}}' in line for line in exemplars), exemplars
    published = exemplar_lines(scrape.text, "switchboard_publish_seconds", 'stream="GATEWAY"')
    assert any(f'# {{trace_id="{trace_id}"}}' in line for line in published), published
    assert plain.headers["content-type"].startswith("text/plain")  # Prometheus' default
    assert trace_id not in plain.text
