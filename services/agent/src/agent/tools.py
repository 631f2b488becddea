"""Tools the LLM may call: a name, a description, typed arguments and a handler.

A tool's arguments are a pydantic model: its JSON schema is what the model is offered
(OpenAI's ``tools=[{"type": "function", "function": {...}}]``), and what the arguments the
model writes are validated against. The handler returns a ``ToolOutcome``: a result for the
model (sent back as a ``tool`` message, and the model is asked again, within the round limit
of ``tool_rounds.py``), or the end of the turn (``handoff_reason``: a person takes over).

Arguments that do not validate, and tools that do not exist, are answered to the model as a
result (so it can correct itself), never raised: a model's mistake is not a failed turn.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from openai.types.chat import ChatCompletionToolParam
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import GenerateJsonSchema

from .llm import ToolCall
from .metrics import TOOL_CALLS

Arguments = TypeVar("Arguments", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    result: str = ""  # what the model is told the call did
    handoff_reason: str | None = None  # set: the turn ends, a person takes over

    @property
    def ends_turn(self) -> bool:
        return self.handoff_reason is not None


class _SchemaWithoutTitles(GenerateJsonSchema):
    """Pydantic's titles ("Reason", the class name) tell the model nothing."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: Any) -> dict[str, Any]:
        generated: dict[str, Any] = super().model_schema(schema)
        generated.pop("title", None)
        return generated


def parameters_schema(arguments: type[BaseModel]) -> dict[str, Any]:
    return arguments.model_json_schema(schema_generator=_SchemaWithoutTitles)


@dataclass(frozen=True, slots=True)
class Tool(Generic[Arguments]):
    name: str
    description: str
    arguments: type[Arguments]
    handler: Callable[[Arguments], Awaitable[ToolOutcome]]

    def schema(self) -> ChatCompletionToolParam:
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": parameters_schema(self.arguments)}}

    async def call(self, raw_arguments: str) -> ToolOutcome:
        try:
            arguments = self.arguments.model_validate_json(raw_arguments or "{}")
        except ValidationError as exc:
            TOOL_CALLS.labels(self.name, "invalid_arguments").inc()
            problems = exc.errors(include_url=False, include_input=False, include_context=False)
            return ToolOutcome(result="Invalid arguments, nothing was done: "
                                      + json.dumps(problems))
        outcome = await self.handler(arguments)
        TOOL_CALLS.labels(self.name, "ended_turn" if outcome.ends_turn else "ok").inc()
        return outcome


class Toolbox:
    """The tools offered in a turn."""

    def __init__(self, tools: Sequence[Tool[Any]]) -> None:
        self._tools = {tool.name: tool for tool in tools}
        # Generated once: pydantic's JSON schema generation costs about 0.25 ms of CPU per
        # tool, and every LLM call of every turn offers the same schemas (read-only).
        self._schemas = tuple(tool.schema() for tool in self._tools.values())

    def schemas(self) -> tuple[ChatCompletionToolParam, ...]:
        return self._schemas

    async def run(self, call: ToolCall) -> ToolOutcome:
        tool = self._tools.get(call.name)
        if tool is None:  # the model made a name up (label "unknown": names are unbounded)
            TOOL_CALLS.labels("unknown", "unknown_tool").inc()
            return ToolOutcome(result=f"There is no tool {call.name!r}; the tools are: "
                                      f"{', '.join(self._tools)}.")
        return await tool.call(call.arguments)


# -- handoff: the first tool --------------------------------------------------------------
HANDOFF_REASON_MAX_CHARS = 500


class HandoffArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="Why a person should take over, in a few words, for the "
                                    "operator who will read it.")


async def _hand_off(arguments: HandoffArguments) -> ToolOutcome:
    # Lenient on purpose: a handoff with a poor reason beats none.
    reason = " ".join(arguments.reason.split())[:HANDOFF_REASON_MAX_CHARS]
    return ToolOutcome(handoff_reason=reason or "no reason given")


HANDOFF = Tool(
    name="handoff",
    description="Hand the conversation over to a person (a human operator of this business). "
                "Call it when the user asks to talk to a person, or when they need something "
                "you cannot do or answer. A person will answer them; do not answer yourself.",
    arguments=HandoffArguments,
    handler=_hand_off,
)
