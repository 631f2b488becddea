"""The adapter to JetStream: the SENDER stream (one subject tree per reply), the part
timers, and the ``sender-messages`` bucket (MessageSid -> reply).

A reply's events live on ``sender.<reply event id>.<Type>``, appended with the version
check over ``sender.<reply event id>.>``. A part timer is a JetStream scheduled message
(ADR-51) held on ``sender.timers.<reply id>.<part>``; when due, the server publishes its body
(a ``PartTimeoutDue`` envelope) to ``sender.<reply id>.PartTimeoutDue``.

A reply is read back by batch direct get, which any replica of the stream answers, also a
follower that has not applied the latest appends yet (a loaded cluster, a node catching up
after a restart). A read that must show a stream sequence the sender knows is stored (its own
append, the fired timer, "the reply was recorded") is repeated until it does: a reply read as
unknown would otherwise look like one with nothing to do, and never move again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue
from switchboard_contracts import Envelope, EventData
from switchboard_contracts.events.sender import PartTimeoutDue
from switchboard_contracts.topology import SENDER
from switchboard_runtime.bus import Publisher
from switchboard_runtime.bus.kv import kv_replicas
from switchboard_runtime.eventsourcing import (
    ConcurrencyConflict,
    append,
    decide_and_append,
    last_version,
    replay,
    schedule_at,
)
from switchboard_runtime.telemetry import get_logger, inject_headers

from .state import ReplyState, apply, fold, reply_subject, reply_tree

log = get_logger(__name__)

MESSAGES_BUCKET = "sender-messages"
MAX_CONFLICTS = 8  # appends to one reply (or writes of one lease) lost to others, then give up
FIRST_REREAD_S = 0.005  # then doubled, within READ_SETTLE_S
READ_SETTLE_S = 2.0  # then the event is retried (the consumer's redelivery delays)


# One event to append, with its typed payload (folded into the state in hand once stored).
Decision = tuple[Envelope, EventData]


class StaleRead(Exception):
    """The replica that answered has not applied events known to be stored: read again
    later (the event is retried)."""


def timer_subject(reply_id: str, part: int) -> str:
    return f"sender.timers.{reply_id}.{part}"


async def open_messages_bucket(js: JetStreamContext, ttl_days: float, replicas: int | None
                               ) -> KeyValue:
    try:
        return await js.key_value(MESSAGES_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(
            bucket=MESSAGES_BUCKET,
            description="Sender: MessageSid -> reply id and part, for status callbacks",
            history=1, ttl=ttl_days * 86400, replicas=kv_replicas(replicas),
        ))


class _InHand:
    """``eventsourcing.Repository`` of one reply for one ``decide_and_append``: it starts from
    the state in hand (no read), and a read after a conflict, or after the leader said the
    reply is further on, shows at least that version (``ReplyStore.load``'s ``at_least``), so
    a lagging replica does not cost conflicts. Bound to one call, not a cache shared by
    concurrent handlers: their states in hand are their own."""

    def __init__(self, store: ReplyStore, state: ReplyState) -> None:
        self._store = store
        self._state = state
        self._at_least = state.version
        self.appended: list[Envelope] = []

    def cached(self, reply_id: str) -> ReplyState:
        return self._state

    async def load(self, reply_id: str) -> ReplyState:
        return await self._store.load(reply_id, at_least=self._at_least)

    async def version(self, reply_id: str) -> int:
        version = await self._store.version(reply_id)
        self._at_least = max(self._at_least, version)
        return version

    async def append(self, state: ReplyState, decision: Decision) -> ReplyState:
        try:
            state = await self._store.append(state, decision)
        except ConcurrencyConflict:
            self._at_least = max(self._at_least, state.version + 1)
            raise
        self.appended.append(decision[0])
        return state


@dataclass(frozen=True, slots=True)
class SentRef:
    reply_id: str
    part: int


class ReplyStore:
    def __init__(self, js: JetStreamContext, publisher: Publisher, messages: KeyValue) -> None:
        self._js = js
        self._publisher = publisher
        self._messages = messages

    async def load(self, reply_id: str, at_least: int = 0) -> ReplyState:
        """The reply as stored up to at least stream sequence ``at_least`` (1: the reply is
        recorded, its first event being its acceptance), re-read while a lagging replica
        answers, for up to ``READ_SETTLE_S``; then ``StaleRead``."""
        started = time.monotonic()
        delay = FIRST_REREAD_S
        while True:
            events = await replay(self._js, SENDER.name, reply_tree(reply_id))
            state = fold(reply_id, ((e.envelope, e.seq) for e in events))
            left = started + READ_SETTLE_S - time.monotonic()
            if state.version >= at_least:
                return state
            if left <= 0:
                raise StaleRead(f"reply read at version {state.version}, {at_least} stored")
            log.debug("reply read from a replica that lags; reading again",
                     version=state.version, at_least=at_least)
            await asyncio.sleep(min(delay, left))
            delay *= 2

    async def version(self, reply_id: str) -> int:
        """The reply's current version, from the stream's leader."""
        return await last_version(self._js, SENDER.name, reply_tree(reply_id))

    async def append(self, state: ReplyState, decision: Decision) -> ReplyState:
        """Append if the tree is still at ``state.version`` (else ``ConcurrencyConflict``) and
        fold the event into ``state``: the state in hand is then the stored one."""
        envelope, data = decision
        ack = await append(self._publisher, reply_tree(state.reply_id),
                           reply_subject(state.reply_id, envelope.type), envelope, state.version)
        return apply(state, envelope, data, ack.seq)

    async def decide(self, state: ReplyState,
                     decide: Callable[[ReplyState], Decision | None]) -> list[Envelope]:
        """``decide_and_append`` on the reply from ``state``, the state in hand, which is
        brought to the state after it (also when read again after a conflict: its holder goes
        on from what is stored); the events this call appended (none: nothing was left)."""
        reply = _InHand(self, state)
        after = await decide_and_append(reply, state.reply_id, decide,
                                        max_conflicts=MAX_CONFLICTS)
        if after is not state:
            for field in fields(ReplyState):
                setattr(state, field.name, getattr(after, field.name))
        return reply.appended

    async def schedule_timeout(self, state: ReplyState, cause: Envelope, part: int,
                               due_at: datetime) -> None:
        """Set (or set again: one schedule per subject) the timer after ``part`` (after part
        0: the next try of a reply waiting for an earlier one of its conversation)."""
        assert state.accepted is not None
        timer = state.accepted.caused(
            PartTimeoutDue(reply_id=state.reply_id, part=part, due_at=due_at),
            causation_id=cause.event_id,
        )
        await schedule_at(self._js, SENDER.name, timer_subject(state.reply_id, part),
                          reply_subject(state.reply_id, PartTimeoutDue.TYPE), due_at, timer)

    async def remember_sid(self, message_sid: str, reply_id: str, part: int, tenant_id: str
                           ) -> None:
        """The tenant too: the gateway refuses a status callback signed by another tenant
        (docs/adr/0015). And the send's trace context: the gateway links the message's status
        callbacks to its trace."""
        await self._messages.put(message_sid, json.dumps(
            {"reply_id": reply_id, "part": part, "tenant_id": tenant_id,
             **inject_headers({})}).encode())

    async def sent_ref(self, message_sid: str) -> SentRef | None:
        try:
            entry = await self._messages.get(message_sid)
        except KeyNotFoundError:  # also raised for a deleted key
            return None
        if not entry.value:
            return None
        raw = json.loads(entry.value)
        return SentRef(raw["reply_id"], int(raw["part"]))
