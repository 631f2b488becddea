"""The LLM behind a small interface: the OpenAI SDK adapter and the local development responder.

Adapters turn every failure into ``TransientLLMError`` (worth another attempt: timeouts,
connection errors, 408/409/429, 5xx, an empty answer) or ``PermanentLLMError`` (401, 403,
400, 404, 422...: the same request will fail again). The retry policy lives in ``retry.py``;
the SDK's own retries are off (``max_retries=0``) so that policy is the one in force.

Each request names its ``Endpoint`` (base URL and key, chosen per tenant by
``credentials.py``); the adapter keeps one SDK client per endpoint. A completion is text, or
tool calls (``tools.py``) with or without text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio.lowlevel
import openai
from openai import AsyncOpenAI
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionToolParam,
)
from switchboard_runtime.http import retry_after

DEV_MARKER = "[local development responder]"
DEV_MODEL = "local-dev-responder"

# An answer of every shape the adapter reads (text, a tool call, usage), parsed at start-up so
# the SDK's response models are built then rather than during the first turn.
_SAMPLE_ANSWER: dict[str, Any] = {
    "id": "warm-up", "object": "chat.completion", "created": 0, "model": "warm-up",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "",
        "tool_calls": [{"id": "call", "type": "function",
                        "function": {"name": "tool", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class LLMError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientLLMError(LLMError):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PermanentLLMError(LLMError):
    pass


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a completion is asked for, and with which key (kept out of reprs and logs)."""

    base_url: str | None  # None: OpenAI's own
    api_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    timeout_s: float
    endpoint: Endpoint | None = None  # None: no LLM configured, the development responder
    max_tokens: int | None = None
    tools: tuple[ChatCompletionToolParam, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON, as the model wrote it


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: tuple[ToolCall, ...] = ()


class ChatModel(Protocol):
    async def complete(self, request: ChatRequest) -> Completion: ...

    async def aclose(self) -> None: ...


class OpenAIChat:
    """Chat completions through the ``openai`` SDK; one client per (base URL, key)."""

    def __init__(self) -> None:
        # A rotated key gets a new client; the old one stays until shutdown (rotations are
        # rare, and closing it could cut a call in flight).
        self._clients: dict[Endpoint, AsyncOpenAI] = {}

    def _client(self, endpoint: Endpoint) -> AsyncOpenAI:
        client = self._clients.get(endpoint)
        if client is None:
            client = AsyncOpenAI(api_key=endpoint.api_key, base_url=endpoint.base_url,
                                 max_retries=0)
            self._clients[endpoint] = client
        return client

    async def warm_up(self, endpoint: Endpoint) -> None:
        """At start-up, what the SDK otherwise does during the first call, on the event loop
        (about 0.3 s of CPU, while every turn behind it waits): build the endpoint's client,
        load anyio's asyncio backend, build the response models.
        Nothing is sent to the endpoint."""
        self._client(endpoint)
        await anyio.lowlevel.checkpoint()  # loads anyio's backend (the HTTP transport's I/O)
        ChatCompletion.model_validate(_SAMPLE_ANSWER)

    async def complete(self, request: ChatRequest) -> Completion:
        if request.endpoint is None:
            raise PermanentLLMError("no LLM endpoint")
        client = self._client(request.endpoint)
        body: dict[str, Any] = {"model": request.model, "messages": request.messages}
        if request.max_tokens:
            body["max_tokens"] = request.max_tokens
        if request.tools:
            body["tools"] = list(request.tools)
        try:
            # The SDK's generic POST (its client, auth, timeout, errors and response model),
            # not chat.completions.create: create walks the messages and the tools' JSON
            # schemas through its TypedDict transform on every call (about 0.8 ms of CPU with
            # the handoff tool, 2.7 -> 1.9 ms a call), which changes nothing in these
            # wire-format dicts.
            response = await client.post("/chat/completions", body=body,
                                         cast_to=ChatCompletion,
                                         options={"timeout": request.timeout_s})
        except openai.APITimeoutError:
            raise TransientLLMError("timeout") from None
        except openai.APIConnectionError:
            raise TransientLLMError("connection error") from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            reason = f"http {status}" + (f" {exc.code}" if exc.code else "")
            if status in (408, 409, 429) or status >= 500:
                raise TransientLLMError(reason, retry_after(exc.response.headers)) from None
            raise PermanentLLMError(reason) from None
        except openai.APIResponseValidationError:
            raise TransientLLMError("malformed response") from None
        message = response.choices[0].message if response.choices else None
        text = (message.content or "").strip() if message else ""
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments)
                      for c in ((message.tool_calls if message else None) or [])
                      if isinstance(c, ChatCompletionMessageFunctionToolCall))
        if not text and not calls:
            finish = response.choices[0].finish_reason if response.choices else None
            raise TransientLLMError(f"empty answer (finish_reason={finish})")
        usage = response.usage
        return Completion(
            text=text,
            model=response.model or request.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            tool_calls=calls,
        )

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


class DevResponder:
    """Answers in-process when no LLM is configured, and says so in its text."""

    async def complete(self, request: ChatRequest) -> Completion:
        last = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
        # It never calls a tool: offered tools are ignored.
        summary = " ".join(last.split())
        if len(summary) > 120:
            summary = summary[:119] + "…"
        text = (f"{DEV_MARKER} No LLM is configured (set OPENAI_API_KEY or OPENAI_BASE_URL). "
                f"You said: {summary}")
        prompt = sum(len(m.get("content") or "") for m in request.messages) // 4
        return Completion(text=text, model=DEV_MODEL, prompt_tokens=prompt,
                          completion_tokens=len(text) // 4)

    async def aclose(self) -> None:
        return None


class Routed:
    """The request's endpoint, or the development responder for a request without one."""

    def __init__(self, without_endpoint: ChatModel, endpoints: OpenAIChat) -> None:
        self._without_endpoint = without_endpoint
        self._endpoints = endpoints

    async def warm_up(self, endpoint: Endpoint | None) -> None:
        """Prepare the SDK for ``endpoint`` (the global one) before the first turn."""
        if endpoint is not None:
            await self._endpoints.warm_up(endpoint)

    async def complete(self, request: ChatRequest) -> Completion:
        chosen = self._endpoints if request.endpoint else self._without_endpoint
        return await chosen.complete(request)

    async def aclose(self) -> None:
        await self._without_endpoint.aclose()
        await self._endpoints.aclose()


def chat_model() -> Routed:
    """Each request's endpoint through the SDK; the development responder when it has none."""
    return Routed(DevResponder(), OpenAIChat())
