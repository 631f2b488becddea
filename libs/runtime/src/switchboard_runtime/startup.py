"""Start-up waits out a NATS cluster that cannot answer yet, instead of exiting.

While many processes create R3 streams at once, or a node is down or just back, JetStream
answers a stream or KV bucket creation with a timeout, "no responders", or a 5xx ("JetStream
system temporarily unavailable", no peers to place the replicas on). Every creation a service
makes at start-up is idempotent (a create with the same configuration answers the existing
stream or consumer), so start-up repeats it with jittered exponential back-off; the service's
start-up budget (``STARTUP_TIMEOUT_S``) bounds the whole wait. A request the service's NATS
user may not make also ends in a timeout; the server's permissions violation tells it apart,
and that fails at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from .telemetry import get_logger

log = get_logger(__name__)

T = TypeVar("T")

# JetStream API requests that only read or idempotently declare what a service owns or reads.
_IDEMPOTENT_API = re.compile(
    r"^\$JS\.API\.(INFO$|STREAM\.(CREATE|UPDATE|INFO)\.|CONSUMER\.(CREATE|DURABLE\.CREATE|INFO)\.)"
)
# JetStream's answers while it cannot decide yet: no meta leader or quorum (503), a leader
# moving (500), or too few peers up to place the replicas (10005, 10023).
_UNAVAILABLE_CODES = frozenset({500, 503})
_UNAVAILABLE_ERR_CODES = frozenset({10005, 10023})
# Full jitter, so processes started together do not retry together; at most 5 s apart.
_BACKOFF = wait_random_exponential(multiplier=0.25, max=5.0)


class StartupFailed(RuntimeError):
    """The service cannot start; the message says why, for the one line it exits with."""


class StartupTimeout(StartupFailed):
    """Start-up did not finish within ``STARTUP_TIMEOUT_S``; the message says what it awaited."""


class StartupRefused(StartupFailed):
    """NATS refused a start-up request (this service's user may not make it): no wait helps."""


class NotYetAvailable(Exception):
    """JetStream answered that it cannot serve the request now."""


async def retrying(what: str, attempt: Callable[[], Awaitable[T]],
                   transient: tuple[type[BaseException], ...]) -> T:
    """``attempt()`` until it does not raise one of ``transient``: one warning per retry,
    naming ``what`` is awaited. No stop of its own: the caller's budget cancels it."""
    async for trial in AsyncRetrying(retry=retry_if_exception_type(transient), wait=_BACKOFF,
                                     before_sleep=_log_retry(what), reraise=True):
        with trial:
            return await attempt()
    raise AssertionError("unreachable: tenacity returns or raises")


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("start-up waiting", waiting_on=what, attempt=state.attempt_number,
                    error=type(error).__name__, detail=str(error),
                    retry_in_s=round(state.upcoming_sleep, 2),
                    waited_s=round(state.seconds_since_start or 0.0, 1))
    return log_retry


class StartingClient(Client):
    """A NATS client whose idempotent JetStream API requests wait out an unavailable
    JetStream while ``starting``: every JetStream context made from it (the service's, a
    library's, a hook's) declares its streams, buckets and consumers patiently. Once started,
    requests fail fast again, as handlers expect."""

    def __init__(self) -> None:
        super().__init__()
        self.starting = True
        self.waiting_on: str | None = None  # the request retried last, for /readyz and errors
        self._refusals: list[str] = []  # permissions violations the server sent meanwhile

    def note_error(self, error: Exception) -> None:
        """An error the server sent (the error callback): a permissions violation makes the
        request it names fail at once instead of being retried as a timeout."""
        if self.starting and "permissions violation" in str(error).lower():
            self._refusals.append(str(error).lower())

    async def request(  # its timeout is nats-py's parameter, kept as the parent has it
        self, subject: str, payload: bytes = b"",
        timeout: float = 0.5,  # noqa: ASYNC109
        old_style: bool = False, headers: dict[str, Any] | None = None,
    ) -> Msg:
        if not (self.starting and _IDEMPOTENT_API.match(subject)):
            return await super().request(subject, payload, timeout, old_style, headers)
        what = subject.removeprefix("$JS.API.")

        async def attempt() -> Msg:
            try:
                answer = await super(StartingClient, self).request(
                    subject, payload, timeout, old_style, headers)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                # nats-py hands the server's message on in lower case
                refusal = next((r for r in self._refusals if f'"{subject.lower()}"' in r), None)
                if refusal is not None:
                    raise StartupRefused(f"{refusal} (this service's NATS user: "
                                         "deploy/nats/permissions.conf)") from None
                self.waiting_on = what
                raise
            unavailable = _unavailable(answer)
            if unavailable is not None:
                self.waiting_on = what
                raise NotYetAvailable(unavailable)
            return answer

        answer = await retrying(what, attempt, (nats.errors.TimeoutError,
                                                nats.errors.NoRespondersError, NotYetAvailable))
        self.waiting_on = None
        return answer


def _unavailable(answer: Msg) -> str | None:
    """The server's description when its answer says "not now", else None (an answer, or an
    error that waiting does not cure: the caller sees it)."""
    try:
        error = json.loads(answer.data).get("error")
    except (ValueError, AttributeError):
        return None
    if isinstance(error, dict) and (error.get("code") in _UNAVAILABLE_CODES
                                    or error.get("err_code") in _UNAVAILABLE_ERR_CODES):
        return str(error.get("description", "unavailable"))
    return None
