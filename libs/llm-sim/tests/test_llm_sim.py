"""The simulator through the real ``openai`` SDK: shapes, errors, scripts, inspection."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from llm_sim import MARKER, RunningLLMSim, run_llm_sim
from openai import AsyncOpenAI

# Starts its own servers or processes (no devstack fixture says so).
pytestmark = pytest.mark.integration


def client(sim: RunningLLMSim, **options: object) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0,
                       **options)  # type: ignore[arg-type]


async def ask(sim: RunningLLMSim, text: str = "Is the clinic open tomorrow?",
              **options: object):
    async with client(sim, **options) as llm:
        return await llm.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": text}],
        )


async def test_default_reply_has_openais_shape_and_says_where_it_comes_from(sim):
    completion = await ask(sim, "Is the   clinic open\ntomorrow?")
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == f"{MARKER} You said: Is the clinic open tomorrow?"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_requests_are_recorded_with_model_and_messages(sim):
    await ask(sim, "first")
    await ask(sim, "second")
    received = sim.requests()
    assert [r["model"] for r in received] == ["gpt-4o-mini", "gpt-4o-mini"]
    assert received[1]["messages"] == [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "second"}]
    assert all(r["outcome"] == "ok" for r in received)
    assert all(r["authorization"] == "Bearer sk-test" for r in received)
    assert all(r["base_path"] == "/v1" for r in received)
    sim.reset()
    assert sim.requests() == []


async def test_rate_limit_is_a_429_with_retry_after_headers(sim):
    sim.fail("429", retry_after_s=2, retry_after_ms=1500)
    with pytest.raises(openai.RateLimitError) as caught:
        await ask(sim)
    error = caught.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert error.response.headers["retry-after"] == "2"
    assert error.response.headers["retry-after-ms"] == "1500"
    assert (await ask(sim)).choices[0].message.content  # only one was queued


@pytest.mark.parametrize(("kind", "error_type"), [
    ("500", openai.InternalServerError),
    ("503", openai.InternalServerError),
    ("401", openai.AuthenticationError),
    ("403", openai.PermissionDeniedError),
    ("400", openai.BadRequestError),
    ("404", openai.NotFoundError),
])
async def test_scripted_failures_raise_the_sdks_errors(sim, kind, error_type):
    sim.fail(kind, count=2)
    for _ in range(2):
        with pytest.raises(error_type) as caught:
            await ask(sim)
        assert caught.value.status_code == int(kind)
        body = caught.value.body
        assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    await ask(sim)
    assert [r["outcome"] for r in sim.requests()] == [f"error:{kind}"] * 2 + ["ok"]


async def test_error_bodies_are_openai_shaped_on_the_wire(sim):
    sim.fail("500")
    response = httpx.post(f"{sim.base_url}/chat/completions",
                          json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 500
    assert response.json() == {"error": {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error", "param": None, "code": None}}


async def test_invalid_requests_get_400_not_422(sim):
    async with client(sim) as llm:
        with pytest.raises(openai.BadRequestError) as caught:
            await llm.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert caught.value.param == "messages"


DELAY_S = 6.0


async def test_a_delay_past_the_clients_timeout_is_a_timeout(sim):
    # Margins wide enough for a loaded CI machine: the bounds only tell "gave up at its
    # timeout" and "was not delayed" from "waited out the delay".
    sim.delay(DELAY_S, count=1)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await ask(sim, timeout=0.3)
    assert time.monotonic() - started < DELAY_S / 2
    started = time.monotonic()
    await ask(sim, timeout=DELAY_S * 2)  # the delay was for one request only
    assert time.monotonic() - started < DELAY_S / 2


async def test_a_slow_answer_within_the_timeout_arrives(sim):
    sim.delay(0.3)
    started = time.monotonic()
    completion = await ask(sim, timeout=5)
    assert time.monotonic() - started >= 0.3
    assert completion.choices[0].message.content


async def test_fixed_reply_and_reply_length(sim):
    sim.reply("Yes, from 9 to 5.", count=1)
    sim.reply(length=4000, count=1)
    assert (await ask(sim)).choices[0].message.content == "Yes, from 9 to 5."
    long = (await ask(sim)).choices[0].message.content
    assert long is not None and len(long) == 4000
    assert (await ask(sim)).choices[0].message.content.startswith(MARKER)  # type: ignore[union-attr]


async def test_max_tokens_cuts_the_reply_with_finish_reason_length(sim):
    sim.reply(length=400, count=1)
    async with client(sim) as llm:
        completion = await llm.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=10)
    assert completion.choices[0].finish_reason == "length"
    assert len(completion.choices[0].message.content or "") == 40


async def test_streaming_answers_in_chunks_with_usage(sim):
    sim.reply("A streamed answer that is longer than one chunk of text.", count=1)
    async with client(sim) as llm:
        stream = await llm.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True})
        parts, usage = [], None
        async for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
            if chunk.usage:
                usage = chunk.usage
    assert "".join(parts) == "A streamed answer that is longer than one chunk of text."
    assert usage is not None and usage.completion_tokens > 0


async def test_an_api_key_can_be_required():
    with run_llm_sim(api_key="sk-right") as sim:
        async with AsyncOpenAI(base_url=sim.base_url, api_key="sk-wrong", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError) as caught:
                await bad.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.code == "invalid_api_key"
        async with AsyncOpenAI(base_url=sim.base_url, api_key="sk-right", max_retries=0) as ok:
            completion = await ok.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content


async def test_models_are_listed(sim):
    async with client(sim) as llm:
        models = await llm.models.list()
    assert "gpt-4o-mini" in [m.id for m in models.data]


HANDOFF_TOOL = {"type": "function", "function": {
    "name": "handoff", "description": "Hand the conversation to a person.",
    "parameters": {"type": "object", "properties": {"reason": {"type": "string"}},
                   "required": ["reason"]}}}


async def test_a_scripted_tool_call_comes_in_openais_wire_format(sim):
    sim.call_tool("handoff", {"reason": "wants a person"}, text="One moment.")
    async with client(sim) as llm:
        completion = await llm.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "a human please"}],
            tools=[HANDOFF_TOOL])  # type: ignore[list-item]
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content == "One moment."
        [call] = choice.message.tool_calls or []
        assert call.type == "function" and call.id.startswith("call_")
        assert call.function.name == "handoff"  # type: ignore[union-attr]
        assert json.loads(call.function.arguments) == {"reason": "wants a person"}  # type: ignore[union-attr]
        # The tool's result goes back as a tool message; the next answer is plain text.
        again = await llm.chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "user", "content": "a human please"},
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "done"},
        ])
    assert again.choices[0].finish_reason == "stop" and not again.choices[0].message.tool_calls
    assert sim.requests()[0]["params"]["tools"] == [HANDOFF_TOOL]


async def test_a_tool_call_without_text_has_no_content(sim):
    sim.call_tool("handoff", {"reason": "r"})
    completion = await ask(sim)
    assert completion.choices[0].message.content is None
    assert completion.choices[0].message.tool_calls


async def test_a_scripted_reply_with_match_answers_only_prompts_containing_it(sim):
    sim.call_tool("handoff", {"reason": "refund"}, match="refund", count=None)
    plain = await ask(sim, "Is the clinic open?")
    assert plain.choices[0].finish_reason == "stop"
    for _ in range(2):  # count None: every matching prompt, until reset
        matched = await ask(sim, "I want a refund")
        assert matched.choices[0].finish_reason == "tool_calls"
    sim.reply("first queued wins", count=1)
    assert (await ask(sim, "refund")).choices[0].finish_reason == "tool_calls"
    assert (await ask(sim, "other")).choices[0].message.content == "first queued wins"


async def test_a_tool_call_streams_as_a_delta(sim):
    sim.call_tool("handoff", {"reason": "r"})
    async with client(sim) as llm:
        stream = await llm.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
        calls, finish = [], None
        async for chunk in stream:
            if chunk.choices:
                calls.extend(chunk.choices[0].delta.tool_calls or [])
                finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    [call] = calls
    assert call.function is not None and call.function.name == "handoff"


async def test_each_endpoint_prefix_records_its_base_path_and_key(sim):
    async with AsyncOpenAI(base_url=sim.base_url_for("tenant-a"), api_key="sk-a",
                           max_retries=0) as tenant_a:
        await tenant_a.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert (await tenant_a.models.list()).data
    await ask(sim)
    assert [(r["base_path"], r["authorization"]) for r in sim.requests()] == [
        ("/tenant-a/v1", "Bearer sk-a"), ("/v1", "Bearer sk-test")]


def test_a_reply_script_needs_something_to_answer(sim):
    response = httpx.post(f"{sim.url}/sim/reply", json={"count": 1})
    assert response.status_code == 422
    response = httpx.post(f"{sim.url}/sim/reply", json={"text": "a", "length": 3})
    assert response.status_code == 422
