"""The agent against a real NATS, the LLM simulator and the real openai SDK."""

from __future__ import annotations

import asyncio

import pytest
from agent.fallbacks import AUDIO_NOT_UNDERSTOOD, UNAVAILABLE
from agent.llm import DEV_MARKER, DEV_MODEL
from agent.main import build
from agent_helpers import (
    MODEL,
    PROMPT,
    agent_events,
    new_conversation,
    reply_requested,
    request_reply,
    start_conversation,
    tenant_record,
    user_texts,
    wait_for_events,
    wait_until_handled,
)
from llm_sim import MARKER
from switchboard_contracts.conversation_view import Mode
from switchboard_devstack.waiting import drained


async def test_the_llms_answer_becomes_one_reply_generated(js, agent, llm):
    conversation = new_conversation()
    await start_conversation(js, conversation)
    request = reply_requested(conversation, correlation_id="SMturn1")
    await request_reply(js, request)

    [reply] = await wait_for_events(js, 1)
    data = reply.data
    assert data["text"] == f"{MARKER} You said: Is the clinic open tomorrow?"
    assert data["fallback"] is False and data["turn"] == 1
    assert data["model"] == MODEL
    assert data["usage"]["prompt_tokens"] > 0 and data["usage"]["completion_tokens"] > 0
    assert data["latency_ms"] > 0
    assert reply.correlation_id == "SMturn1"
    assert reply.causation_id == request.event_id
    assert (reply.tenant_id, reply.conversation_id) == ("clinic", conversation)
    [(_, headers)] = await agent_events(js, "ReplyGenerated")
    assert headers["Nats-Msg-Id"] == f"agent:{conversation}:1:ReplyGenerated"
    await drained(js)  # handled and acked: a retry or redelivery would have come first
    assert len(await agent_events(js)) == 1


async def test_the_tenants_prompt_model_language_and_the_history_are_sent(js, agent, llm):
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(
        conversation, texts=("Hola", "¡Hola! ¿En qué puedo ayudarte?", "¿Abren mañana?")))
    await wait_for_events(js, 1)

    [sent] = llm.requests()
    assert sent["model"] == MODEL
    system = sent["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith(PROMPT) and "Spanish" in system["content"]
    assert sent["messages"][1:] == [
        {"role": "user", "content": "Hola"},
        {"role": "assistant", "content": "¡Hola! ¿En qué puedo ayudarte?"},
        {"role": "user", "content": "¿Abren mañana?"},
    ]
    assert sent["authorization"]


async def test_two_server_errors_then_an_answer_is_one_reply(js, agent, llm):
    llm.fail("500", count=2)
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation))

    [reply] = await wait_for_events(js, 1)
    assert reply.data["fallback"] is False
    assert [r["outcome"] for r in llm.requests()] == ["error:500", "error:500", "ok"]
    assert await agent_events(js, "ReplyFailed") == []


async def test_a_429_is_retried_after_the_time_it_asks_for(js, agent, llm):
    llm.fail("429", retry_after_s=1)
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation))

    [reply] = await wait_for_events(js, 1)
    assert reply.data["fallback"] is False
    first, second = llm.requests()
    assert first["outcome"] == "error:429" and second["outcome"] == "ok"
    assert second["received_at"] - first["received_at"] >= 0.95  # not the 10-50 ms backoff


async def test_retry_after_ms_wins_over_retry_after(js, agent, llm):
    llm.fail("429", retry_after_s=5, retry_after_ms=300)
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation))

    await wait_for_events(js, 1)
    first, second = llm.requests()
    assert 0.28 <= second["received_at"] - first["received_at"] < 2


async def test_when_the_llm_keeps_failing_the_user_gets_the_fallback_in_their_language(
        js, agent, llm):
    llm.fail("503", count=10)
    conversation = new_conversation()
    await start_conversation(js, conversation)
    request = reply_requested(conversation, correlation_id="SMfails")
    await request_reply(js, request)

    [reply] = await wait_for_events(js, 1)
    [failed] = await wait_for_events(js, 1, "ReplyFailed")
    assert failed.data["attempts"] == 3 and failed.data["reason"] == "http 503"
    assert failed.data["permanent"] is False
    assert reply.data["fallback"] is True
    assert reply.data["text"] == UNAVAILABLE["es"]
    assert reply.data["fallback_reason"] == "llm_failed"
    assert reply.correlation_id == failed.correlation_id == "SMfails"
    assert [e.type for e, _ in await agent_events(js)] == ["ReplyFailed", "ReplyGenerated"]
    assert len(llm.requests()) == 3


