"""One part's Messages API call: the attempt recorded before the call and the outcome after
it, so a redelivered event never calls twice for a part (docs/adr/0008); transient failures
retried with backoff (never sooner than Twilio's ``Retry-After``), an ambiguous one looked up
at Twilio before calling again."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from switchboard_contracts import Envelope
from switchboard_contracts.events.sender import OutboundPartAttempted
from switchboard_runtime.http import backoff_or_retry_after
from switchboard_runtime.telemetry import get_logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from . import metrics
from .claims import Claims
from .outcomes import Outcomes
from .ratelimit import SenderPacer
from .rules import ErrorClass, ambiguous, classify
from .settings import SenderSettings
from .state import ReplyState
from .store import ReplyStore, SentRef
from .twilio_api import Credentials, MessagesApi, TwilioCallError

log = get_logger(__name__)

STATUS_PATH = "/twilio/whatsapp/status"
RETRY_AFTER_MAX_S = 30.0  # half the consumers' ack wait (60 s)


class TransientFailure(Exception):
    """A Messages API call worth trying again (5xx, 429, timeout, connection error)."""

    def __init__(self, error: TwilioCallError, maybe_created_at: datetime | None = None
                 ) -> None:
        super().__init__(str(error))
        self.error = error
        # The attempt's time when the call may have created the message (timeout, 5xx).
        self.maybe_created_at = maybe_created_at


def _retry_after(error: BaseException) -> float | None:
    return error.error.retry_after_s if isinstance(error, TransientFailure) else None


def _content(state: ReplyState, number: int) -> dict[str, Any]:
    """What part ``number`` carries besides its text: a template's sid and variables, the
    media (with part 1). Only what is set, so an adapter written for text alone still works."""
    extras: dict[str, Any] = {}
    if state.content_sid:
        extras.update(content_sid=state.content_sid, content_variables=state.content_variables)
    if state.media_url and number == 1:
        extras["media_url"] = state.media_url
    return extras


class Calls:
    def __init__(self, settings: SenderSettings, store: ReplyStore, api: MessagesApi,
                 pacer: SenderPacer, claims: Claims, outcomes: Outcomes,
                 clock: Callable[[], datetime]) -> None:
        self._settings = settings
        self._store = store
        self._api = api
        self._pacer = pacer
        self._claims = claims
        self._outcomes = outcomes
        self._clock = clock
        self._skew = timedelta(seconds=settings.lookup_skew_s)
        # Exponential with jitter, never sooner than Twilio's Retry-After (the runtime's one
        # such wait), which is capped so that a wild header cannot outlast the ack wait.
        self._backoff = backoff_or_retry_after(
            settings.retry_base_s, settings.retry_max_s, RETRY_AFTER_MAX_S, _retry_after)

    async def send(self, state: ReplyState, cause: Envelope, credentials: Credentials,
                   number: int, revision: int) -> None:
        """Call for part ``number``, holding the conversation's lease at ``revision``."""
        assert state.accepted is not None
        conversation_id = state.accepted.conversation_id or ""
        attempt_no = len(state.part(number).attempts)
        maybe_created_at: datetime | None = None
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(self._settings.twilio_max_attempts, 1)),
            wait=self._backoff, retry=retry_if_exception_type(TransientFailure),
            before_sleep=self._count_retry, reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if maybe_created_at is not None and await self.found(
                        state, cause, credentials, number, maybe_created_at):
                    return
                attempt_no += 1
                attempted_at = self._clock()
                attempted = OutboundPartAttempted(
                    turn=state.turn, part=number, parts=state.count, attempt=attempt_no,
                    attempted_at=attempted_at,
                )
                # A plain append (a conflict goes back to the drive loop, before any call).
                await self._store.append(state, (
                    state.accepted.caused(attempted, causation_id=cause.event_id), attempted))
                # Renewed after the attempt is recorded: a reply that takes over later sees
                # the attempt in flight and waits; one that took over already wins here.
                renewed = await self._claims.renew(state, conversation_id, revision)
                if renewed is None:
                    await self._outcomes.failed(state, cause, number, "stale", None)
                    return
                revision = renewed
                try:
                    await self._call(state, cause, credentials, number, attempted_at)
                except TransientFailure as failure:
                    maybe_created_at = failure.maybe_created_at
                    raise

    async def _call(self, state: ReplyState, cause: Envelope, credentials: Credentials,
                    number: int, attempted_at: datetime) -> None:
        """One call, its outcome recorded; raises ``TransientFailure`` to be retried."""
        assert state.accepted is not None
        waited = await self._pacer.wait(state.from_address)
        metrics.RATE_WAIT_SECONDS.observe(waited)
        started = time.perf_counter()
        try:
            sid = await self._api.create(
                credentials, to=state.to_address, from_=state.from_address,
                body=state.texts[number - 1], status_callback=self._status_callback(state),
                **_content(state, number),
            )
        except TwilioCallError as exc:
            metrics.TWILIO_ERRORS.labels(str(exc.status), str(exc.code)).inc()
            kind = classify(exc.status, exc.code)
            if kind is ErrorClass.TRANSIENT:
                raise TransientFailure(exc, attempted_at if ambiguous(exc.status) else None
                                       ) from None
            code = str(exc.code) if exc.code is not None else None
            if kind is ErrorClass.AUTH:
                metrics.AUTH_FAILURES.labels(state.accepted.tenant_id or "").inc()
                log.error("Twilio refused the tenant's credentials: check its auth token",
                          status=exc.status, code=exc.code)
                await self._outcomes.failed(state, cause, number, "twilio_auth", code)
                return
            await self._outcomes.failed(state, cause, number, f"twilio_{code or exc.status}",
                                        code)
            return
        finally:
            metrics.SEND_SECONDS.observe(time.perf_counter() - started)
        await self._outcomes.sent(state, cause, number, sid, "created")

    async def found(self, state: ReplyState, cause: Envelope, credentials: Credentials,
                    number: int, attempted_at: datetime) -> bool:
        """Look the part up at Twilio; record it as sent if an earlier attempt created it.

        Another reply can have had the same text (a canned answer, a fallback): a match
        already recorded for another reply or part is that one's message, not ours. A template's
        body is Twilio's rendering, so any message to the user since the attempt matches (the
        lease lets one outbound message of the conversation be sent at a time)."""
        by_template = {"content_sid": state.content_sid} if state.content_sid else {}
        try:
            candidates = await self._api.find(
                credentials, to=state.to_address, from_=state.from_address,
                body=state.texts[number - 1], since=attempted_at - self._skew,
                exclude=state.sids(), **by_template,
            )
        except TwilioCallError as exc:
            raise TransientFailure(exc) from None
        ours = SentRef(state.reply_id, number)
        sid = None
        for candidate in candidates:
            if (await self._store.sent_ref(candidate)) in (None, ours):
                sid = candidate
                break
        if sid is None:
            return False
        metrics.DOUBLE_SENDS_AVOIDED.labels("lookup").inc()
        log.info("an ambiguous send had gone through; recorded, not repeated", part=number)
        await self._outcomes.sent(state, cause, number, sid, "lookup")
        return True

    def _status_callback(self, state: ReplyState) -> str | None:
        base = self._settings.gateway_public_url
        if not base or state.accepted is None:
            return None
        turn = quote(state.accepted.correlation_id, safe="")
        return f"{base}{STATUS_PATH}?correlation_id={turn}"

    @staticmethod
    def _count_retry(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        reason = "unknown"
        if isinstance(error, TransientFailure):
            reason = str(error.error.status or "transport")
        metrics.RETRIES.labels(reason).inc()
        log.warning("Messages API call failed, retrying", reason=reason,
                    attempt=retry_state.attempt_number)
