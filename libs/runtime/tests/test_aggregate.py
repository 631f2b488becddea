from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from switchboard_contracts import Envelope
from switchboard_contracts.events.conversation import ConversationStarted, UserMessageAppended
from switchboard_contracts.topology import CONVERSATION
from switchboard_runtime.aggregate import (
    ConcurrencyConflict,
    append,
    conversation_subject,
    load_conversation,
)
from switchboard_runtime.bus import Publisher, ensure_stream


def started(cid: str) -> Envelope:
    return Envelope.wrap(ConversationStarted(user_address="whatsapp:+1555", business_address=
                                             "whatsapp:+1666", account_sid="AC1"),
                         correlation_id="SM1", tenant_id="t", conversation_id=cid)


def message(cid: str, sid: str) -> Envelope:
    data = UserMessageAppended(message_sid=sid, text="hi", received_at=datetime.now(UTC), turn=1)
    return Envelope.wrap(data, correlation_id=sid, tenant_id="t", conversation_id=cid)


async def test_append_checks_the_version_of_the_whole_aggregate(js) -> None:
    await ensure_stream(js, CONVERSATION)
    publisher = Publisher(js, CONVERSATION.name)
    tree = conversation_subject("c1")
    state = await load_conversation(js, "c1")
    assert state.version == 0
    ack = await append(publisher, tree, conversation_subject("c1", "ConversationStarted"),
                       started("c1"), state.version)
    # Another aggregate's events do not move this one's version.
    await append(publisher, conversation_subject("c2"),
                 conversation_subject("c2", "ConversationStarted"), started("c2"), 0)
    await append(publisher, tree, conversation_subject("c1", "UserMessageAppended"),
                 message("c1", "SM1"), ack.seq)
    with pytest.raises(ConcurrencyConflict):  # a writer that loaded before the last append
        await append(publisher, tree, conversation_subject("c1", "UserMessageAppended"),
                     message("c1", "SM2"), ack.seq)
    state = await load_conversation(js, "c1")
    assert state.open and state.message_sids == {"SM1"}
    assert state.user_address == "whatsapp:+1555"


async def test_concurrent_writers_one_wins(js) -> None:
    await ensure_stream(js, CONVERSATION)
    publisher = Publisher(js, CONVERSATION.name)
    tree = conversation_subject("c3")
    results = await asyncio.gather(
        *(append(publisher, tree, conversation_subject("c3", "UserMessageAppended"),
                 message("c3", f"SM{i}"), 0) for i in range(5)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, ConcurrencyConflict) for r in results if isinstance(r, Exception))


async def test_loading_leaves_no_consumer_behind(js) -> None:
    """Each load's consumer is deleted at once: left to expire, a busy service's loads would
    reach the stream's consumer limit (1,000 by default) within the expiry."""
    await ensure_stream(js, CONVERSATION)
    publisher = Publisher(js, CONVERSATION.name)
    await append(publisher, conversation_subject("c1"),
                 conversation_subject("c1", "ConversationStarted"), started("c1"), 0)
    before = (await js.stream_info(CONVERSATION.name)).state.consumer_count
    for _ in range(20):
        assert (await load_conversation(js, "c1")).version > 0
        assert (await load_conversation(js, "nobody")).version == 0
    assert (await js.stream_info(CONVERSATION.name)).state.consumer_count == before
