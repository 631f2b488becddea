"""Concurrent writers on one conversation: the version check keeps turns unique and ordered."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from conversation.metrics import CONFLICTS
from conversation.view import open_view_bucket
from conversation_helpers import (
    history,
    of_type,
    replica,
    send_inbound,
    send_reply,
    settle,
    sid,
    state,
)
from switchboard_contracts import Envelope, registry
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.topology import CONVERSATION, conversation_id_for
from switchboard_runtime.bus import ensure_stream


def check_turns(events: list[Envelope], sids: set[str]) -> None:
    appended = [e.data["message_sid"] for e in of_type(events, "UserMessageAppended")]
    assert sorted(appended) == sorted(sids)  # each message exactly once
    assert len(of_type(events, "ConversationStarted")) == 1
    requests = of_type(events, "ReplyRequested")
    turns = [r.data["turn"] for r in requests]
    assert turns == list(range(1, len(turns) + 1))  # no duplicate, no gap, in order
    covered = [s for r in requests for s in r.data["message_sids"]]
    assert sorted(covered) == sorted(sids)  # each message answered by exactly one turn
    answered = [a.data["turn"] for a in of_type(events, "AssistantMessageAppended")]
    assert len(answered) == len(set(answered))
    # A message's turn is the turn that answers it.
    turn_of = {s: r.data["turn"] for r in requests for s in r.data["message_sids"]}
    for message in of_type(events, "UserMessageAppended"):
        assert message.data["turn"] == turn_of[message.data["message_sid"]]


async def test_handlers_racing_on_one_conversation(nc, js):
    await ensure_stream(js, CONVERSATION)
    bucket = await open_view_bucket(js, replicas=1)
    # Two writers as two replicas would be: each its own cache, its own view writer.
    writers = [replica(nc, js, bucket) for _ in range(2)]
    conflicts_before = CONFLICTS._value.get()
    sids = {sid() for _ in range(8)}
    events = []
    for message_sid in sids:
        data = InboundMessageReceived(message_sid=message_sid, account_sid="AC1",
                                      from_address="whatsapp:+15550100", to_address="whatsapp:+1",
                                      body=f"text {message_sid}")
        events.append(registry.decode(Envelope.wrap(data, correlation_id=message_sid,
                                                    tenant_id="clinic")))
    # Every message handled by both writers at once: conflicts galore, one outcome.
    await asyncio.gather(*(w.on_inbound(e) for e in events for w in writers))
    assert CONFLICTS._value.get() > conflicts_before
    cid = conversation_id_for("clinic", "whatsapp:+15550100")
    stored = await history(js, cid)
    requests = of_type(stored, "ReplyRequested")
    assert len(requests) == 1 and requests[0].data["turn"] == 1
    messages = of_type(stored, "UserMessageAppended")
    assert len(messages) == 8 and len({m.data["message_sid"] for m in messages}) == 8


async def test_two_service_instances_never_duplicate_or_reorder_turns(js, make_service):
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(make_service().running())
        sids: set[str] = set()
        replied: set[int] = set()

        # Stopped by a flag, not by cancelling: a cancel that lands inside a NATS call can be
        # swallowed there, and the loop would then never end.
        done = asyncio.Event()

        async def agent() -> None:  # answers every turn, a little slowly
            while not done.is_set():
                for request in of_type(await history(js), "ReplyRequested"):
                    if request.data["turn"] not in replied:
                        replied.add(request.data["turn"])
                        await asyncio.sleep(0.05)
                        await send_reply(js, request, f"answer {request.data['turn']}")
                await asyncio.sleep(0.02)

        answering = asyncio.create_task(agent())
        try:
            for round_ in range(5):
                sent = await asyncio.gather(*(send_inbound(js, text=f"m{round_}.{i}")
                                              for i in range(4)))
                sids.update(e.data["message_sid"] for e in sent)
                # and a webhook retried with another event id, beyond the dedup window
                await send_inbound(js, sent[0].data["message_sid"], text="dup",
                                   event_id=uuid.uuid4(), msg_id=f"late-{round_}")
                await asyncio.sleep(0.1)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                st = await state(js)
                if (st.message_sids == sids and not st.reply_in_flight
                        and not st.waiting_message_sids):
                    break
                await asyncio.sleep(0.1)
        finally:
            done.set()
            await answering
        events = await settle(js)
    check_turns(events, sids)
    st = await state(js)
    assert not st.reply_in_flight and not st.waiting_message_sids
    # The last turn was answered (the others superseded or answered, never both).
    answered = {a.data["turn"] for a in of_type(events, "AssistantMessageAppended")}
    superseded = {s.data["turn"] for s in of_type(events, "ReplySuperseded")}
    assert not answered & superseded
    assert answered | superseded == set(range(1, st.turn + 1))
    assert st.turn in answered
