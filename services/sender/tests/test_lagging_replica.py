"""Chaos finding 2 (docs/reliability.md): replies accepted by the sender and then nothing, no
attempt, no outcome, no timer, every consumer at lag 0.

A reply's events are read back by batch direct get, which any replica of the SENDER stream
answers (``allow_direct``), also a follower that has not applied the latest appends yet: on
a loaded cluster, or one catching up after a NATS node was killed. Read from such a replica,
a reply the sender has just recorded, or one whose timer just fired, looks unknown
(``accepted`` None), and the sender took that for "nothing to do": it acknowledged the event
and the reply never moved again. These tests make the SENDER stream's replica lag for given
reads of one reply (a single NATS server has no follower to lag, so the read is filtered as a
lagging follower would answer it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sender.store
from sender.outcomes import Outcomes
from sender.state import ReplyState
from sender.store import MAX_CONFLICTS, ReplyStore, open_messages_bucket
from sender_helpers import (
    attempts,
    eventually,
    of_type,
    publish_reply,
    reply,
    seed_conversation,
    sender_events,
    set_view,
    wait_for,
)
from switchboard_contracts.events.sender import OutboundReplyAccepted
from switchboard_contracts.topology import SENDER
from switchboard_runtime.bus import Publisher, ensure_streams
from switchboard_runtime.eventsourcing import Stored, replay


class LaggingReplica:
    """Answers reads of one reply's events as a follower that has applied none of them yet,
    for the reads numbered in ``stale`` (1-based, counting that reply's reads) or while
    ``lagging`` is set; every other read is answered as stored."""

    def __init__(self, reply_id: str, stale: frozenset[int] = frozenset()) -> None:
        self._tree = f"sender.{reply_id}.>"
        self._stale = stale
        self.lagging = False
        self.reads = 0
        self.stale_reads = 0

    async def replay(self, js: object, stream: str, subjects: str) -> list[Stored]:
        events = await replay(js, stream, subjects)  # type: ignore[arg-type]
        if subjects != self._tree:
            return events
        self.reads += 1
        if self.lagging or self.reads in self._stale:
            self.stale_reads += 1
            return []
        return events


@pytest.fixture
def lagging(monkeypatch: pytest.MonkeyPatch) -> Callable[[LaggingReplica], None]:
    def install(replica: LaggingReplica) -> None:
        monkeypatch.setattr(sender.store, "replay", replica.replay)

    return install


async def test_a_reply_just_recorded_is_sent_without_a_read_back_a_lagging_replica_answers(
    js, sim, start_sender, lagging
) -> None:
    """The state in hand after the acceptance's append is the stored one: the reply goes on
    from it (it used to be read back, and a lagging replica answered that read as empty)."""
    turn = await seed_conversation(js)
    envelope = reply(turn, "Read back from a replica that lags.")
    # Every read of the reply's tree lags: the first (before the acceptance is appended,
    # rightly empty) and any read back after it.
    replica = LaggingReplica(str(envelope.event_id))
    replica.lagging = True
    lagging(replica)
    async with start_sender():
        await publish_reply(js, envelope)
        await wait_for(js, str(envelope.event_id), "OutboundMessageSent", timeout_s=10)
    assert replica.reads == 1  # no read back
    assert len(await attempts(sim)) == 1


async def test_a_waiting_reply_whose_timer_is_read_on_a_lagging_replica_goes_on_waiting(
    js, sim, start_sender, lagging
) -> None:
    # The conversation has not decided on turn 1 yet: the reply waits on its part-0 timer.
    turn = await seed_conversation(js, answered_turn=0)
    envelope = reply(turn, "Once accepted.")
    reply_id = str(envelope.event_id)
    replica = LaggingReplica(reply_id)
    lagging(replica)
    async with start_sender(view_settle_s=0.0, reply_wait_poll_s=0.5):
        await publish_reply(js, envelope)

        async def polling() -> bool:  # a timer fired at least once: the reply is waiting
            return any(e.type == "PartTimeoutDue" for e in await sender_events(js, reply_id))

        await eventually(polling)
        # The next timer's read is answered by a replica that lags; then it catches up and
        # the conversation accepts the reply.
        replica.lagging, reads = True, replica.reads

        async def read_stale() -> bool:
            return replica.reads > reads

        await eventually(read_stale)
        replica.lagging = False
        await set_view(js, turn.conversation_id, turn=1)
        await wait_for(js, reply_id, "OutboundMessageSent", timeout_s=10)
    assert replica.stale_reads >= 1
    assert len(await attempts(sim)) == 1


async def test_an_outcome_another_delivery_recorded_first_is_kept_read_from_a_lagging_replica(
    js, lagging, monkeypatch
) -> None:
    """Two deliveries hold the same reply at the same version; the second's outcome conflicts.
    Its reads after the conflict are answered by a replica that lags (more reads than
    ``MAX_CONFLICTS``): they are read again until they show the conflicting append, not
    decided on (each would be one more conflict, and the outcome given up), and then the
    part's outcome is not appended twice and the state in hand is the stored one."""
    await ensure_streams(js, (SENDER,))
    store = ReplyStore(js, Publisher(js, SENDER.name), await open_messages_bucket(js, 1, None))
    cause = reply(await seed_conversation(js), "One outcome per part.")
    reply_id = str(cause.event_id)
    acceptance = OutboundReplyAccepted(turn=1, texts=["One outcome per part."],
                                       to_address="u", from_address="b", account_sid="a")
    recorded = (cause.caused(acceptance), acceptance)
    assert await store.decide(ReplyState(reply_id), lambda s: None if s.accepted else recorded)
    mine, theirs = await store.load(reply_id), await store.load(reply_id)
    outcomes = Outcomes(store, timedelta(seconds=5))
    await outcomes.sent(theirs, cause, 1, "SMtheirs", "created")

    monkeypatch.setattr(sender.store, "FIRST_REREAD_S", 0.001)
    replica = LaggingReplica(reply_id, stale=frozenset(range(1, MAX_CONFLICTS + 1)))
    lagging(replica)
    await outcomes.sent(mine, cause, 1, "SMmine", "created")

    assert replica.stale_reads == MAX_CONFLICTS
    sent = of_type(await sender_events(js, reply_id), "OutboundMessageSent")
    assert [e.data["message_sid"] for e in sent] == ["SMtheirs"]
    assert mine.part(1).message_sid == "SMtheirs" and mine.version == theirs.version
