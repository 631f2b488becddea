"""The public view (KV) and the one-append first message."""

from __future__ import annotations

import asyncio

from conversation.state import ConversationState
from conversation.view import ViewWriter, open_view_bucket
from conversation_helpers import CID, count, public_view, send_inbound, state, wait_for
from switchboard_contracts.conversation_view import ConversationView, view_key
from switchboard_runtime.eventsourcing import replay


async def test_a_first_message_is_one_append_and_its_view_follows(js, conversation):
    await send_inbound(js, text="hi")
    await wait_for(js, count("ReplyRequested"))
    first = await replay(js, "CONVERSATION", f"conversation.{CID}.>")
    assert [s.envelope.type for s in first] == [
        "ConversationStarted", "UserMessageAppended", "ReplyRequested"]
    batches = set()
    for item in first:
        msg = await js.get_msg("CONVERSATION", item.seq)
        batches.add((msg.headers or {}).get("Nats-Batch-Id"))
    assert len(batches) == 1 and None not in batches  # one atomic batch: one round trip
    current = await state(js)
    view = await public_view(js, version=current.version)
    assert view == ConversationView(
        conversation_id=CID, tenant_id="clinic", version=current.version, turn=1, open=True,
        window_ends_at=current.window_ends_at())


async def test_a_view_is_never_replaced_by_an_older_one(js):
    bucket = await open_view_bucket(js, replicas=1)
    await open_view_bucket(js, replicas=1)  # a second start finds it
    writers = [ViewWriter(bucket, 10) for _ in range(2)]  # two replicas

    def at(version: int) -> ConversationState:
        return ConversationState(conversation_id="cv1", tenant_id="t", version=version,
                                 turn=version, open=True)

    await writers[0].write(at(5))
    await writers[1].write(at(3))  # a replica that is behind: its write loses
    assert ConversationView.from_bytes((await bucket.get(view_key("cv1"))).value).version == 5
    await writers[0].write(at(4))  # and so does an old write from the first replica
    await asyncio.gather(*(writers[i % 2].write(at(v)) for i, v in enumerate(range(6, 16))))
    assert ConversationView.from_bytes((await bucket.get(view_key("cv1"))).value).version == 15
