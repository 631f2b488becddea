"""Claiming a conversation's lease from the key as this replica last saw it (no NATS): one
compare-and-set when that is still current, and never a decision that another reply holds
the key without reading it first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from sender.claims import Claims
from sender.leases import Holder, Leases
from sender.state import ReplyState

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class _Entry:
    value: bytes
    revision: int


class FakeBucket:
    """A KV bucket's compare-and-set, shared by the replicas' ``Leases``; counts reads."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.revision = 0
        self.gets = 0

    async def get(self, key: str) -> _Entry:
        self.gets += 1
        if key not in self.entries:
            raise KeyNotFoundError
        return self.entries[key]

    async def create(self, key: str, value: bytes) -> int:
        if key in self.entries:
            raise KeyWrongLastSequenceError
        return self._put(key, value)

    async def update(self, key: str, value: bytes, last: int) -> int:
        if key not in self.entries or self.entries[key].revision != last:
            raise KeyWrongLastSequenceError
        return self._put(key, value)

    def _put(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.entries[key] = _Entry(value, self.revision)
        return self.revision


def _reply(reply_id: str, turn: int) -> ReplyState:
    return ReplyState(reply_id, turn=turn)


def _claims(bucket: FakeBucket) -> Claims:
    store: Any = None  # not read: no holder here is done or expired
    return Claims(Leases(bucket), store, lambda: NOW, timedelta(seconds=120),  # type: ignore[arg-type]
                  timedelta(seconds=5))


async def test_a_claim_on_a_free_or_own_key_is_one_write_without_a_read() -> None:
    bucket = FakeBucket()
    claims = _claims(bucket)
    first = await claims.claim(_reply("r1", 1), "c1")
    again = await claims.claim(_reply("r1", 1), "c1")
    assert isinstance(first, int) and isinstance(again, int) and again > first
    assert bucket.gets == 0


async def test_another_holder_seen_here_earlier_is_read_again_before_deciding() -> None:
    """Replica A last saw turn 2's reply hold the key; replica B has since given it to turn
    1's reply r1 (e.g. r1's earlier part). A must not call r1 stale on what it saw."""
    bucket = FakeBucket()
    replica_a, replica_b = _claims(bucket), Leases(bucket)
    assert isinstance(await replica_a.claim(_reply("r2", 2), "c1"), int)
    current = (await replica_b.read("c1")).revision
    assert await replica_b.write("c1", Holder("r1", 1, NOW), current) is not None
    claimed = await replica_a.claim(_reply("r1", 1), "c1")
    assert isinstance(claimed, int)
    assert bucket.gets == 2  # B's read, and A's before deciding
