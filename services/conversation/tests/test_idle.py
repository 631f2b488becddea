"""Idle close through JetStream message schedules: durable, restart-safe, one per conversation."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from conversation_helpers import (
    CID,
    count,
    held_timers,
    of_type,
    send_inbound,
    send_reply,
    settle,
    wait_for,
)
from switchboard_runtime.eventsourcing import replay

IDLE_S = 1.5


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"conversation_idle_close_s": IDLE_S}


async def test_an_idle_conversation_closes_and_the_next_message_starts_a_new_session(
    js, conversation
):
    await send_inbound(js, text="hi")
    events = await wait_for(js, count("ConversationClosed"), timeout_s=IDLE_S + 8)
    closed = of_type(events, "ConversationClosed")[0]
    assert (closed.data["reason"], closed.data["session"]) == ("idle", 1)
    last_activity = of_type(events, "UserMessageAppended")[-1].occurred_at
    assert (closed.occurred_at - last_activity).total_seconds() >= IDLE_S

    later = await send_inbound(js, text="hello again")
    events = await wait_for(js, count("ReplyRequested", 2))
    started = of_type(events, "ConversationStarted")
    assert [s.data["session"] for s in started] == [1, 2]
    request = of_type(events, "ReplyRequested")[1]
    assert request.data["turn"] == 2  # turns keep counting across sessions
    assert request.data["message_sids"] == [later.data["message_sid"]]
    assert [c["content"] for c in request.data["context"]] == ["hello again"]  # fresh context


async def test_activity_postpones_the_close(js, conversation):
    await send_inbound(js, text="hi")
    request = of_type(await wait_for(js, count("ReplyRequested")), "ReplyRequested")[0]
    await asyncio.sleep(IDLE_S * 0.6)
    await send_reply(js, request, "hello")  # activity: the timer moves
    events = await wait_for(js, count("AssistantMessageAppended"))
    answered_at = of_type(events, "AssistantMessageAppended")[0].occurred_at
    events = await wait_for(js, count("ConversationClosed"), timeout_s=IDLE_S + 8)
    closed = of_type(events, "ConversationClosed")[0]
    assert (closed.occurred_at - answered_at).total_seconds() >= IDLE_S
    assert len(of_type(await settle(js), "ConversationClosed")) == 1
    assert "idle" not in await held_timers(js)  # no timer left to close it again


async def test_the_timer_survives_a_service_and_server_restart(js, nats_server, make_service):
    async with make_service().running():
        await send_inbound(js, text="hi")
        await wait_for(js, count("ReplyRequested"))
    # Nobody runs the service while the conversation goes idle, and the server restarts.
    nats_server.stop()
    nats_server.start()
    deadline = time.monotonic() + IDLE_S + 8
    fired: list[str] = []
    while "IdleCheckDue" not in fired:
        assert time.monotonic() < deadline, "the timer did not fire"
        await asyncio.sleep(0.1)
        with contextlib.suppress(TimeoutError):  # a read sent while the client reconnects
            fired = await stored_types(js)
    assert "ConversationClosed" not in fired
    async with make_service().running():
        events = await wait_for(js, count("ConversationClosed"), timeout_s=10)
    assert of_type(events, "ConversationClosed")[0].data["session"] == 1


async def stored_types(js) -> list[str]:
    """Every event type on the conversation's subjects, timer firings included."""
    return [s.envelope.type for s in await replay(js, "CONVERSATION", f"conversation.{CID}.>")]
