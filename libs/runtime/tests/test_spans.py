"""The bus's lean spans export what the SDK's start_span and the W3C propagator would."""

from __future__ import annotations

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState
from switchboard_runtime.telemetry import spans

ATTRIBUTES = {"messaging.system": "nats", "switchboard.correlation_id": "SM1",
              "messaging.nats.deliveries": 2, "switchboard.flag": True}


@pytest.fixture
def provider(monkeypatch) -> TracerProvider:
    """A provider of its own (the process's is installed once), with an in-memory exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": "spans"}),
                              sampler=sampling.DEFAULT_ON)
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    monkeypatch.setattr(spans.trace, "get_tracer_provider", lambda: provider)
    return provider


def finished(provider: TracerProvider) -> list[ReadableSpan]:
    (processor,) = provider._active_span_processor._span_processors
    return list(processor.span_exporter.get_finished_spans())


def exported(span: ReadableSpan) -> dict[str, object]:
    """What an exporter reads of a span, but its own ids and times."""
    return {"name": span.name, "kind": span.kind, "parent": span.parent,
            "trace_id": span.context.trace_id, "flags": span.context.trace_flags,
            "trace_state": span.context.trace_state, "attributes": dict(span.attributes),
            "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
            "events": [(e.name, dict(e.attributes)) for e in span.events],
            "links": list(span.links), "resource": span.resource,
            "scope": span.instrumentation_scope, "status": span.status.status_code}


def test_producer_and_consumer_spans_export_as_the_sdks(provider) -> None:
    sdk = provider.get_tracer(spans.NAME)
    with sdk.start_as_current_span("webhook"):
        ours = spans.start_producer_span("publish X", dict(ATTRIBUTES))
        theirs = sdk.start_span("publish X", kind=SpanKind.PRODUCER, attributes=ATTRIBUTES)
    headers: dict[str, str] = {}
    spans.write_traceparent(ours, headers)
    propagated: dict[str, str] = {}
    propagate.inject(propagated, context=trace.set_span_in_context(ours))
    assert headers == propagated

    consumed = spans.start_consumer_span("process X", dict(ATTRIBUTES), headers)
    sdk_consumed = sdk.start_span("process X", context=propagate.extract(headers),
                                  kind=SpanKind.CONSUMER, attributes=ATTRIBUTES)
    for span in (consumed, sdk_consumed):
        span.set_attribute("later", 1)
        span.set_attribute("ignored", {"not": "an attribute value"})  # type: ignore[arg-type]
        span.record_exception(ValueError("boom"))
        span.set_status(trace.StatusCode.ERROR)
    # The SDK's span and ours carry the same fields (an SDK upgrade adding one fails here).
    assert set(vars(consumed)) == set(vars(sdk_consumed))
    for span in (ours, theirs, consumed, sdk_consumed, ours):  # ours ended twice: once
        span.end()

    by_name: dict[str, list[ReadableSpan]] = {}
    for span in finished(provider):
        by_name.setdefault(span.name, []).append(span)
    (_root,) = by_name["webhook"]
    mine, sdks = by_name["publish X"]
    assert exported(mine) == exported(sdks)
    mine, sdks = by_name["process X"]
    assert exported(mine) == exported(sdks)
    sent = ours.get_span_context()
    assert mine.parent == SpanContext(sent.trace_id, sent.span_id, True, sent.trace_flags)
    assert [e.name for e in mine.events] == ["exception"]


def test_a_consumer_span_without_a_traceparent_is_a_root(provider) -> None:
    with provider.get_tracer("test").start_as_current_span("elsewhere"):
        span = spans.start_consumer_span("process X", {}, {"Nats-Msg-Id": "1"})
    span.end()
    assert finished(provider)[0].parent is None


def remote(flags: int) -> SpanContext:
    return SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True,
                       TraceFlags(flags), TraceState([("vendor", "v1")]))


@pytest.mark.parametrize("sampler", [
    sampling.DEFAULT_ON,  # decided without being asked
    sampling.ALWAYS_OFF,
    sampling.ParentBased(sampling.ALWAYS_OFF),
    sampling.TraceIdRatioBased(0.5),
    sampling.StaticSampler(sampling.Decision.RECORD_ONLY),
])
@pytest.mark.parametrize("parent", [remote(TraceFlags.SAMPLED), remote(TraceFlags.DEFAULT)])
def test_sampling_decides_as_for_the_sdk(monkeypatch, sampler, parent) -> None:
    provider = TracerProvider(sampler=sampler)
    monkeypatch.setattr(spans.trace, "get_tracer_provider", lambda: provider)
    headers: dict[str, str] = {}
    propagate.inject(headers, context=trace.set_span_in_context(trace.NonRecordingSpan(parent)))
    ours = spans.start_consumer_span("process X", {}, headers)
    theirs = provider.get_tracer("test").start_span(
        "process X", context=propagate.extract(headers), kind=SpanKind.CONSUMER)
    assert ours.is_recording() == theirs.is_recording()
    ctx, sdk_ctx = ours.get_span_context(), theirs.get_span_context()
    assert (ctx.trace_id, ctx.trace_flags, ctx.trace_state) == (
        sdk_ctx.trace_id, sdk_ctx.trace_flags, sdk_ctx.trace_state)


@pytest.mark.parametrize("header", [
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\t",
    "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
    "garbage",
    "",
])
def test_traceparent_is_read_as_the_propagator_reads_it(header) -> None:
    headers = {"traceparent": header, "tracestate": "vendor=v1,other=o2"}
    expected = trace.get_current_span(propagate.extract(headers)).get_span_context()
    assert spans.remote_parent(headers) == (expected if expected.is_valid else None)
