"""What the gateway looks up on its rare paths: which MessageSids it stored (a refused
retry of a stored message still gets 200) and which tenant sent an outbound MessageSid (a
status callback must name a message of the tenant that signed it).

Both are JetStream KV buckets. The stored-sids bucket is written after each store without
waiting (a core publish on the bucket's subject: no round trip on the hot path) and read only
when the per-sender limit refuses. The sent-messages bucket is the sender's (MessageSid ->
reply, part, tenant, the send's trace context), read once per status callback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue
from opentelemetry import trace
from switchboard_runtime.bus.kv import kv_replicas
from switchboard_runtime.telemetry import extract_context, get_logger

log = get_logger(__name__)

STORED_BUCKET = "gateway-stored-sids"
SENT_BUCKET = "sender-messages"  # sender.store.MESSAGES_BUCKET, read only here


class StoredMessages:
    """MessageSid -> tenant of every inbound message stored, for ``ttl_s``."""

    def __init__(self, nc: NATS, bucket: KeyValue) -> None:
        self._nc = nc
        self._bucket = bucket

    @classmethod
    async def open(cls, nc: NATS, ttl_s: float, replicas: int | None = None) -> StoredMessages:
        js = nc.jetstream()
        try:
            bucket = await js.key_value(STORED_BUCKET)
        except BucketNotFoundError:
            # Memory: a hint for the refusal path, rebuilt by traffic; not worth an fsync per
            # webhook. Lost with a single server's restart: those retries get the 429 again.
            bucket = await js.create_key_value(KeyValueConfig(
                bucket=STORED_BUCKET, history=1, ttl=ttl_s, storage=StorageType.MEMORY,
                replicas=kv_replicas(replicas),
                description="Gateway: MessageSids stored, so a refused retry still gets 200",
            ))
        return cls(nc, bucket)

    async def remember(self, message_sid: str, tenant_id: str) -> None:
        """Fire and forget: the message is stored already; this only spares a retry a 429."""
        await self._nc.publish(f"$KV.{STORED_BUCKET}.{message_sid}", tenant_id.encode())

    async def stored(self, message_sid: str, tenant_id: str) -> bool:
        try:
            entry = await self._bucket.get(message_sid)
        except KeyNotFoundError:
            return False
        except Exception as exc:  # unknown: the refusal stands, as it did before
            log.warning("stored-sids lookup failed", error=type(exc).__name__)
            return False
        return entry.value == tenant_id.encode()


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What the sender recorded of an outbound MessageSid (each None when not known)."""

    tenant_id: str | None = None
    sent_in: trace.SpanContext | None = None  # the send's span: its statuses link to it


class SentMessages:
    """Which tenant sent an outbound MessageSid, and in which trace, from the sender's map."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._bucket: KeyValue | None = None

    async def lookup(self, message_sid: str) -> SentMessage:
        """The sending tenant, or None when not known (not recorded yet, or no tenant in the
        record): then the event carries the signer's tenant and consumers scope by it."""
        try:
            if self._bucket is None:
                self._bucket = await self._js.key_value(SENT_BUCKET)
            entry = await self._bucket.get(message_sid)
        except (BucketNotFoundError, KeyNotFoundError):
            return SentMessage()
        except Exception as exc:  # unknown, as if not recorded yet
            log.warning("sent-messages lookup failed", error=type(exc).__name__)
            return SentMessage()
        if not entry.value:
            return SentMessage()
        record = json.loads(entry.value)
        tenant = record.get("tenant_id")
        sent_in = trace.get_current_span(extract_context(record)).get_span_context()
        return SentMessage(tenant if isinstance(tenant, str) else None,
                           sent_in if sent_in.is_valid else None)
