"""The LLM behind a small interface: the OpenAI SDK adapter and the local development responder.

Adapters turn every failure into ``TransientLLMError`` (worth another attempt: timeouts,
connection errors, 408/409/429, 5xx, an empty answer) or ``PermanentLLMError`` (401, 403,
400, 404, 422...: the same request will fail again). The retry policy lives in ``retry.py``;
the SDK's own retries are off (``max_retries=0``) so that policy is the one in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, cast

import openai
from openai import AsyncOpenAI, omit
from openai.types.chat import ChatCompletionMessageParam
from switchboard_runtime.http import retry_after

DEV_MARKER = "[local development responder]"
DEV_MODEL = "local-dev-responder"


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
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    timeout_s: float
    base_url: str | None = None  # the tenant's own endpoint, if it has one
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatModel(Protocol):
    async def complete(self, request: ChatRequest) -> Completion: ...

    async def aclose(self) -> None: ...


class OpenAIChat:
    """Chat completions through the ``openai`` SDK; one client per base URL."""

    def __init__(self, api_key: str | None, base_url: str | None = None) -> None:
        # An OpenAI-compatible server without auth still needs some key for the SDK.
        self._api_key = api_key or "unused"
        self._base_url = base_url
        self._clients: dict[str | None, AsyncOpenAI] = {}

    def _client(self, base_url: str | None) -> AsyncOpenAI:
        url = base_url or self._base_url
        client = self._clients.get(url)
        if client is None:
            client = AsyncOpenAI(api_key=self._api_key, base_url=url, max_retries=0)
            self._clients[url] = client
        return client

    async def complete(self, request: ChatRequest) -> Completion:
        client = self._client(request.base_url)
        try:
            response = await client.chat.completions.create(
                model=request.model,
                messages=cast("list[ChatCompletionMessageParam]", request.messages),
                timeout=request.timeout_s,
                max_tokens=request.max_tokens or omit,
            )
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
        text = response.choices[0].message.content if response.choices else None
        if not text or not text.strip():
            finish = response.choices[0].finish_reason if response.choices else None
            raise TransientLLMError(f"empty answer (finish_reason={finish})")
        usage = response.usage
        return Completion(
            text=text.strip(),
            model=response.model or request.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


class DevResponder:
    """Answers in-process when no LLM is configured, and says so in its text."""

    async def complete(self, request: ChatRequest) -> Completion:
        last = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
        summary = " ".join(last.split())
        if len(summary) > 120:
            summary = summary[:119] + "…"
        text = (f"{DEV_MARKER} No LLM is configured (set OPENAI_API_KEY or OPENAI_BASE_URL). "
                f"You said: {summary}")
        prompt = sum(len(m["content"]) for m in request.messages) // 4
        return Completion(text=text, model=DEV_MODEL, prompt_tokens=prompt,
                          completion_tokens=len(text) // 4)

    async def aclose(self) -> None:
        return None


class Routed:
    """The development responder by default, but a tenant's own endpoint when it has one."""

    def __init__(self, default: ChatModel, endpoints: OpenAIChat) -> None:
        self._default = default
        self._endpoints = endpoints

    async def complete(self, request: ChatRequest) -> Completion:
        chosen = self._endpoints if request.base_url else self._default
        return await chosen.complete(request)

    async def aclose(self) -> None:
        await self._default.aclose()
        await self._endpoints.aclose()


def chat_model(api_key: str | None, base_url: str | None) -> ChatModel:
    """OpenAI (or the configured compatible endpoint), or the development responder."""
    if api_key or base_url:
        return OpenAIChat(api_key, base_url)
    return Routed(DevResponder(), OpenAIChat(None))
