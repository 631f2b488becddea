"""The bus's producer and consumer spans, with less Python per span than the SDK's start_span.

A sequential publisher and a consumer pay their span on every event. For the same exported
span, the SDK's ``start_span`` checks and locks each attribute into its bounded map one by
one, allocates event and link lists these spans almost never use, and copies the span into a
``ReadableSpan`` when it ends; the propagator API builds a ``Context`` to write or read the
W3C header. Here:
- the attributes come as one dict of valid values (str, int, bool) put into the SDK's bounded
  map at once; what a handler adds to the span later goes through the SDK's checks;
- the event and link lists are made on first use (an exception recorded on failure);
- the span ends without the copy (an ended span refuses changes, as the copy would);
- the default sampler (parent-based, always on) is decided from the parent's flags, exactly as
  it would decide; any other sampler is asked as the SDK asks it;
- ``traceparent``/``tracestate`` are written from, and read into, a ``SpanContext`` directly.
Without the SDK's provider (none configured, or ``OTEL_SDK_DISABLED``), the API's tracer makes
the span. ``test_spans.py`` checks the exported spans equal the SDK's.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.util.types import AttributeValue

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
NAME = "switchboard.bus"

# W3C trace context: version-trace_id-span_id-flags (the SDK propagator's rule).
_TRACEPARENT = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?[ \t]*")
_UNSET = trace.Status(trace.StatusCode.UNSET)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_api_tracer = trace.get_tracer(NAME)
_sdk: tuple[trace.TracerProvider, sdk_trace.Tracer | None] | None = None


class _BusSpan(sdk_trace.Span):
    """The SDK's span, its per-span allocations left for when they are used."""

    def __init__(self, tracer: sdk_trace.Tracer, name: str, context: SpanContext,
                 parent: SpanContext | None, kind: SpanKind,
                 attributes: Mapping[str, AttributeValue]) -> None:
        # The SDK's Span.__init__ and ReadableSpan.__init__, field by field (test_spans checks
        # none is missing); not called, as they are the cost this avoids.
        limits = tracer._span_limits
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._resource = tracer.resource
        self._instrumentation_info = tracer.instrumentation_info
        self._instrumentation_scope = tracer._instrumentation_scope
        self._status = _UNSET
        self._end_time: int | None = None
        self._attributes = BoundedAttributes(limits.max_span_attributes, immutable=False,
                                             max_value_len=limits.max_span_attribute_length)
        self._attributes._dict.update(attributes)  # valid values, fewer than the limit
        self._events: Any = ()
        self._links: Any = ()
        self._sampler = tracer.sampler
        self._trace_config = None
        self._record_exception = True
        self._set_status_on_exception = True
        self._span_processor = tracer.span_processor
        self._limits = limits
        self._lock = threading.Lock()
        self._start_time = time_ns()

    def _add_event(self, event: Any) -> None:
        if isinstance(self._events, tuple):
            self._events = BoundedList(self._limits.max_events)
        super()._add_event(event)

    def _add_link(self, link: trace.Link) -> None:
        if isinstance(self._links, tuple):
            self._links = BoundedList(self._limits.max_links)
        super()._add_link(link)

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                return  # as the SDK (which also logs a warning)
            self._end_time = end_time if end_time is not None else time_ns()
        self._span_processor.on_end(self)


def _sdk_tracer() -> sdk_trace.Tracer | None:
    """The SDK tracer of the installed provider (None: not the SDK's, or disabled)."""
    global _sdk
    provider = trace.get_tracer_provider()
    if _sdk is None or _sdk[0] is not provider:
        tracer = (provider.get_tracer(NAME) if isinstance(provider, sdk_trace.TracerProvider)
                  else None)
        _sdk = provider, tracer if isinstance(tracer, sdk_trace.Tracer) else None
    return _sdk[1]


def _start(name: str, kind: SpanKind, attributes: dict[str, AttributeValue],
           parent: SpanContext | None, remote: bool) -> trace.Span:
    tracer = _sdk_tracer()
    if tracer is None:
        return _api_tracer.start_span(name, _parent_context(parent, remote), kind, attributes)
    if parent is not None and not parent.is_valid:
        parent = None
    trace_id = tracer.id_generator.generate_trace_id() if parent is None else parent.trace_id
    if tracer.sampler is sampling.DEFAULT_ON:  # what it decides, without asking it
        sampled = recording = parent is None or parent.trace_flags.sampled
        trace_state = None if parent is None else parent.trace_state
    else:
        result = tracer.sampler.should_sample(_parent_context(parent, remote), trace_id, name,
                                              kind, attributes)
        sampled = result.decision is sampling.Decision.RECORD_AND_SAMPLE
        recording = result.decision is not sampling.Decision.DROP
        trace_state, attributes = result.trace_state, dict(result.attributes)
    context = SpanContext(trace_id, tracer.id_generator.generate_span_id(), False,
                          _SAMPLED if sampled else _NOT_SAMPLED, trace_state)
    if not recording:
        return trace.NonRecordingSpan(context)
    span = _BusSpan(tracer, name, context, parent, kind, attributes)
    tracer.span_processor.on_start(span, parent_context=_parent_context(parent, remote))
    return span


def _parent_context(parent: SpanContext | None, remote: bool) -> Context | None:
    """The parent as the API wants it: None for the current span, a Context for another."""
    if not remote:
        return None
    return Context() if parent is None else trace.set_span_in_context(
        trace.NonRecordingSpan(parent))


def start_producer_span(name: str, attributes: dict[str, AttributeValue]) -> trace.Span:
    """A PRODUCER span, child of the current span (not made current)."""
    return _start(name, SpanKind.PRODUCER, attributes,
                  trace.get_current_span().get_span_context(), remote=False)


def start_consumer_span(name: str, attributes: dict[str, AttributeValue],
                        headers: Mapping[str, str] | None) -> trace.Span:
    """A CONSUMER span, child of the producer whose ``traceparent`` is in ``headers`` (a root
    span without one). Not made current."""
    return _start(name, SpanKind.CONSUMER, attributes, remote_parent(headers), remote=True)


def write_traceparent(span: trace.Span, headers: dict[str, str]) -> None:
    """``span``'s W3C trace context into ``headers``, as the propagator writes it."""
    context = span.get_span_context()
    if not context.is_valid:
        return
    headers[TRACEPARENT] = (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}")
    if context.trace_state:
        headers[TRACESTATE] = context.trace_state.to_header()


def remote_parent(headers: Mapping[str, str] | None) -> SpanContext | None:
    """The span context in ``headers``' ``traceparent``, as the propagator reads it."""
    header = headers.get(TRACEPARENT) if headers else None
    match = _TRACEPARENT.fullmatch(header) if header else None
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if (version == "ff" or (version == "00" and rest)
            or trace_id == "0" * 32 or span_id == "0" * 16):
        return None
    state = headers.get(TRACESTATE) if headers else None
    return SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16)),
                       TraceState.from_header([state]) if state else None)
