"""One reply going out per conversation (issue 10), across replicas and crashes.

A conversation's key in the KV bucket ``sender-going-out`` names the reply allowed to send
its parts now (``Holder``: reply id, turn, when it last renewed). Every write is a
compare-and-set on the key's revision, so of two replicas deciding at once one wins and the
other decides again. The holder renews before each Messages API call, after recording the
attempt; a reply that took over meanwhile made that renewal fail, so the old holder sends
nothing more (the part is recorded as not sent, ``stale``).

A reply for a newer turn takes the conversation over when the holder is done (``gone_out``:
every part out or one failed, the last one released as part order requires) or when the
holder has not renewed for ``REPLY_LEASE_S`` (its sender crashed and its event is not coming
back, e.g. dead-lettered). Until then it waits on a durable timer. A reply for an older turn
than the holder's is stale. The key is never deleted: the bucket's TTL clears idle ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from switchboard_runtime.bus.kv import kv_replicas

LEASES_BUCKET = "sender-going-out"
LEASES_TTL_S = 86400.0  # far beyond any reply's sending time


@dataclass(frozen=True, slots=True)
class Holder:
    reply_id: str
    turn: int
    renewed_at: datetime

    def to_bytes(self) -> bytes:
        return json.dumps({"reply_id": self.reply_id, "turn": self.turn,
                           "renewed_at": self.renewed_at.isoformat()}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Holder:
        data = json.loads(raw)
        return cls(data["reply_id"], int(data["turn"]),
                   datetime.fromisoformat(data["renewed_at"]))


@dataclass(frozen=True, slots=True)
class Lease:
    """A conversation's key as read: its holder (None: nobody yet) and revision (0: none)."""

    holder: Holder | None
    revision: int


async def open_leases_bucket(js: JetStreamContext, replicas: int | None) -> KeyValue:
    try:
        return await js.key_value(LEASES_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(
            bucket=LEASES_BUCKET,
            description="Sender: per conversation, the reply whose parts are going out",
            history=1, ttl=LEASES_TTL_S, replicas=kv_replicas(replicas),
        ))


class Leases:
    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket

    async def read(self, conversation_id: str) -> Lease:
        try:
            entry = await self._bucket.get(conversation_id)
        except KeyNotFoundError:
            return Lease(None, 0)
        holder = Holder.from_bytes(entry.value) if entry.value else None
        return Lease(holder, entry.revision or 0)

    async def write(self, conversation_id: str, holder: Holder, revision: int) -> int | None:
        """Set the holder if the key is still at ``revision``: the new revision, or None."""
        try:
            if revision == 0:
                return await self._bucket.create(conversation_id, holder.to_bytes())
            return await self._bucket.update(conversation_id, holder.to_bytes(), last=revision)
        except KeyWrongLastSequenceError:
            return None
