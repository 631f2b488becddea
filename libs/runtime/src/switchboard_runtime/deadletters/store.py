"""Reading and replaying the DEADLETTER stream."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError
from switchboard_contracts.deadletter import DeadLetter
from switchboard_contracts.topology import DEADLETTER

# Headers that described the original publish and must not apply to the replay.
_DROP_ON_REPLAY = ("Nats-Msg-Id", "Nats-Expected-Last-Subject-Sequence", "Nats-Expected-Stream",
                   "Nats-Expected-Last-Sequence", "Nats-Expected-Last-Msg-Id")


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    seq: int
    record: DeadLetter


async def list_dead_letters(js: JetStreamContext, limit: int = 100) -> list[StoredDeadLetter]:
    """The oldest ``limit`` dead letters still in the stream."""
    info = await js.stream_info(DEADLETTER.name)
    found: list[StoredDeadLetter] = []
    seq = info.state.first_seq
    while seq and seq <= info.state.last_seq and len(found) < limit:
        stored = await get_dead_letter(js, seq)
        if stored is not None:
            found.append(stored)
        seq += 1
    return found


async def get_dead_letter(js: JetStreamContext, seq: int) -> StoredDeadLetter | None:
    try:
        raw = await js.get_msg(DEADLETTER.name, seq)
    except NotFoundError:
        return None
    return StoredDeadLetter(seq, DeadLetter.model_validate_json(raw.data or b"{}"))


async def replay(js: JetStreamContext, seq: int) -> PubAck:
    """Publish the original event again to its original subject, then drop the dead letter.

    Every consumer of that subject sees the replay; handlers are idempotent, so only the one
    that failed does new work.
    """
    stored = await get_dead_letter(js, seq)
    if stored is None:
        raise LookupError(f"no dead letter at sequence {seq}")
    record = stored.record
    headers = {k: v for k, v in record.headers.items() if k not in _DROP_ON_REPLAY}
    original_id = record.headers.get("Nats-Msg-Id", record.event_id or "")
    headers["Nats-Msg-Id"] = f"replay:{seq}:{original_id}"
    ack = await js.publish(record.subject, record.payload, stream=record.stream, headers=headers)
    await js.delete_msg(DEADLETTER.name, seq)
    return ack
