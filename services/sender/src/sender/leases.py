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
from dataclasses import dataclass, replace
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from switchboard_runtime.bus.kv import kv_replicas
from switchboard_runtime.eventsourcing import LruCache

LEASES_BUCKET = "sender-going-out"
LEASES_TTL_S = 86400.0  # far beyond any reply's sending time
REMEMBERED = 10_000  # conversations whose key's last revision is kept (a few MB at most)


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
    """A conversation's key: its holder (None: nobody yet) and revision (0: none); ``fresh``
    when just read, else as last seen by this process (``Leases.known``)."""

    holder: Holder | None
    revision: int
    fresh: bool = True


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
    def __init__(self, bucket: KeyValue, remembered: int = REMEMBERED) -> None:
        self._bucket = bucket
        # Per conversation, the key as this process last read or wrote it: usually still
        # current, so a claim is one compare-and-set, without reading the key first.
        self._known: LruCache[str, Lease] = LruCache(remembered)

    def known(self, conversation_id: str) -> Lease:
        """The key as last seen here (never seen: assumed absent). A guess for a write, which
        the compare-and-set checks; never enough to decide that another reply holds it."""
        found = self._known.get(conversation_id)
        return replace(found, fresh=False) if found is not None else Lease(None, 0, fresh=False)

    async def read(self, conversation_id: str) -> Lease:
        try:
            entry = await self._bucket.get(conversation_id)
        except KeyNotFoundError:
            lease = Lease(None, 0)
        else:
            holder = Holder.from_bytes(entry.value) if entry.value else None
            lease = Lease(holder, entry.revision or 0)
        self._known.put(conversation_id, lease)
        return lease

    async def write(self, conversation_id: str, holder: Holder, revision: int) -> int | None:
        """Set the holder if the key is still at ``revision``: the new revision, or None."""
        try:
            if revision == 0:
                written = await self._bucket.create(conversation_id, holder.to_bytes())
            else:
                written = await self._bucket.update(conversation_id, holder.to_bytes(),
                                                    last=revision)
        except KeyWrongLastSequenceError:
            self._known.drop(conversation_id)
            return None
        self._known.put(conversation_id, Lease(holder, written))
        return written
