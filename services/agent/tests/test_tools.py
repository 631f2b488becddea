"""Tools without a network: schemas, the toolbox, the round limit, the key rule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agent.credentials import NO_KEY, endpoint_for
from agent.llm import ChatRequest, Completion, Endpoint, ToolCall
from agent.retry import RetryPolicy
from agent.settings import AgentSettings
from agent.tool_rounds import ToolRoundsExceeded, answer_with_tools
from agent.tools import HANDOFF, HANDOFF_REASON_MAX_CHARS, Tool, Toolbox, ToolOutcome
from pydantic import BaseModel, ConfigDict, Field


class LookupArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order: str = Field(description="The order number.")
    include_items: bool = False


class Lookups:
    """A tool that never ends the turn, counting its calls."""

    def __init__(self) -> None:
        self.calls: list[LookupArguments] = []

    async def __call__(self, arguments: LookupArguments) -> ToolOutcome:
        self.calls.append(arguments)
        return ToolOutcome(result=f"order {arguments.order}: shipped")


def lookup_tool(handler: Lookups) -> Tool[LookupArguments]:
    return Tool(name="lookup_order", description="Find an order.",
                arguments=LookupArguments, handler=handler)


def test_the_handoff_schema_is_openais_function_tool_without_pydantic_titles():
    assert HANDOFF.schema() == {"type": "function", "function": {
        "name": "handoff",
        "description": HANDOFF.description,
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string",
                                      "description": HANDOFF.arguments.model_fields[
                                          "reason"].description}},
            "required": ["reason"],
            "additionalProperties": False,
        },
    }}


def test_a_tools_schema_comes_from_its_arguments_model():
    parameters = lookup_tool(Lookups()).schema()["function"]["parameters"]
    assert parameters == {
        "type": "object",
        "properties": {"order": {"type": "string", "description": "The order number."},
                       "include_items": {"type": "boolean", "default": False}},
        "required": ["order"],
        "additionalProperties": False,
    }
    assert Toolbox([HANDOFF, lookup_tool(Lookups())]).schemas() == (
        HANDOFF.schema(), lookup_tool(Lookups()).schema())


async def test_handoff_ends_the_turn_with_its_reason_tidied():
    outcome = await Toolbox([HANDOFF]).run(ToolCall("c1", "handoff", '{"reason": " a  b\\n"}'))
    assert outcome.ends_turn and outcome.handoff_reason == "a b"
    long = await HANDOFF.call('{"reason": "%s"}' % ("x" * 2000))
    assert long.handoff_reason == "x" * HANDOFF_REASON_MAX_CHARS
    assert (await HANDOFF.call('{"reason": ""}')).handoff_reason == "no reason given"


@pytest.mark.parametrize("arguments", ["", "not json", '{"order": 1}', '{"order": "1", "x": 2}'])
async def test_bad_arguments_are_told_to_the_model_not_raised(arguments):
    handler = Lookups()
    outcome = await lookup_tool(handler).call(arguments)
    assert not outcome.ends_turn and outcome.result.startswith("Invalid arguments")
    assert handler.calls == []


async def test_an_unknown_tool_is_told_to_the_model_with_the_tools_there_are():
    outcome = await Toolbox([HANDOFF]).run(ToolCall("c1", "refund", "{}"))
    assert not outcome.ends_turn
    assert outcome.result == "There is no tool 'refund'; the tools are: handoff."


class ScriptedChat:
    """A ChatModel answering from a list, keeping what it was asked."""

    def __init__(self, answers: Iterator[Completion]) -> None:
        self._answers = answers
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        return next(self._answers)

    async def aclose(self) -> None:
        return None


def calling(*names: str, text: str = "") -> Completion:
    arguments = {"handoff": '{"reason": "stuck"}', "lookup_order": '{"order": "7"}'}
    return Completion(text=text, model="m", prompt_tokens=10, completion_tokens=2,
                      tool_calls=tuple(ToolCall(f"call{i}", name, arguments[name])
                                       for i, name in enumerate(names)))


def forever(completion: Completion) -> Iterator[Completion]:
    while True:
        yield completion


REQUEST = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], timeout_s=1)


async def answer(chat: ScriptedChat, toolbox: Toolbox, max_rounds: int):
    return await answer_with_tools(chat, REQUEST, toolbox, policy=RetryPolicy(),
                                   max_rounds=max_rounds, tenant="t")


@pytest.mark.parametrize("max_rounds", [0, 1, 3])
async def test_tool_rounds_are_bounded(max_rounds):
    handler = Lookups()
    chat = ScriptedChat(forever(calling("lookup_order")))
    with pytest.raises(ToolRoundsExceeded) as exceeded:
        await answer(chat, Toolbox([HANDOFF, lookup_tool(handler)]), max_rounds)
    assert len(chat.requests) == max_rounds + 1 == exceeded.value.attempts
    assert len(handler.calls) == max_rounds + 1
    # Each round's call and result went back to the model: assistant + tool messages.
    assert [len(r.messages) for r in chat.requests] == [1 + 2 * i for i in range(max_rounds + 1)]
    assert all(r.tools == (HANDOFF.schema(), lookup_tool(handler).schema())
               for r in chat.requests)


async def test_a_tool_round_then_the_answer_with_the_tokens_of_both():
    chat = ScriptedChat(iter([calling("lookup_order"), Completion("It shipped.", "m", 30, 5)]))
    result = await answer(chat, Toolbox([lookup_tool(Lookups())]), 3)
    assert (result.text, result.handoff_reason, result.attempts) == ("It shipped.", None, 2)
    assert (result.prompt_tokens, result.completion_tokens) == (40, 7)
    assistant, tool = chat.requests[1].messages[1:]
    assert assistant == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call0", "type": "function",
         "function": {"name": "lookup_order", "arguments": '{"order": "7"}'}}]}
    assert tool == {"role": "tool", "tool_call_id": "call0", "content": "order 7: shipped"}


async def test_a_handoff_ends_the_turn_even_in_the_last_round_and_beside_other_calls():
    handler = Lookups()
    chat = ScriptedChat(iter([calling("lookup_order"),
                              calling("handoff", "lookup_order", text="One moment.")]))
    result = await answer(chat, Toolbox([HANDOFF, lookup_tool(handler)]), 1)
    assert (result.text, result.handoff_reason) == ("One moment.", "stuck")
    assert len(chat.requests) == 2 and len(handler.calls) == 1  # calls after it do not run


# -- which endpoint and key a tenant's completions go to --------------------------------------
def settings(**values: object) -> AgentSettings:
    return AgentSettings(nats_url="nats://n", **values)  # type: ignore[arg-type]


GLOBAL = {"openai_api_key": "sk-global", "openai_base_url": "https://llm.example/v1"}


@pytest.mark.parametrize(("values", "base_url", "key", "expected"), [
    (GLOBAL, "https://own.example/v1", None, Endpoint("https://own.example/v1", NO_KEY)),
    (GLOBAL, "https://own.example/v1", "sk-own", Endpoint("https://own.example/v1", "sk-own")),
    # The tenant's own base URL is the global one: still not the global key.
    (GLOBAL, "https://llm.example/v1", None, Endpoint("https://llm.example/v1", NO_KEY)),
    (GLOBAL, None, "sk-own", Endpoint("https://llm.example/v1", "sk-own")),
    (GLOBAL, None, None, Endpoint("https://llm.example/v1", "sk-global")),
    ({"openai_api_key": "sk-global"}, None, "sk-own", Endpoint(None, "sk-own")),  # OpenAI's
    ({"openai_base_url": "http://vllm:8000/v1"}, None, None,
     Endpoint("http://vllm:8000/v1", NO_KEY)),
    ({}, None, None, None),  # the development responder
    ({}, None, "sk-own", Endpoint(None, "sk-own")),
    ({}, "https://own.example/v1", None, Endpoint("https://own.example/v1", NO_KEY)),
])
def test_the_endpoint_and_key_of_a_tenant(monkeypatch, values, base_url, key, expected):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert endpoint_for(base_url, key, settings(**values)) == expected


def test_an_endpoints_key_stays_out_of_its_repr():
    assert "sk-secret" not in repr(Endpoint("https://x/v1", "sk-secret"))
