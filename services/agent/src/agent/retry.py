"""The agent's retry policy for LLM calls (tenacity).

Transient failures (timeouts, connection errors, 408/409/429, 5xx) are retried up to
``LLM_MAX_ATTEMPTS`` attempts in all. The wait before the next attempt is what the endpoint
asked for at the least (``retry-after-ms`` / ``Retry-After``, capped at
``LLM_RETRY_AFTER_MAX_S``), else an exponential backoff with full jitter (``LLM_BACKOFF_BASE_S``
doubling, at most ``LLM_BACKOFF_MAX_S``): the runtime's one Retry-After-aware wait. Permanent
failures are not retried. When the attempts run out, ``LLMGaveUp`` says why and how many
attempts were made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from switchboard_runtime.http import backoff_or_retry_after
from switchboard_runtime.telemetry import get_logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from .llm import ChatModel, ChatRequest, Completion, LLMError, PermanentLLMError, TransientLLMError
from .metrics import LLM_REQUESTS, LLM_RETRIES, LLM_SECONDS

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 10.0
    retry_after_max_s: float = 30.0


class LLMGaveUp(Exception):
    def __init__(self, reason: str, attempts: int, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.permanent = permanent


def _retry_after(exc: BaseException) -> float | None:
    return exc.retry_after_s if isinstance(exc, TransientLLMError) else None


def _outcome(exc: LLMError) -> str:
    if isinstance(exc, PermanentLLMError):
        return "permanent_error"
    return "timeout" if exc.reason == "timeout" else "transient_error"


async def complete_with_retries(
    chat: ChatModel, request: ChatRequest, policy: RetryPolicy, *, tenant: str
) -> tuple[Completion, int]:
    """The completion and the number of attempts it took; raises ``LLMGaveUp``."""
    attempts = 0

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, LLMError) else type(exc).__name__
        LLM_RETRIES.labels(request.model, reason.split(" (")[0]).inc()
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("LLM call failed, retrying", reason=reason, attempt=state.attempt_number,
                    retry_in_s=round(wait, 3), model=request.model)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=backoff_or_retry_after(policy.backoff_base_s, policy.backoff_max_s,
                                    policy.retry_after_max_s, _retry_after),
        retry=retry_if_exception_type(TransientLLMError),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                started = time.perf_counter()
                try:
                    completion = await chat.complete(request)
                except LLMError as exc:
                    outcome = _outcome(exc)
                    LLM_SECONDS.labels(request.model, outcome).observe(
                        time.perf_counter() - started)
                    LLM_REQUESTS.labels(tenant, request.model, outcome).inc()
                    raise
                LLM_SECONDS.labels(request.model, "ok").observe(time.perf_counter() - started)
                LLM_REQUESTS.labels(tenant, request.model, "ok").inc()
                return completion, attempts
    except LLMError as exc:
        raise LLMGaveUp(exc.reason, attempts, isinstance(exc, PermanentLLMError)) from exc
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
