"""A latency on /metrics links to its trace: the handler and publish histograms carry the
trace id as an exemplar, served when the scraper asks for OpenMetrics."""

from __future__ import annotations

import asyncio

import httpx
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Histogram
from switchboard_contracts.topology import GATEWAY
from switchboard_runtime import Service
from switchboard_runtime.bus import ConsumerSpec, Publisher
from switchboard_runtime.config import ServiceSettings
from switchboard_runtime.telemetry import configure_tracing, metrics
from switchboard_runtime.telemetry.metrics import EXEMPLAR_INTERVAL_S, TracedHistogram

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


def sampled_span(trace_id: int, sampled: bool = True) -> trace.Span:
    flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT)
    return trace.NonRecordingSpan(trace.SpanContext(trace_id, 1, False, flags))


def bucket_exemplars(histogram: Histogram) -> dict[str, str]:
    """Each bucket's exemplar trace id, by its upper bound."""
    return {s.labels["le"]: s.exemplar.labels["trace_id"] for s in histogram.collect()[0].samples
            if s.name.endswith("_bucket") and s.exemplar is not None}


def test_a_buckets_exemplar_is_replaced_at_most_once_per_interval(monkeypatch) -> None:
    histogram = Histogram("t_seconds", "test", ["k"], buckets=(0.1, 1.0),
                          registry=CollectorRegistry())
    traced = TracedHistogram(histogram.labels("a"), (0.1, 1.0))
    clock = [100.0]
    monkeypatch.setattr(metrics.time, "monotonic", lambda: clock[0])
    ids = {n: format(n, "032x") for n in (1, 2, 3, 4)}

    traced.observe(0.05, sampled_span(1))
    traced.observe(0.06, sampled_span(2))  # the same bucket within the interval: kept
    traced.observe(0.5, sampled_span(2))  # another bucket: its own
    traced.observe(5.0, sampled_span(4, sampled=False))  # a trace never exported: none
    assert bucket_exemplars(histogram) == {"0.1": ids[1], "1.0": ids[2]}

    clock[0] += EXEMPLAR_INTERVAL_S
    traced.observe(0.07, sampled_span(3))
    assert bucket_exemplars(histogram) == {"0.1": ids[3], "1.0": ids[2]}
    assert histogram.labels("a")._sum.get() == 0.05 + 0.06 + 0.5 + 5.0 + 0.07  # all observed
