"""Writing to the dead-letter stream, and catching what ran out of deliveries unanswered.

A consumer dead-letters an event itself when its handler fails on the last delivery, rejects
a poison message, or sees an unknown major version. When a handler never answers (crash,
ack timeout) on the last delivery, the server's MAX_DELIVERIES advisory is captured in the
ADVISORIES stream and the collector here fetches the original by sequence and files it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from switchboard_contracts import Envelope
from switchboard_contracts.deadletter import DeadLetter
from switchboard_contracts.topology import DEADLETTER, deadletter_subject

from ..telemetry import get_logger, redact_text
from ..telemetry.metrics import DEAD_LETTERS

log = get_logger(__name__)

MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
NO_ANSWER = "max deliveries reached without an answer (handler crashed or timed out)"


def _envelope_fields(raw: bytes) -> dict[str, str | None]:
    try:
        env = Envelope.from_bytes(raw)
    except ValueError:
        return {}
    return {
        "event_type": env.type,
        "event_id": str(env.event_id),
        "correlation_id": env.correlation_id,
        "tenant_id": env.tenant_id,
    }


async def dead_letter(
    js: JetStreamContext,
    *,
    stream: str,
    consumer: str,
    subject: str,
    stream_seq: int,
    deliveries: int,
    payload: bytes,
    headers: Mapping[str, str] | None,
    reason: str,
    error: str | None = None,
) -> None:
    """Store a dead letter. Idempotent per (stream, consumer, sequence) within the window."""
    record = DeadLetter(
        stream=stream,
        consumer=consumer,
        subject=subject,
        stream_seq=stream_seq,
        deliveries=deliveries,
        reason=redact_text(reason),
        error=redact_text(error) if error else None,
        headers=dict(headers or {}),
        payload_b64=DeadLetter.encode_payload(payload),
        **_envelope_fields(payload),
    )
    await js.publish(
        deadletter_subject(stream, consumer),
        record.model_dump_json().encode(),
        stream=DEADLETTER.name,
        headers={"Nats-Msg-Id": f"dl:{stream}:{consumer}:{stream_seq}"},
    )
    DEAD_LETTERS.labels(consumer, reason.split(":", 1)[0][:60]).inc()
    log.warning("event dead-lettered", stream=stream, consumer=consumer, stream_seq=stream_seq,
                reason=record.reason, deliveries=deliveries, **{
                    k: v for k, v in _envelope_fields(payload).items() if k != "tenant_id"})


def advisory_subject(stream: str, consumer: str) -> str:
    return f"{MAX_DELIVERIES_ADVISORY}.{stream}.{consumer}"


async def file_max_deliveries_advisory(js: JetStreamContext, msg: Msg) -> None:
    """Turn one captured MAX_DELIVERIES advisory into a dead letter with the original event."""
    advisory = json.loads(msg.data)
    stream, consumer, seq = advisory["stream"], advisory["consumer"], int(advisory["stream_seq"])
    original = await js.get_msg(stream, seq)
    await dead_letter(
        js,
        stream=stream,
        consumer=consumer,
        subject=original.subject or "",
        stream_seq=seq,
        deliveries=int(advisory.get("deliveries", 0)),
        payload=original.data or b"",
        headers=original.headers,
        reason=NO_ANSWER,
    )