@pytest.mark.parametrize("settings_overrides", [{"llm_timeout_s": 0.3}])
async def test_timeouts_are_retried_then_the_fallback_is_sent(js, agent, llm):
    llm.delay(1.5)
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation))

    [failed] = await wait_for_events(js, 1, "ReplyFailed")
    assert failed.data == {**failed.data, "reason": "timeout", "attempts": 3}
    [reply] = await wait_for_events(js, 1)
    assert reply.data["fallback"] is True and reply.data["text"] == UNAVAILABLE["es"]
    assert len(llm.requests()) == 3


@pytest.mark.parametrize("settings_overrides", [{"llm_timeout_s": 1.0}])
async def test_a_slow_answer_after_a_timeout_is_retried_into_a_reply(js, agent, llm):
    llm.delay(2.0, count=1)
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation))

    [reply] = await wait_for_events(js, 1)
    assert reply.data["fallback"] is False
    assert len(llm.requests()) == 2


@pytest.mark.parametrize("kind", ["401", "403", "400", "404"])
async def test_a_refused_request_is_not_retried_and_falls_back(js, agent, llm, kind):
    llm.fail(kind, count=5)
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation))

    [failed] = await wait_for_events(js, 1, "ReplyFailed")
    assert failed.data["permanent"] is True and failed.data["attempts"] == 1
    assert failed.data["reason"].startswith(f"http {kind}")
    [reply] = await wait_for_events(js, 1)
    assert reply.data["fallback_reason"] == "llm_rejected"
    assert reply.data["text"] == UNAVAILABLE["es"]
    assert len(llm.requests()) == 1


async def test_a_duplicated_request_gets_one_reply_and_one_llm_call(js, agent, llm):
    llm.delay(0.5, count=1)  # the copies arrive while the first is being answered
    conversation = new_conversation()
    await start_conversation(js, conversation)
    request = reply_requested(conversation)
    await request_reply(js, request)
    await request_reply(js, request, msg_id=f"replay:1:{request.event_id}")
    await wait_for_events(js, 1)
    await request_reply(js, request, msg_id=f"replay:2:{request.event_id}")  # after it
    await drained(js)  # handled and acked: a retry or redelivery would have come first

    assert len(await agent_events(js, "ReplyGenerated")) == 1
    assert len(llm.requests()) == 1
    info = await js.consumer_info("CONVERSATION", "agent-replies")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_request_replayed_to_a_new_replica_yields_no_second_reply(
        js, streams, tenants, make_settings, llm):
    conversation = new_conversation()
    await start_conversation(js, conversation)
    request = reply_requested(conversation)
    await request_reply(js, request)
    async with build(make_settings()).running():
        [first] = await wait_for_events(js, 1)
    # A new replica (nothing in memory) gets the request again: the view cannot say the turn
    # was answered, so the LLM is asked again, but the reply has the first one's event id and
    # Nats-Msg-Id, so the AGENT stream keeps one (and the sender sends a reply id once).
    await request_reply(js, request, msg_id="replayed-later")
    async with build(make_settings()).running():
        await wait_until_handled(js, 2)
    assert len(llm.requests()) == 2
    [(stored, headers)] = await agent_events(js, "ReplyGenerated")
    assert stored.event_id == first.event_id
    assert headers["Nats-Msg-Id"] == f"agent:{conversation}:1:ReplyGenerated"


async def test_a_stale_turn_calls_no_llm(js, streams, tenants, make_settings, llm):
    conversation = new_conversation()
    # Turn 1 was requested, then more messages came and turn 2 was requested, all before the
    # agent got to turn 1: only turn 2 is answered.
    await start_conversation(js, conversation, turn=2)
    await request_reply(js, reply_requested(conversation, turn=1))
    await request_reply(js, reply_requested(conversation, turn=2))
    async with build(make_settings()).running():
        await wait_for_events(js, 1)
        await wait_until_handled(js, 2)
    assert [e.data["turn"] for e, _ in await agent_events(js)] == [2]
    assert len(llm.requests()) == 1


@pytest.mark.parametrize("fields", [{"turn_superseded": True}, {"mode": Mode.HUMAN},
                                    {"mode": Mode.WAITING}, {"opted_out": True},
                                    # a request redelivered after its reply was accepted
                                    {"answered_turn": 1}])
