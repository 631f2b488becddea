"""Writing to the dead-letter stream, catching what ran out of deliveries unanswered, and
where replays go.

A consumer dead-letters an event itself when its handler fails on the last delivery, rejects
a poison message, or sees an unknown major version. When a handler never answers (crash,
ack timeout) on the last delivery, the server's MAX_DELIVERIES advisory is captured in the
ADVISORIES stream and the collector here fetches the original by sequence and files it.

A replay goes to the REPLAY stream, on a subject only the consumer that failed reads (its
second durable), never back to the original subject: there it would append to an aggregate's
history without the version check, or duplicate a fact every other consumer sees again. A
replay that fails again is dead-lettered under its origin (stream, subject, sequence,
consumer), so it can be replayed once more.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from switchboard_contracts import Envelope
from switchboard_contracts.deadletter import DeadLetter
from switchboard_contracts.topology import DEADLETTER, StreamSpec, deadletter_subject

from ..telemetry import get_logger, redact_text
from ..telemetry.metrics import DEAD_LETTERS

log = get_logger(__name__)

MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
NO_ANSWER = "max deliveries reached without an answer (handler crashed or timed out)"

# Written by the dead-letter CLI, read by every Consumer (runtime infrastructure, like
# ADVISORIES: no service owns it, each creates it if missing).
REPLAY = StreamSpec(
    "REPLAY", ("replay.>",),
    "Dead-lettered events sent back, each to the one consumer that had failed it",
    max_age_days=7.0,
)
# Where a replayed event came from, on the replay message.
REPLAY_OF = "Switchboard-Replay-Of"  # the dead letter's sequence in DEADLETTER
ORIGIN_STREAM = "Switchboard-Origin-Stream"
ORIGIN_SUBJECT = "Switchboard-Origin-Subject"
ORIGIN_SEQ = "Switchboard-Origin-Seq"
ORIGIN_CONSUMER = "Switchboard-Origin-Consumer"
_REPLAY_HEADERS = (REPLAY_OF, ORIGIN_STREAM, ORIGIN_SUBJECT, ORIGIN_SEQ, ORIGIN_CONSUMER)


def replay_subject(stream: str, consumer: str) -> str:
    """Read only by ``consumer``'s replay durable (``<durable>-replay`` on REPLAY: durable
    names start with their service's name, so they are unique across services)."""
    return f"replay.{stream}.{consumer}"


def replay_durable(consumer: str) -> str:
    return f"{consumer}-replay"


def replay_headers(record: DeadLetter, dead_letter_seq: int) -> dict[str, str]:
    """The original headers (trace context included), without the directives of the original
    publish (Nats-*: its id, expected sequences, schedules), and the origin."""
    headers = {k: v for k, v in record.headers.items()
               if not k.startswith("Nats-") and k not in _REPLAY_HEADERS}
    headers["Nats-Msg-Id"] = f"replay:{dead_letter_seq}:{record.event_id or record.stream_seq}"
    headers.update({
        REPLAY_OF: str(dead_letter_seq), ORIGIN_STREAM: record.stream,
        ORIGIN_SUBJECT: record.subject, ORIGIN_SEQ: str(record.stream_seq),
        ORIGIN_CONSUMER: record.consumer,
    })
    return headers


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
    """Store a dead letter. Idempotent per (stream, consumer, sequence[, replay]) within the
    window. A failed replay is filed under its origin."""
    headers = dict(headers or {})
    msg_id = f"dl:{stream}:{consumer}:{stream_seq}"
    if REPLAY_OF in headers:
        stream, subject = headers[ORIGIN_STREAM], headers[ORIGIN_SUBJECT]
        stream_seq, consumer = int(headers[ORIGIN_SEQ]), headers[ORIGIN_CONSUMER]
        # Not the first dead letter's id, which the duplicate window may still hold.
        msg_id = f"dl:{stream}:{consumer}:{stream_seq}:replay:{headers[REPLAY_OF]}"
        headers = {k: v for k, v in headers.items() if k not in _REPLAY_HEADERS}
    record = DeadLetter(
        stream=stream,
        consumer=consumer,
        subject=subject,
        stream_seq=stream_seq,
        deliveries=deliveries,
        reason=redact_text(reason),
        error=redact_text(error) if error else None,
        headers=headers,
        payload_b64=DeadLetter.encode_payload(payload),
        **_envelope_fields(payload),
    )
    await js.publish(
        deadletter_subject(stream, consumer),
        record.model_dump_json().encode(),
        stream=DEADLETTER.name,
        headers={"Nats-Msg-Id": msg_id},
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

