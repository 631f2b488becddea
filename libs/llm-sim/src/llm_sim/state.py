"""What the simulator was told to do next, and what it has received.

Scripts are queues consumed by the next chat-completion requests, in order:

- failures (``POST /sim/failures``): ``500``, ``503``, ``429`` (with ``Retry-After`` and
  ``retry-after-ms``), ``401``, ``403``, ``400`` and ``404`` (unknown model), each ``count``
  times;
- delays (``POST /sim/delay``): the next ``count`` requests (all, when no count) wait
  ``seconds`` before answering, to play a slow LLM or, past the client's timeout, a hung one;
- replies (``POST /sim/reply``): a fixed ``text``, or a text of ``length`` characters, or
  ``tool_calls`` (each a function ``name`` and its JSON ``arguments``, answered with
  ``finish_reason: "tool_calls"``, optionally beside a ``text``), for the next ``count``
  answers (all, when no count). A reply with ``match`` is only taken by a request whose
  messages contain that substring; the first queued reply a request may take is the one it
  takes.

A failure is taken before the delay and reply scripts are looked at, so a queued failure
answers at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

FailureKind = Literal["500", "503", "429", "401", "403", "400", "404"]


class FailureSpec(BaseModel):
    kind: FailureKind
    count: int = Field(default=1, ge=1)
    # 429 only: what the rate-limit headers say (seconds, and milliseconds as OpenAI sends).
    retry_after_s: float | None = 1.0
    retry_after_ms: int | None = None


class DelaySpec(BaseModel):
    seconds: float = Field(ge=0)
    count: int | None = Field(default=None, ge=1)


class ToolCallSpec(BaseModel):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class ReplySpec(BaseModel):
    text: str | None = None
    length: int | None = Field(default=None, ge=1, le=1_000_000)
    tool_calls: list[ToolCallSpec] = Field(default_factory=list)
    # Only a request whose messages contain this substring takes the reply.
    match: str | None = Field(default=None, min_length=1)
    count: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_of(self) -> ReplySpec:
        if self.text is not None and self.length is not None:
            raise ValueError("give at most one of text and length")
        if self.text is None and self.length is None and not self.tool_calls:
            raise ValueError("give text, length or tool_calls")
        return self

    def matches(self, prompt: str) -> bool:
        return self.match is None or self.match in prompt


@dataclass
class Queued:
    spec: Any
    remaining: int | None  # None: until reset


@dataclass
class ReceivedRequest:
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    authorization: str | None  # the Authorization header as received (which key came)
    base_path: str  # the path the client was given as base URL, e.g. "/v1" or "/tenant-a/v1"
    received_at: float
    outcome: str = "pending"
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "messages": self.messages, "stream": self.stream,
            "authorization": self.authorization, "base_path": self.base_path,
            "received_at": self.received_at, "outcome": self.outcome, "params": self.params,
        }


class SimState:
    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.failures: list[Queued] = []
        self.delays: list[Queued] = []
        self.replies: list[Queued] = []
        self.requests: list[ReceivedRequest] = []
        self._counter = 0

    def reset(self) -> None:
        self.failures.clear()
        self.delays.clear()
        self.replies.clear()
        self.requests.clear()

    def next_id(self) -> str:
        self._counter += 1
        return f"chatcmpl-sim{self._counter:06d}{int(time.time() * 1000) % 1_000_000:06d}"

    def record(self, request: ReceivedRequest) -> None:
        self.requests.append(request)

    @staticmethod
    def _take(queue: list[Queued], index: int = 0) -> Any | None:
        if index >= len(queue):
            return None
        taken = queue[index]
        if taken.remaining is not None:
            taken.remaining -= 1
            if taken.remaining <= 0:
                queue.pop(index)
        return taken.spec

    def take_failure(self) -> FailureSpec | None:
        spec: FailureSpec | None = self._take(self.failures)
        return spec

    def take_delay(self) -> float:
        spec: DelaySpec | None = self._take(self.delays)
        return spec.seconds if spec else 0.0

    def take_reply(self, prompt: str) -> ReplySpec | None:
        """The first queued reply whose ``match`` (if any) is in ``prompt``."""
        index = next((i for i, q in enumerate(self.replies) if q.spec.matches(prompt)),
                     len(self.replies))
        spec: ReplySpec | None = self._take(self.replies, index)
        return spec

    def script(self) -> dict[str, Any]:
        def dump(queue: list[Queued]) -> list[dict[str, Any]]:
            return [{**q.spec.model_dump(), "remaining": q.remaining} for q in queue]

        return {"failures": dump(self.failures), "delays": dump(self.delays),
                "replies": dump(self.replies)}