async def test_a_superseded_answered_waiting_human_or_opted_out_turn_calls_no_llm(
        js, streams, tenants, make_settings, llm, fields):
    conversation = new_conversation()
    await start_conversation(js, conversation, **fields)
    await request_reply(js, reply_requested(conversation, turn=1))
    async with build(make_settings()).running():
        await wait_until_handled(js, 1)
    assert await agent_events(js) == []
    assert llm.requests() == []


async def test_a_request_without_a_view_yet_is_answered(js, agent, llm):
    conversation = new_conversation()  # the conversation service has not written its view
    await request_reply(js, reply_requested(conversation))
    [reply] = await wait_for_events(js, 1)
    assert reply.data["fallback"] is False and reply.conversation_id == conversation


async def test_a_voice_note_not_understood_gets_the_audio_fallback_without_the_llm(
        js, agent, llm):
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation, texts=(),
                                            fallback_reason="transcription_failed"))

    [reply] = await wait_for_events(js, 1)
    assert reply.data["fallback"] is True
    assert reply.data["text"] == AUDIO_NOT_UNDERSTOOD["es"]
    assert reply.data["fallback_reason"] == "transcription_failed"
    assert llm.requests() == []
    assert await agent_events(js, "ReplyFailed") == []


async def test_without_key_or_base_url_the_development_responder_answers(
        js, streams, tenants, make_settings, llm):
    settings = make_settings(openai_base_url=None, openai_api_key=None)
    assert settings.dev_responder
    async with build(settings).running():
        conversation = new_conversation()
        await start_conversation(js, conversation)
        await request_reply(js, reply_requested(conversation, texts=("Hello there",)))
        [reply] = await wait_for_events(js, 1)
    assert reply.data["text"].startswith(DEV_MARKER)
    assert "Hello there" in reply.data["text"] and "OPENAI_API_KEY" in reply.data["text"]
    assert reply.data["model"] == DEV_MODEL and reply.data["fallback"] is False
    assert llm.requests() == []


async def test_a_tenants_own_endpoint_is_used_even_without_a_default(
        js, streams, tenants, make_settings, llm, cipher):
    await tenants.publish(tenant_record(cipher, language="fr", llm_base_url=llm.base_url))
    async with build(make_settings(openai_base_url=None, openai_api_key=None)).running():
        conversation = new_conversation()
        await start_conversation(js, conversation)
        await request_reply(js, reply_requested(conversation))
        [reply] = await wait_for_events(js, 1)
    assert reply.data["text"].startswith(MARKER)
    [sent] = llm.requests()
    assert "French" in sent["messages"][0]["content"]


@pytest.mark.parametrize("settings_overrides", [{"llm_context_tokens": 300}])
async def test_the_context_budget_drops_the_oldest_messages(js, agent, llm):
    texts = tuple(f"message {i}: " + "x" * 200 for i in range(10))
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation, texts=texts))
    await wait_for_events(js, 1)

    [sent] = llm.requests()
    kept = user_texts(sent)
    assert kept == list(texts[-len(kept):])  # the newest ones, in order, without a hole
    assert 1 <= len(kept) < len(texts)
    assert sent["messages"][1]["role"] == "user"  # never starts with the assistant


async def test_a_long_reply_is_passed_on_whole(js, agent, llm):
    llm.reply(length=4000)
    conversation = new_conversation()
    await start_conversation(js, conversation)
    await request_reply(js, reply_requested(conversation))
    [reply] = await wait_for_events(js, 1)
    assert len(reply.data["text"]) == 4000


async def test_a_slow_llm_is_not_redelivered_while_it_works(
        js, streams, tenants, make_settings, llm, monkeypatch):
    monkeypatch.setenv("SB_CONSUMER_AGENT_REPLIES_ACK_WAIT_S", "1")
    llm.delay(3.0, count=1)
    async with build(make_settings()).running():
        conversation = new_conversation()
        await start_conversation(js, conversation)
        await request_reply(js, reply_requested(conversation))
        await wait_for_events(js, 1)
        info = await js.consumer_info("CONVERSATION", "agent-replies")
    assert info.num_redelivered == 0
    assert len(llm.requests()) == 1


async def test_many_conversations_are_answered_concurrently(js, agent, llm):
    llm.delay(0.5)
    conversations = [new_conversation() for _ in range(8)]
    for conversation in conversations:
        await start_conversation(js, conversation)
    started = asyncio.get_running_loop().time()
    for conversation in conversations:
        await request_reply(js, reply_requested(conversation))
    replies = await wait_for_events(js, 8)
    assert asyncio.get_running_loop().time() - started < 3.0  # not 8 x 0.5 s in a row
    assert {r.conversation_id for r in replies} == set(conversations)
