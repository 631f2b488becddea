"""Publish an event to JetStream and wait for the PubAck, with dedup and trace context."""

from __future__ import annotations

import time

from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import trace
from switchboard_contracts import Envelope

from ..telemetry import inject_headers
from ..telemetry.metrics import EVENTS_PUBLISHED, PUBLISH_SECONDS

MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
EXPECTED_LAST_SUBJECT_SEQ_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"

tracer = trace.get_tracer("switchboard.bus")


class Publisher:
    def __init__(self, js: JetStreamContext, stream: str, timeout_s: float = 5.0) -> None:
        self._js = js
        self._stream = stream
        self._timeout = timeout_s

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
        with tracer.start_as_current_span(
            f"publish {envelope.type}",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": subject,
                "switchboard.event_type": envelope.type,
                "switchboard.correlation_id": envelope.correlation_id,
            },
        ) as span:
            headers = inject_headers({MSG_ID: msg_id or str(envelope.event_id)})
            if expected_last_subject_seq is not None:
                headers[EXPECTED_LAST_SUBJECT_SEQ] = str(expected_last_subject_seq)
            if expected_subject_filter is not None:
                # Server 2.11+: the sequence check covers a wildcard (a whole aggregate).
                headers[EXPECTED_LAST_SUBJECT_SEQ_SUBJECT] = expected_subject_filter
            started = time.perf_counter()
            ack = await self._js.publish(
                subject, envelope.to_bytes(), timeout=self._timeout,
                stream=self._stream, headers=headers,
            )
            PUBLISH_SECONDS.labels(self._stream).observe(time.perf_counter() - started)
            EVENTS_PUBLISHED.labels(self._stream, envelope.type).inc()
            span.set_attribute("messaging.nats.stream_seq", ack.seq)
            if ack.duplicate:
                span.set_attribute("switchboard.duplicate", True)
            return ack
