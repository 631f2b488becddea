"""The simulator's HTTP app: OpenAI's ``/v1/chat/completions`` and the ``/sim`` admin API.

Answers have OpenAI's shape (``chat.completion`` objects, ``chat.completion.chunk`` server-sent
events when ``stream`` is true, ``usage``), and errors OpenAI's body
``{"error": {"message", "type", "param", "code"}}`` with the status OpenAI uses, so the real
``openai`` SDK takes its real code paths (``RateLimitError``, ``InternalServerError``,
``AuthenticationError``, timeouts...).

It serves them under ``/v1`` and under any prefix (``/<prefix>/v1``), so one simulator plays
several endpoints (a tenant's own base URL beside the global one) and records, per request,
the ``base_path`` it came through and its ``Authorization`` header.

Without a script, the answer says it comes from the simulator (``MARKER``, never the agent's
own development responder's text, so a test can tell which of the two answered) and echoes a
summary of the last user message. Token counts are estimates (about 4 characters a token).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .state import (
    DelaySpec,
    FailureSpec,
    Queued,
    ReceivedRequest,
    ReplySpec,
    SimState,
    ToolCallSpec,
)

MARKER = "[llm-sim]"
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "sim-small")
_FILLER = (
    "This is a long reply from the LLM simulator, made to exercise splitting "
    "and delivery of long answers. "
)

ERRORS: dict[str, tuple[int, str, str, str | None]] = {
    "500": (500, "The server had an error while processing your request. Sorry about that!",
            "server_error", None),
    "503": (503, "The engine is currently overloaded, please try again later.",
            "server_error", None),
    "429": (429, "Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, "
                 "Requested 1. Please try again in {wait}.", "requests", "rate_limit_exceeded"),
    "401": (401, "Incorrect API key provided. You can find your API key at "
                 "https://platform.openai.com/account/api-keys.",
            "invalid_request_error", "invalid_api_key"),
    "403": (403, "You are not allowed to sample from this model.",
            "invalid_request_error", "model_not_allowed"),
    "400": (400, "Invalid request: the messages could not be processed.",
            "invalid_request_error", None),
    "404": (404, "The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error", "model_not_found"),
}


def error_response(status: int, message: str, type_: str, code: str | None = None,
                   param: str | None = None, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    return ""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def default_reply(messages: list[dict[str, Any]]) -> str:
    last = next((text_of(m.get("content")) for m in reversed(messages)
                 if m.get("role") == "user"), "")
    summary = " ".join(last.split())
    if not summary:
        return f"{MARKER} Hello! This is the LLM simulator; no model is behind it."
    if len(summary) > 120:
        summary = summary[:119] + "…"
    return f"{MARKER} You said: {summary}"


def text_of_length(length: int) -> str:
    return (_FILLER * (length // len(_FILLER) + 1))[:length]


def _validate(body: Any) -> JSONResponse | None:
    if not isinstance(body, dict):
        return error_response(400, "The request body must be a JSON object.",
                              "invalid_request_error")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return error_response(400, "you must provide a model parameter",
                              "invalid_request_error", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error_response(400, "[] is too short - 'messages'", "invalid_request_error",
                              param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return error_response(
                400, f"Invalid value for 'messages[{index}].role'.", "invalid_request_error",
                param=f"messages.[{index}].role", code="invalid_value")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            return error_response(
                400, f"Invalid type for 'messages[{index}].content'.",
                "invalid_request_error", param=f"messages.[{index}].content",
                code="invalid_type")
    return None


def _failure(spec: FailureSpec, model: str) -> JSONResponse:
    status, message, type_, code = ERRORS[spec.kind]
    headers: dict[str, str] = {}
    wait = ""
    if spec.kind == "429":
        if spec.retry_after_s is not None:
            seconds = spec.retry_after_s
            headers["retry-after"] = str(int(seconds)) if seconds == int(seconds) else str(seconds)
            wait = f"{seconds}s"
        if spec.retry_after_ms is not None:
            headers["retry-after-ms"] = str(spec.retry_after_ms)
            wait = wait or f"{spec.retry_after_ms}ms"
        headers.update({"x-ratelimit-limit-requests": "3",
                        "x-ratelimit-remaining-requests": "0",
                        "x-ratelimit-reset-requests": wait or "1s"})
    return error_response(status, message.format(model=model, wait=wait or "1s"), type_, code,
                          headers=headers)


def prompt_of(messages: list[dict[str, Any]]) -> str:
    """Every message's text, for matching scripted replies."""
    return "\n".join(text_of(m.get("content")) for m in messages)


def wire_tool_calls(calls: list[ToolCallSpec]) -> list[dict[str, Any]]:
    """OpenAI's ``message.tool_calls``: arguments are a JSON string, as the model writes it."""
    return [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}
            for call in calls]


