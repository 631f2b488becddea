"""Reading and replaying the DEADLETTER stream."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError
from switchboard_contracts.deadletter import DeadLetter
from switchboard_contracts.topology import DEADLETTER

from ..bus.deadletters import REPLAY, replay_durable, replay_headers, replay_subject


class NotReplayable(LookupError):
    """The dead letter's consumer takes no replays (it is not a runtime Consumer, or gone)."""


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
    """Send the original event back to the one consumer that failed it, then drop the dead
    letter.

    It goes to that consumer's replay subject on the REPLAY stream, never to the original
    subject: the original stream (an aggregate's history, a fact other consumers read) is
    left as it was.
    """
    stored = await get_dead_letter(js, seq)
    if stored is None:
        raise LookupError(f"no dead letter at sequence {seq}")
    record = stored.record
    try:
        await js.consumer_info(REPLAY.name, replay_durable(record.consumer))
    except NotFoundError:
        raise NotReplayable(
            f"dead letter {seq}: consumer {record.consumer} takes no replays (no "
            f"{replay_durable(record.consumer)} on {REPLAY.name}); left in place"
        ) from None
    ack = await js.publish(replay_subject(record.stream, record.consumer), record.payload,
                           stream=REPLAY.name, headers=replay_headers(record, seq))
    await js.delete_msg(DEADLETTER.name, seq)
    return ack
