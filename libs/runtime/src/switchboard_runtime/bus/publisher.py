"""Publish an event to JetStream and wait for the PubAck, with dedup and trace context.

One request per event (the PubAck is its answer), nothing else on the wire. The per-event
CPU is kept low because a sequential publisher pays it on every round trip: the producer
span is started without being made current (nothing runs inside it but the request), the
PubAck is awaited on the connection's one inbox subscription (``acks.py``), and the metric
series are looked up once per stream and event type.
"""

from __future__ import annotations

import time

from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import trace
from prometheus_client import Counter
from switchboard_contracts import Envelope

from ..telemetry.metrics import (
    EVENTS_PUBLISHED,
    PUBLISH_BUCKETS,
    PUBLISH_SECONDS,
    TracedHistogram,
)
from ..telemetry.spans import start_producer_span, write_traceparent
from .acks import ack_waiter

MSG_ID = "Nats-Msg-Id"
EXPECTED_STREAM = "Nats-Expected-Stream"
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
EXPECTED_LAST_SUBJECT_SEQ_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"


class Publisher:
    def __init__(self, js: JetStreamContext, stream: str, timeout_s: float = 5.0) -> None:
        self._js = js
        self._stream = stream
        self._timeout = timeout_s
        # The server refuses the publish unless the subject belongs to this stream.
        self._headers = {EXPECTED_STREAM: stream}  # copied by each publish
        self._publish_seconds = TracedHistogram(PUBLISH_SECONDS.labels(stream), PUBLISH_BUCKETS)
        self._published: dict[str, Counter] = {}

    async def publish(
        self,
        subject: str,
        envelope: Envelope,
        *,
        msg_id: str | None = None,
        expected_last_subject_seq: int | None = None,
        expected_subject_filter: str | None = None,
    ) -> PubAck:
        """Store ``envelope`` on ``subject``; returns once JetStream has it.

        ``msg_id`` identifies the fact for the stream's duplicate window (default: the
        event_id). Raises on any failure: the caller decides whether to retry or answer 5xx.
        """
        span = start_producer_span(f"publish {envelope.type}", {
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "switchboard.event_type": envelope.type,
            "switchboard.correlation_id": envelope.correlation_id,
        })
        try:
            headers = self._headers.copy()
            headers[MSG_ID] = msg_id or str(envelope.event_id)
            # The producer span is the consumer span's parent.
            write_traceparent(span, headers)
            if expected_last_subject_seq is not None:
                headers[EXPECTED_LAST_SUBJECT_SEQ] = str(expected_last_subject_seq)
            if expected_subject_filter is not None:
                # Server 2.11+: the sequence check covers a wildcard (a whole aggregate).
                headers[EXPECTED_LAST_SUBJECT_SEQ_SUBJECT] = expected_subject_filter
            started = time.perf_counter()
            ack = await ack_waiter(self._js._nc).publish(subject, envelope.to_bytes(), headers,
                                                         self._timeout)
            self._publish_seconds.observe(time.perf_counter() - started, span)
            self._published_counter(envelope.type).inc()
            span.set_attribute("messaging.nats.stream_seq", ack.seq)
            if ack.duplicate:
                span.set_attribute("switchboard.duplicate", True)
            return ack
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(trace.StatusCode.ERROR)
            raise
        finally:
            span.end()

    def _published_counter(self, event_type: str) -> Counter:
        counter = self._published.get(event_type)
        if counter is None:
            counter = self._published[event_type] = EVENTS_PUBLISHED.labels(self._stream,
                                                                            event_type)
        return counter
