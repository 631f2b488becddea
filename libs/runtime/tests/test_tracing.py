from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from switchboard_contracts.topology import GATEWAY
from switchboard_runtime.bus import Consumer, ConsumerSpec, Publisher
from switchboard_runtime.telemetry import configure_tracing


async def test_publish_and_consume_share_one_trace(streams, make_inbound) -> None:
    provider = configure_tracing("test", None)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handled = asyncio.Event()
    inside: list[trace.SpanContext] = []

    async def handle(event) -> None:
        inside.append(trace.get_current_span().get_span_context())
        handled.set()

    spec = ConsumerSpec(durable="traced", stream=GATEWAY.name, filter_subjects=("gateway.>",))
    consumer = Consumer(streams, spec, {"InboundMessageReceived": handle})
    await consumer.start()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("webhook") as root:
        await Publisher(streams, GATEWAY.name).publish(
            "gateway.InboundMessageReceived", make_inbound()
        )
    await asyncio.wait_for(handled.wait(), 10)
    await consumer.stop()

    spans = {s.name: s for s in exporter.get_finished_spans()}
    producer = spans["publish InboundMessageReceived"]
    consumed = spans["process InboundMessageReceived"]
    trace_id = root.get_span_context().trace_id
    assert producer.context.trace_id == trace_id
    assert consumed.context.trace_id == trace_id
    assert consumed.parent is not None
    assert consumed.parent.span_id == producer.context.span_id
    assert consumed.kind is trace.SpanKind.CONSUMER
    # The handler runs inside the consumer span (its own spans are the consumer span's children).
    assert [(c.trace_id, c.span_id) for c in inside] == [(trace_id, consumed.context.span_id)]
