"""Run the simulator inside a test or a script.

    with run_llm_sim() as llm:
        client = AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        llm.fail("429", retry_after_s=1)
        llm.call_tool("handoff", {"reason": "asks for a refund"}, match="refund")
        ...
        assert llm.requests()[0]["model"] == "gpt-4o-mini"

It serves on its own thread and event loop (uvicorn), so async tests calling it on their own
loop, and services under test calling it from theirs, do not block each other. The admin
helpers are plain synchronous HTTP calls to that thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from switchboard_devstack.serving import serve_in_thread

from .app import create_app


@dataclass(frozen=True)
class RunningLLMSim:
    url: str  # the server's root, e.g. http://127.0.0.1:40123

    @property
    def base_url(self) -> str:
        """What to give the OpenAI SDK (``base_url``) or ``OPENAI_BASE_URL``."""
        return f"{self.url}/v1"

    def base_url_for(self, prefix: str) -> str:
        """Another endpoint on the same server (``/<prefix>/v1``): requests record it as
        their ``base_path``, so a test tells which endpoint received which key."""
        return f"{self.url}/{prefix.strip('/')}/v1"

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/sim{path}", json=body, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def fail(self, kind: str, count: int = 1, *, retry_after_s: float | None = 1.0,
             retry_after_ms: int | None = None) -> dict[str, Any]:
        """The next ``count`` requests fail: ``500``, ``503``, ``429``, ``401``, ``403``,
        ``400`` or ``404``. A 429 carries ``retry-after`` (and ``retry-after-ms``)."""
        return self._post("/failures", {"kind": kind, "count": count,
                                        "retry_after_s": retry_after_s,
                                        "retry_after_ms": retry_after_ms})

    def delay(self, seconds: float, count: int | None = None) -> dict[str, Any]:
        """The next ``count`` requests (all until reset, when None) answer after ``seconds``."""
        return self._post("/delay", {"seconds": seconds, "count": count})

    def reply(self, text: str | None = None, *, length: int | None = None,
              count: int | None = None, match: str | None = None) -> dict[str, Any]:
        """The next ``count`` answers (all until reset, when None) are ``text``, or a text of
        ``length`` characters; with ``match``, only answers to prompts containing it."""
        return self._post("/reply", {"text": text, "length": length, "count": count,
                                     "match": match})

    def call_tool(self, name: str, arguments: dict[str, Any] | None = None, *,
                  text: str | None = None, count: int | None = 1,
                  match: str | None = None) -> dict[str, Any]:
        """The next ``count`` answers (all until reset, when None; with ``match``, to prompts
        containing it) call the function ``name`` with ``arguments`` (``finish_reason``
        ``"tool_calls"``), beside ``text`` if given."""
        return self._post("/reply", {
            "text": text, "count": count, "match": match,
            "tool_calls": [{"name": name, "arguments": arguments or {}}]})

    def requests(self) -> list[dict[str, Any]]:
        """Every chat-completion request received: model, messages, params, outcome,
        ``authorization`` (the header) and ``base_path`` ("/v1", "/<prefix>/v1")."""
        response = httpx.get(f"{self.url}/sim/requests", timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["requests"]
        return found

    def reset(self) -> None:
        """Forget scripts and received requests."""
        self._post("/reset")


@contextmanager
def run_llm_sim(*, host: str = "127.0.0.1", port: int = 0,
                api_key: str | None = None) -> Iterator[RunningLLMSim]:
    """Serve the simulator on a free port (or ``port``) until the block ends.

    ``api_key`` makes it refuse (401) requests without ``Authorization: Bearer <api_key>``.
    """
    with serve_in_thread(create_app(api_key=api_key), host=host, port=port) as url:
        yield RunningLLMSim(url)