def completions_router(state: SimState) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/models")
    @router.get("/{prefix:path}/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "llm-sim"}
            for m in MODELS]}

    @router.post("/v1/chat/completions", response_model=None)
    @router.post("/{prefix:path}/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        if state.api_key is not None and authorization != f"Bearer {state.api_key}":
            status, message, type_, code = ERRORS["401"]
            return error_response(status, message, type_, code)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error_response(
                400, "We could not parse the JSON body of your request. (HINT: This likely "
                "means you aren't using your HTTP library correctly.)", "invalid_request_error")
        invalid = _validate(body)
        if invalid is not None:
            return invalid
        model: str = body["model"]
        messages: list[dict[str, Any]] = body["messages"]
        stream = bool(body.get("stream"))
        received = ReceivedRequest(
            model=model, messages=messages, stream=stream, authorization=authorization,
            base_path=request.url.path.removesuffix("/chat/completions"),
            received_at=time.time(),
            params={k: v for k, v in body.items() if k not in ("model", "messages")},
        )
        state.record(received)
        failure = state.take_failure()
        if failure is not None:
            received.outcome = f"error:{failure.kind}"
            return _failure(failure, model)
        # Everything is decided on arrival: a request still sleeping when the next test has
        # scripted its own answer must not take that answer.
        delay = state.take_delay()
        script = state.take_reply(prompt_of(messages))
        if delay:
            await asyncio.sleep(delay)
        text: str | None = default_reply(messages)
        tool_calls: list[dict[str, Any]] = []
        if script is not None:
            text = script.text
            if script.length is not None:
                text = text_of_length(script.length)
            tool_calls = wire_tool_calls(script.tool_calls)
        finish_reason = "tool_calls" if tool_calls else "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if (text is not None and isinstance(limit, int) and limit > 0
                and estimate_tokens(text) > limit):
            text, finish_reason = text[: limit * 4], "length"
        completion_tokens = estimate_tokens(
            (text or "") + "".join(c["function"]["arguments"] for c in tool_calls))
        prompt_tokens = sum(estimate_tokens(text_of(m.get("content"))) + 4 for m in messages) + 3
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        received.outcome = "ok"
        completion_id, created = state.next_id(), int(time.time())
        headers = {"x-request-id": f"req_{completion_id}",
                   "openai-processing-ms": str(int(delay * 1000))}
        if stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _chunks(completion_id, created, model, text, tool_calls, finish_reason,
                        usage if include_usage else None),
                media_type="text/event-stream", headers=headers)
        return JSONResponse({
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_llm_sim",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None,
                            **({"tool_calls": tool_calls} if tool_calls else {})},
                "logprobs": None,
                "finish_reason": finish_reason,
            }],
            "usage": usage,
        }, headers=headers)

    return router


async def _chunks(completion_id: str, created: int, model: str, text: str | None,
                  tool_calls: list[dict[str, Any]], finish_reason: str,
                  usage: dict[str, int] | None) -> AsyncIterator[bytes]:
    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                 "model": model, "system_fingerprint": "fp_llm_sim", "choices": choices,
                 **extra}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""},
                  "finish_reason": None}])
    text = text or ""
    for start in range(0, len(text), 24):
        yield event([{"index": 0, "delta": {"content": text[start:start + 24]},
                      "finish_reason": None}])
    for index, call in enumerate(tool_calls):  # one delta per call, as OpenAI's first chunk
        yield event([{"index": 0, "delta": {"tool_calls": [{"index": index, **call}]},
                      "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "finish_reason": finish_reason}])
    if usage is not None:
        yield event([], usage=usage)
    yield b"data: [DONE]\n\n"


def admin_router(state: SimState) -> APIRouter:
    router = APIRouter(prefix="/sim")

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.post("/failures", status_code=201)
    async def queue_failure(spec: FailureSpec) -> dict[str, Any]:
        state.failures.append(Queued(spec, spec.count))
        return state.script()

    @router.post("/delay", status_code=201)
    async def queue_delay(spec: DelaySpec) -> dict[str, Any]:
        state.delays.append(Queued(spec, spec.count))
        return state.script()

    @router.post("/reply", status_code=201)
    async def queue_reply(spec: ReplySpec) -> dict[str, Any]:
        state.replies.append(Queued(spec, spec.count))
        return state.script()

    @router.get("/script")
    async def script() -> dict[str, Any]:
        return state.script()

    @router.get("/requests")
    async def requests() -> dict[str, Any]:
        return {"requests": [r.as_json() for r in state.requests]}

    @router.post("/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return router


def create_app(state: SimState | None = None, *, api_key: str | None = None) -> FastAPI:
    """The simulator; ``api_key`` makes it answer 401 to any other bearer token."""
    state = state or SimState(api_key=api_key)
    app = FastAPI(title="llm-sim", docs_url=None, redoc_url=None)
    app.state.sim = state
    app.include_router(completions_router(state))
    app.include_router(admin_router(state))
    return app
