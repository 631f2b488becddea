"""One turn with the LLM, tools included: ask, run the tools it calls, ask again, bounded.

A *tool round* is one completion that calls tools whose results go back to the model (an
``assistant`` message with the calls, a ``tool`` message per call) before it is asked again.
At most ``max_rounds`` rounds per turn, so at most ``max_rounds + 1`` completions:

- a completion without tool calls is the answer;
- a tool whose outcome ends the turn (``handoff``) ends it at once, whatever the round, with
  the completion's text (if any) beside it;
- a completion that still calls tools once ``max_rounds`` rounds were used ends the turn with
  ``ToolRoundsExceeded`` (the caller sends the fallback text): its tools run (a handoff among
  them is honoured) but their results are not sent back.

Each completion is retried on its own by ``retry.py``; ``LLMGaveUp`` passes through.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .llm import ChatModel, ChatRequest, Completion
from .metrics import LLM_TOKENS
from .retry import RetryPolicy, complete_with_retries
from .tools import Toolbox

TOOL_ROUNDS_EXCEEDED = "tool_rounds_exceeded"


class ToolRoundsExceeded(Exception):
    def __init__(self, attempts: int) -> None:
        super().__init__(TOOL_ROUNDS_EXCEEDED)
        self.reason = TOOL_ROUNDS_EXCEEDED
        self.attempts = attempts  # LLM calls made in the turn


@dataclass(frozen=True, slots=True)
class TurnAnswer:
    text: str
    model: str
    attempts: int  # LLM calls made in the turn, retries included
    prompt_tokens: int
    completion_tokens: int
    handoff_reason: str | None = None


def assistant_message(completion: Completion) -> dict[str, Any]:
    """The model's tool-calling answer, as it goes back in ``messages``."""
    return {"role": "assistant", "content": completion.text or None, "tool_calls": [
        {"id": call.id, "type": "function",
         "function": {"name": call.name, "arguments": call.arguments}}
        for call in completion.tool_calls]}


async def answer_with_tools(chat: ChatModel, request: ChatRequest, toolbox: Toolbox, *,
                            policy: RetryPolicy, max_rounds: int, tenant: str) -> TurnAnswer:
    """The turn's answer (text, or a handoff); raises ``ToolRoundsExceeded``, ``LLMGaveUp``."""
    request = replace(request, tools=toolbox.schemas())
    messages = list(request.messages)
    attempts = prompt_tokens = completion_tokens = rounds = 0
    while True:
        completion, tries = await complete_with_retries(
            chat, replace(request, messages=messages), policy, tenant=tenant)
        attempts += tries
        prompt_tokens += completion.prompt_tokens
        completion_tokens += completion.completion_tokens
        LLM_TOKENS.labels(tenant, request.model, "prompt").inc(completion.prompt_tokens)
        LLM_TOKENS.labels(tenant, request.model, "completion").inc(completion.completion_tokens)
        results: list[dict[str, Any]] = []
        handoff_reason = None
        for call in completion.tool_calls:
            outcome = await toolbox.run(call)
            if outcome.ends_turn:
                handoff_reason = outcome.handoff_reason
                break
            results.append({"role": "tool", "tool_call_id": call.id, "content": outcome.result})
        if handoff_reason is not None or not completion.tool_calls:
            return TurnAnswer(completion.text, completion.model, attempts, prompt_tokens,
                              completion_tokens, handoff_reason)
        if rounds == max_rounds:
            raise ToolRoundsExceeded(attempts)
        rounds += 1
        # A new list: each request keeps the messages it was sent with.
        messages = [*messages, assistant_message(completion), *results]
