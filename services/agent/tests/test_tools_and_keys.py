"""Tools and per-tenant keys, end to end: a real NATS, the LLM simulator, the real openai SDK
(its tool-calling path), the tenant directory with an encrypted key."""

from __future__ import annotations

import json

import pytest
from agent.credentials import NO_KEY
from agent.fallbacks import UNAVAILABLE
from agent.llm import ChatRequest, Endpoint, chat_model
from agent.main import build
from agent.tools import HANDOFF
from agent_helpers import (
    agent_events,
    new_conversation,
    reply_requested,
    request_reply,
    start_conversation,
    tenant_record,
    wait_for_events,
)
from llm_sim import MARKER
from switchboard_devstack.waiting import drained

REASON = "wants to talk to a person about a refund"


async def test_warming_the_sdk_up_sends_nothing_and_the_first_call_answers(llm):
    chat = chat_model()
    endpoint = Endpoint(llm.base_url, "sk-test")
    await chat.warm_up(endpoint)
    assert llm.requests() == []  # start-up never costs a completion
    completion = await chat.complete(ChatRequest(
        "gpt-4o-mini", [{"role": "user", "content": "hi"}], 5.0, endpoint))
    assert completion.text.startswith(MARKER)
    await chat.aclose()


@pytest.mark.parametrize("text", [None, "Let me get a colleague for you."])
async def test_the_llm_calling_handoff_ends_the_turn_with_its_reason(js, agent, llm, text):
    llm.call_tool("handoff", {"reason": REASON}, text=text)
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation, texts=("I want a refund now",)))

    [reply] = await wait_for_events(js, 1)
    assert reply.data["handoff_reason"] == REASON
    assert reply.data["text"] == (text or "")
    assert reply.data["fallback"] is False and reply.data["fallback_reason"] is None
    assert reply.data["usage"]["completion_tokens"] > 0
    await drained(js)  # handled and acked: a retry or redelivery would have come first
    assert [e.type for e, _ in await agent_events(js)] == ["ReplyGenerated"]
    [sent] = llm.requests()  # the turn ended: the model is not asked again
    assert sent["params"]["tools"] == [HANDOFF.schema()]


async def test_a_tools_result_goes_back_to_the_model_which_then_answers(js, agent, llm):
    llm.call_tool("lookup_order", {"order": "42"}, count=1)  # not a tool the agent has
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation))

    [reply] = await wait_for_events(js, 1)
    assert reply.data["text"].startswith(MARKER) and reply.data["handoff_reason"] is None
    first, second = llm.requests()
    [call] = second["messages"][-2]["tool_calls"]
    assert second["messages"][-2]["role"] == "assistant"
    assert call["function"] == {"name": "lookup_order", "arguments": json.dumps({"order": "42"})}
    result = second["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == call["id"]
    assert "no tool 'lookup_order'" in result["content"] and "handoff" in result["content"]
    assert second["messages"][:-2] == first["messages"]


@pytest.mark.parametrize("settings_overrides", [{"agent_max_tool_rounds": 2}])
async def test_a_model_that_keeps_calling_tools_ends_with_the_fallback(js, agent, llm):
    llm.call_tool("lookup_order", {"order": "42"}, count=None)  # every answer calls it
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation))

    [failed] = await wait_for_events(js, 1, "ReplyFailed")
    [reply] = await wait_for_events(js, 1)
    assert failed.data["reason"] == "tool_rounds_exceeded"
    assert failed.data["attempts"] == 3 and failed.data["permanent"] is False
    assert reply.data["fallback"] is True and reply.data["text"] == UNAVAILABLE["es"]
    assert reply.data["fallback_reason"] == "tool_rounds_exceeded"
    await drained(js)  # handled and acked: a retry or redelivery would have come first
    requests = llm.requests()
    assert len(requests) == 3  # two rounds of results sent back, then it gives up
    assert [sum(m["role"] == "tool" for m in r["messages"]) for r in requests] == [0, 1, 2]


# -- per-tenant LLM credentials -------------------------------------------------------------
GLOBAL_KEY = "sk-global-secret"
TENANT_KEY = "sk-tenant-own"


@pytest.mark.parametrize(("own_endpoint", "own_key", "expected"), [
    # Its own base URL and no key of its own: never the global key, a placeholder.
    (True, None, ("/tenant-a/v1", f"Bearer {NO_KEY}")),
    (True, TENANT_KEY, ("/tenant-a/v1", f"Bearer {TENANT_KEY}")),
    # Its own key only: the global base URL with its key.
    (False, TENANT_KEY, ("/v1", f"Bearer {TENANT_KEY}")),
    (False, None, ("/v1", f"Bearer {GLOBAL_KEY}")),
])
async def test_a_tenant_gets_its_own_key_and_its_endpoint_never_the_global_key(
        js, streams, tenants, make_settings, llm, cipher, own_endpoint, own_key, expected):
    await tenants.publish(tenant_record(
        cipher, llm_base_url=llm.base_url_for("tenant-a") if own_endpoint else None,
        llm_api_key=own_key))
    async with build(make_settings(openai_api_key=GLOBAL_KEY)).running():
        ours, unknown = new_conversation(), new_conversation()
        await start_conversation(js, ours)
        await request_reply(js, reply_requested(ours))
        await wait_for_events(js, 1)
        # A tenant the directory does not know gets the global endpoint and key.
        await request_reply(js, reply_requested(unknown, tenant_id="not-in-directory"))
        await wait_for_events(js, 2)

    received = [(r["base_path"], r["authorization"]) for r in llm.requests()]
    assert received == [expected, ("/v1", f"Bearer {GLOBAL_KEY}")]
