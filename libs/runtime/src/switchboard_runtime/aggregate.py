"""Event-sourced aggregates on JetStream: replay a subject tree, append with a version check.

An aggregate's events live on ``<prefix>.<id>.<Type>``; its version is the stream sequence
of its last event. ``append`` publishes with ``Nats-Expected-Last-Subject-Sequence`` over the
whole ``<prefix>.<id>.>`` tree, so a concurrent writer makes it fail with a conflict.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, PubAck
from nats.js.errors import APIError
from switchboard_contracts import Envelope
from switchboard_contracts.conversation_state import ConversationState, fold
from switchboard_contracts.topology import CONVERSATION

from .bus import Publisher


class ConcurrencyConflict(Exception):
    """Another writer appended first: reload and decide again."""


@dataclass(frozen=True, slots=True)
class Stored:
    envelope: Envelope
    seq: int


def conversation_subject(conversation_id: str, event_type: str = ">") -> str:
    return f"conversation.{conversation_id}.{event_type}"


async def replay(js: JetStreamContext, stream: str, subjects: str) -> list[Stored]:
    """Every event on ``subjects``, in order, through a short-lived ephemeral consumer.

    The consumer is deleted at the end: left to its inactivity threshold it would count
    against the stream's consumer limit (1,000 by default since nats-server 2.15) for 30 s,
    and a busy service replays many conversations a second."""
    sub = await js.pull_subscribe(
        subjects, stream=stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                              inactive_threshold=30.0, mem_storage=True),
    )
    consumer: str | None = None
    try:
        info = await sub.consumer_info()
        consumer = info.name
        remaining = info.num_pending or 0
        events: list[Stored] = []
        while remaining > 0:
            for msg in await sub.fetch(min(remaining, 256), timeout=5.0):
                events.append(Stored(Envelope.from_bytes(msg.data), msg.metadata.sequence.stream))
                remaining = msg.metadata.num_pending
        return events
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        if consumer is not None:
            with contextlib.suppress(Exception):  # else the threshold removes it
                await js.delete_consumer(stream, consumer)


async def load_conversation(js: JetStreamContext, conversation_id: str) -> ConversationState:
    events = await replay(js, CONVERSATION.name, conversation_subject(conversation_id))
    state = fold((e.envelope, e.seq) for e in events)
    state.conversation_id = conversation_id
    return state


async def append(
    publisher: Publisher, subject_tree: str, subject: str, envelope: Envelope, version: int
) -> PubAck:
    """Append if the tree's last event is still at ``version`` (0: no event yet)."""
    try:
        return await publisher.publish(
            subject, envelope, expected_last_subject_seq=version,
            expected_subject_filter=subject_tree,
        )
    except APIError as exc:
        if exc.err_code == 10071:  # wrong last sequence
            raise ConcurrencyConflict(subject_tree) from None
        raise
