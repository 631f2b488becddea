"""The sender's handlers: one per event it consumes, each driving one reply forward.

``ReplyGenerated`` records the reply (split into parts) and sends part 1; an
``OutboundMessageRequested`` (a notice, an operator's message or a template the conversation
asks for) is recorded and sent the same way, in its own tree. Either waits until the outbound
message of the conversation it comes ``after`` has gone out (the conversation names it); a
``DeliveryStatusReported`` applies the status to its part and, once the part is ``sent``,
sends the next; a ``PartTimeoutDue`` sends the next part when its callback is late (or, for
part 0, retries a reply that waited for an earlier one). Every send goes through ``_send``:
the attempt is recorded before the call and the outcome after it, so a redelivered event
never makes a second call for a part (docs/adr/0008).

Before each part, the conversation's public view (``refusal``) must allow it, and the reply
must hold its conversation's lease (``leases.py``): one reply goes out at a time, and a reply
for a newer turn waits for the one going out. A reply's first part waits for the
conversation's decision on its turn (``_settled_view``): the conversation consumes the same
``ReplyGenerated`` in parallel and may supersede it; a superseded reply sends nothing, an
accepted one is sent whole (an acceptance is final, also once a later turn's reply is
accepted: the view names it). What the conversation asked for is checked against a view at
least as new as the request (``request_seq``): an older one may not show what came before it
(an opt-in before its confirmation). What each kind of message needs from
the view is ``rules.NEEDS``; a reply the agent handed to a person (``handoff_reason``) is
never sent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from switchboard_contracts import Envelope, Event
from switchboard_contracts.conversation_view import ConversationView
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import OUTBOUND_KINDS, OutboundMessageRequested
from switchboard_contracts.events.gateway import DeliveryStatusReported
from switchboard_contracts.events.sender import (
    DeliveryStatusApplied,
    OutboundMessageFailed,
    OutboundMessageSent,
    OutboundPartAttempted,
    OutboundReplyAccepted,
    PartTimeoutDue,
)
from switchboard_runtime.bus import PermanentError, current_delivery
from switchboard_runtime.eventsourcing import ConcurrencyConflict
from switchboard_runtime.telemetry import get_logger
from switchboard_tenants import TenantDirectory
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from . import metrics
from .leases import Holder, Leases
from .ratelimit import SenderPacer
from .rules import ErrorClass, ambiguous, classify, refusal, status_applies
from .settings import SenderSettings
from .splitting import split_message
from .state import Done, FailRest, InFlight, ReplyState, Send, Wait, gone_out, next_action
from .store import ReplyStore, SentRef
from .twilio_api import Credentials, MessagesApi, TwilioCallError
from .view_watch import ViewWatch

log = get_logger(__name__)

STATUS_PATH = "/twilio/whatsapp/status"
MAX_CONFLICTS = 8


class TransientFailure(Exception):
    """A Messages API call worth trying again (5xx, 429, timeout, connection error)."""

    def __init__(self, error: TwilioCallError) -> None:
        super().__init__(str(error))
        self.error = error


class NotRecordedYet(Exception):
    """A status callback for a MessageSid whose send is not recorded yet: try again soon."""


class ViewNotWritten(Exception):
    """The conversation service has not written the conversation's view yet: try again soon
    (nothing is sent without knowing the window, the mode and the opt-out)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _content(state: ReplyState, number: int) -> dict[str, Any]:
    """What part ``number`` carries besides its text: a template's sid and variables, the
    media (with part 1). Only what is set, so an adapter written for text alone still works."""
    extras: dict[str, Any] = {}
    if state.content_sid:
        extras.update(content_sid=state.content_sid, content_variables=state.content_variables)
    if state.media_url and number == 1:
        extras["media_url"] = state.media_url
    return extras


async def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel a task whose result is not needed any more, and wait for it to end."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # it ended before the cancel; what it raised is not needed either


def _observe_turn(accepted: Envelope, sent_at: datetime) -> None:
    """The "webhook to reply" SLO (ADR 0019): from the turn's start the reply carries (none
    on replies accepted before it did) to its first part's successful Messages API call."""
    started = accepted.data.get("turn_started_at")
    if started is None:
        return
    elapsed = sent_at - datetime.fromisoformat(started)
    fallback = "true" if accepted.data.get("fallback") else "false"
    metrics.TURN_SECONDS.labels(fallback).observe(max(elapsed.total_seconds(), 0.0))


class Sender:
    def __init__(
        self, settings: SenderSettings, store: ReplyStore,
        directory: TenantDirectory, api: MessagesApi, pacer: SenderPacer,
        views: ViewWatch, leases: Leases,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._settings = settings
        self._store = store
        self._views = views
        self._leases = leases
        self._directory = directory
        self._api = api
        self._pacer = pacer
        self._clock = clock
        self._part_timeout = timedelta(seconds=settings.part_timeout_s)
        self._guard = timedelta(seconds=settings.in_flight_guard_s)
        self._skew = timedelta(seconds=settings.lookup_skew_s)
        self._lease = timedelta(seconds=settings.reply_lease_s)
        self._wait_poll = timedelta(seconds=settings.reply_wait_poll_s)
        self._acceptance_wait = timedelta(seconds=settings.acceptance_wait_s)
        self._after_wait = timedelta(seconds=settings.after_wait_s)

    # -- handlers ----------------------------------------------------------------------------
    async def on_reply_generated(self, event: Event[ReplyGenerated]) -> None:
        env, data = event.envelope, event.data
        if not env.conversation_id or not env.tenant_id:
            raise PermanentError("ReplyGenerated without conversation_id or tenant_id")
        if data.handoff_reason:
            # The agent handed the turn to a person: the conversation tells the user (ADR 0022).
            metrics.HANDOFF_REPLIES.inc()
            log.info("reply handing off to a person: not sent", turn=data.turn)
            return
        texts = split_message(data.text)
        await self._accept(env, OutboundReplyAccepted(
            turn=data.turn, texts=texts, to_address=data.user_address,
            from_address=data.business_address, account_sid=data.account_sid,
            fallback=data.fallback, turn_started_at=data.turn_started_at, after=data.after,
        ))

    async def on_outbound_requested(self, event: Event[OutboundMessageRequested]) -> None:
        env, data = event.envelope, event.data
        if not env.conversation_id or not env.tenant_id:
            raise PermanentError("OutboundMessageRequested without conversation_id or tenant_id")
        if data.kind not in OUTBOUND_KINDS:
            raise PermanentError(f"unknown kind of outbound message: {data.kind}")
        if (data.kind == "template") != (data.content_sid is not None):
            raise PermanentError("a template goes with a content_sid, and only a template")
        # A template is one message whatever its text (Twilio renders it); media alone is one.
        if data.content_sid:
            texts = [data.text]
        else:
            texts = split_message(data.text) or ([""] if data.media_url else [])
        # Where the request stands in the conversation's stream: the view that reflects what
        # came before it (an opt-in before its confirmation) has at least this version.
        delivery = current_delivery()
        await self._accept(env, OutboundReplyAccepted(
            turn=data.turn, texts=texts, to_address=data.user_address,
            from_address=data.business_address, account_sid=data.account_sid,
            kind=data.kind, purpose=data.purpose, after=data.after, media_url=data.media_url,
            content_sid=data.content_sid, content_variables=data.content_variables,
            template_name=data.template_name, operator_id=data.operator_id,
            request_seq=delivery.stream_seq if delivery and delivery.stream_seq else None,
        ))

    async def _accept(self, env: Envelope, acceptance: OutboundReplyAccepted) -> None:
        """Record what is to be sent (once: the first event of its tree) and drive it."""
        reply_id = str(env.event_id)
        state = await self._store.load(reply_id)
        if state.accepted is None:
            try:
                await self._store.append(state, env.caused(acceptance))
                metrics.PARTS_PER_REPLY.observe(len(acceptance.texts))
            except ConcurrencyConflict:
                pass  # another delivery recorded it first
            # Read back at least as far as the acceptance (ours, or the other delivery's).
            state = await self._store.load(reply_id, at_least=max(state.version, 1))
            if not acceptance.texts:
                await self._fail(state, env, 1, "empty_reply", None)
                return
        elif state.finished:
            metrics.DOUBLE_SENDS_AVOIDED.labels("already_done").inc()
        await self._drive(state, env)

    async def on_delivery_status(self, event: Event[DeliveryStatusReported]) -> None:
        env, data = event.envelope, event.data
        ref = await self._store.sent_ref(data.message_sid)
        if ref is None:
            self._unknown(env, data.status)
            return
        state = await self._store.load(ref.reply_id, at_least=1)  # its sid is known: recorded
        for _ in range(MAX_CONFLICTS):
            part = state.by_sid(data.message_sid)
            if part is None or state.accepted is None:
                self._unknown(env, data.status)
                return
            if not status_applies(part.status, data.status):
                metrics.STATUSES.labels(data.status, "not_applied").inc()
                break
            applied = state.accepted.caused(DeliveryStatusApplied(
                message_sid=data.message_sid, status=data.status, error_code=data.error_code,
                part=part.number, previous_status=part.status,
            ), causation_id=env.event_id)
            try:
                await self._store.append(state, applied)
            except ConcurrencyConflict:
                state = await self._store.load(ref.reply_id, at_least=state.version + 1)
                continue
            part.status, part.status_error = data.status, data.error_code
            metrics.STATUSES.labels(data.status, "applied").inc()
            break
        await self._drive(state, env)

    async def on_part_timeout(self, event: Event[PartTimeoutDue]) -> None:
        # The fired timer is stored in the reply's tree: the reply is recorded.
        state = await self._store.load(event.data.reply_id, at_least=1)
        await self._drive(state, event.envelope, timer_fired_after=event.data.part)

    def _unknown(self, env: Envelope, status: str) -> None:
        # The send that produced this sid may be a moment from being recorded: retry a while.
        if self._clock() - env.occurred_at < timedelta(seconds=self._settings.unknown_sid_grace_s):
            raise NotRecordedYet("status for a MessageSid not recorded (yet)")
        metrics.STATUSES.labels(status, "unknown_sid").inc()
        log.info("status callback for an unknown MessageSid ignored")

    # -- driving a reply ---------------------------------------------------------------------
    async def _drive(self, state: ReplyState, cause: Envelope,
                     timer_fired_after: int | None = None) -> None:
        for _ in range(MAX_CONFLICTS):
            action = next_action(
                state, now=self._clock(), trigger=cause.event_id,
                part_timeout=self._part_timeout, in_flight_guard=self._guard,
                timer_fired_after=timer_fired_after,
            )
            try:
                if isinstance(action, Done | InFlight):
                    return
                if isinstance(action, Wait):
                    # Idempotent (one schedule per subject): covers a crash after the send.
                    await self._store.schedule_timeout(state, cause, action.after, action.due_at)
                    return
                if isinstance(action, FailRest):
                    await self._fail(state, cause, action.part, action.reason, action.error_code)
                    return
                assert isinstance(action, Send)
                await self._send(state, cause, action.part, action.recover)
                return
            except ConcurrencyConflict:
                state = await self._store.load(state.reply_id, at_least=state.version + 1)
        raise RuntimeError("too many concurrent writers on one reply")

    async def _send(self, state: ReplyState, cause: Envelope, number: int, recover: bool
                    ) -> None:
        assert state.accepted is not None
        text = state.texts[number - 1]
        part = state.part(number)
        credentials = self._credentials(state)
        if credentials is None:
            log.error("no credentials for the tenant; cannot send")
            await self._fail(state, cause, number, "unknown_tenant", None)
            return
        # An earlier attempt may have created the message: ask Twilio before calling again.
        if recover and part.attempts and await self._found(
                state, cause, credentials, number, part.attempts[-1].at):
            return
        first_part = number == 1
        if (first_part and state.after and not part.attempts
                and not await self._after_gone_out(state, cause)):
            return
        conversation_id = state.accepted.conversation_id or ""
        # The agent's reply waits for the conversation's decision on its turn; what the
        # conversation asked for is decided already. The conversation writes it in parallel
        # with us: waited for while the lease is claimed, not after.
        needs_decision = first_part and state.kind is None
        viewing = asyncio.ensure_future(
            self._settled_view(conversation_id, state.turn, needs_decision, state.request_seq))
        try:
            claim = await self._claim(state, conversation_id)
        except BaseException:
            await _abandon(viewing)
            raise
        if not isinstance(claim, int):  # waits or is stale: no use for the view
            await _abandon(viewing)
        if claim == "wait":  # an earlier reply of the conversation is still going out
            metrics.REPLY_WAITS.inc()
            log.info("an earlier reply of the conversation is going out; waiting", part=number,
                     turn=state.turn)
            await self._store.schedule_timeout(state, cause, number - 1,
                                               self._clock() + self._wait_poll)
            return
        if claim == "stale":  # a reply for a newer turn holds the conversation
            await self._fail(state, cause, number, "stale", None)
            return
        revision = claim
        view = await viewing
        if view is None:
            raise ViewNotWritten("no view of the conversation yet")
        if needs_decision and view.reply_pending(state.turn):
            if self._clock() - state.accepted.occurred_at > self._acceptance_wait:
                await self._fail(state, cause, number, "not_accepted", None)
                return
            metrics.ACCEPTANCE_WAITS.inc()
            log.info("the conversation has not decided on the reply's turn yet; waiting",
                     turn=state.turn, view_turn=view.turn)
            await self._store.schedule_timeout(state, cause, 0, self._clock() + self._wait_poll)
            return
        if view.version < state.request_seq:
            # The conversation has not written the view that reflects the request (and what
            # came before it) yet: an older one would refuse an opt-in's confirmation.
            if self._clock() - state.accepted.occurred_at <= self._acceptance_wait:
                metrics.VIEW_BEHIND_WAITS.inc()
                log.info("the conversation's view is older than the request; waiting",
                         purpose=state.purpose, part=number)
                await self._store.schedule_timeout(state, cause, number - 1,
                                                   self._clock() + self._wait_poll)
                return
            log.warning("the conversation's view never reached the request; checking the "
                        "one in hand", purpose=state.purpose, part=number)
        # Accepted before a later turn's reply was: the view names it (ADR 0014).
        accepted = not first_part or view.reply_accepted_id(state.reply_id)
        refused = refusal(view, state.turn, self._clock(), accepted=accepted,
                          kind=state.kind, purpose=state.purpose)
        if refused is not None:
            await self._fail(state, cause, number, refused.reason, refused.error_code)
            return

        attempt_no = len(part.attempts)
        maybe_created_at: datetime | None = None
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(self._settings.twilio_max_attempts, 1)),
            wait=self._backoff, retry=retry_if_exception_type(TransientFailure),
            before_sleep=self._count_retry, reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if maybe_created_at is not None and await self._found(
                        state, cause, credentials, number, maybe_created_at):
                    return
                attempt_no += 1
                attempted_at = self._clock()
                await self._store.append(state, state.accepted.caused(OutboundPartAttempted(
                    turn=state.turn, part=number, parts=state.count, attempt=attempt_no,
                    attempted_at=attempted_at,
                ), causation_id=cause.event_id))
                # Renewed after the attempt is recorded: a reply that takes over later sees
                # the attempt in flight and waits; one that took over already wins here.
                renewed = await self._renew(state, conversation_id, revision)
                if renewed is None:
                    await self._fail(state, cause, number, "stale", None)
                    return
                revision = renewed
                waited = await self._pacer.wait(state.from_address)
                metrics.RATE_WAIT_SECONDS.observe(waited)
                started = time.perf_counter()
                try:
                    sid = await self._api.create(
                        credentials, to=state.to_address, from_=state.from_address, body=text,
                        status_callback=self._status_callback(state.accepted),
                        **_content(state, number),
                    )
                except TwilioCallError as exc:
                    metrics.TWILIO_ERRORS.labels(str(exc.status), str(exc.code)).inc()
                    kind = classify(exc.status, exc.code)
                    if kind is ErrorClass.TRANSIENT:
                        maybe_created_at = attempted_at if ambiguous(exc.status) else None
                        raise TransientFailure(exc) from None
                    code = str(exc.code) if exc.code is not None else None
                    if kind is ErrorClass.AUTH:
                        metrics.AUTH_FAILURES.labels(state.accepted.tenant_id or "").inc()
                        log.error("Twilio refused the tenant's credentials: check its auth token",
                                  status=exc.status, code=exc.code)
                        await self._fail(state, cause, number, "twilio_auth", code)
                        return
                    await self._fail(state, cause, number, f"twilio_{code or exc.status}", code)
                    return
                finally:
                    metrics.SEND_SECONDS.observe(time.perf_counter() - started)
                await self._record_sent(state, cause, number, sid, "created")

    async def _found(self, state: ReplyState, cause: Envelope, credentials: Credentials,
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
        await self._record_sent(state, cause, number, sid, "lookup")
        return True

    async def _record_sent(self, state: ReplyState, cause: Envelope, number: int, sid: str,
                           how: str) -> None:
        assert state.accepted is not None
        # The map first: a callback can come back before the event is stored.
        await self._store.remember_sid(sid, state.reply_id, number,
                                       state.accepted.tenant_id or "")
        sent = state.accepted.caused(OutboundMessageSent(
            turn=state.turn, part=number, parts=state.count, message_sid=sid,
            text=state.texts[number - 1], to_address=state.to_address,
            from_address=state.from_address,
        ), causation_id=cause.event_id)
        if not await self._append_outcome(state, number, sent):
            return
        metrics.SENT.labels(how).inc()
        if number == 1 and how == "created":  # once per reply; a lookup's call time is unknown
            _observe_turn(state.accepted, sent.occurred_at)
        part = state.part(number)
        part.message_sid, part.sent_at = sid, sent.occurred_at
        if number < state.count:
            await self._store.schedule_timeout(state, cause, number,
                                               sent.occurred_at + self._part_timeout)

    async def _fail(self, state: ReplyState, cause: Envelope, number: int, reason: str,
                    error_code: str | None) -> None:
        """Record part ``number`` and every later part as not sent, for ``reason``: a reply
        stops at its first failed part, and each part it will never send gets its outcome, so
        the read models and the fault suite account for every part (none stays pending)."""
        assert state.accepted is not None
        for part in range(number, max(state.count, number) + 1):
            if part != number and state.part(part).done:
                continue
            failed = state.accepted.caused(OutboundMessageFailed(
                turn=state.turn, part=part, parts=state.count, reason=reason,
                error_code=error_code, retryable=False,
            ), causation_id=cause.event_id)
            if not await self._append_outcome(state, part, failed):
                return
            state.part(part).failed = reason
            metrics.FAILED.labels(reason, error_code or "").inc()
        log.warning("reply parts not sent", reason=reason, error_code=error_code, part=number,
                    parts=state.count)

    async def _after_gone_out(self, state: ReplyState, cause: Envelope) -> bool:
        """Whether the outbound message this one comes after has gone out or failed (then this
        one may go); if not, a timer looks again. Past ``after_wait_s`` from this one's
        arrival it goes anyway: the earlier one never reached the sender or stopped halfway."""
        assert state.accepted is not None and state.after is not None
        before = await self._store.load(state.after)
        now = self._clock()
        if gone_out(before, now, self._part_timeout):
            return True
        if now - state.accepted.occurred_at > self._after_wait:
            why = "missing" if before.accepted is None else "unfinished"
            metrics.AFTER_GIVEN_UP.labels(why).inc()
            log.warning("the message this one comes after has not gone out in time; sending",
                        why=why, purpose=state.purpose)
            return True
        metrics.AFTER_WAITS.inc()
        log.info("waiting for the message this one comes after", purpose=state.purpose)
        await self._store.schedule_timeout(state, cause, 0, now + self._wait_poll)
        return False

    async def _settled_view(self, conversation_id: str, turn: int, needs_decision: bool,
                            min_version: int) -> ConversationView | None:
        """The conversation's view, waited for up to ``view_settle_s`` while it is missing,
        older than ``min_version`` (a request's stream sequence) or, before a reply's first
        part, undecided on ``turn``: the conversation usually writes
        within milliseconds, far sooner than a redelivery or a timer would look again; the
        write is pushed to the waiting handler (``view_watch.py``)."""
        started = time.monotonic()

        def settled(view: ConversationView | None) -> bool:
            return view is not None and view.version >= min_version and not (
                needs_decision and view.reply_pending(turn))

        view = await self._views.settled(conversation_id, settled, self._settings.view_settle_s)
        metrics.VIEW_SETTLE_SECONDS.observe(time.monotonic() - started)
        return view

    # -- one reply going out per conversation (leases.py) --------------------------------------
    async def _claim(self, state: ReplyState, conversation_id: str
                     ) -> int | Literal["wait", "stale"]:
        """Hold the conversation's lease for this reply: the lease's revision, or why not."""
        for _ in range(MAX_CONFLICTS):
            lease = await self._leases.read(conversation_id)
            holder = lease.holder
            if holder is not None and holder.reply_id != state.reply_id:
                # An agent's reply behind a newer turn is stale: that turn's reply, which comes
                # after it, stopped waiting for it (AFTER_WAIT_S) or names none (stored before
                # ReplyGenerated 1.4); order over completeness then. What the conversation
                # asked for is never dropped for it: it waits its turn.
                if holder.turn > state.turn and state.kind is None:
                    return "stale"
                how = await self._takeover(holder)
                if how is None:
                    return "wait"
                metrics.LEASE_TAKEOVERS.labels(how).inc()
            revision = await self._leases.write(
                conversation_id, Holder(state.reply_id, state.turn, self._clock()),
                lease.revision)
            if revision is not None:
                return revision
        raise RuntimeError("too many concurrent writers on one conversation's lease")

    async def _takeover(self, holder: Holder) -> str | None:
        """Why another reply's lease may be taken over (it is done, or expired), or None."""
        now = self._clock()
        if now - holder.renewed_at > self._lease:
            log.warning("a reply's lease expired without it being done; taking over",
                        turn=holder.turn)
            return "expired"
        if gone_out(await self._store.load(holder.reply_id), now, self._part_timeout):
            return "gone_out"
        return None

    async def _renew(self, state: ReplyState, conversation_id: str, revision: int
                     ) -> int | None:
        """Renew the lease held at ``revision``; None when another reply holds it now."""
        renewed = await self._leases.write(
            conversation_id, Holder(state.reply_id, state.turn, self._clock()), revision)
        if renewed is not None:
            return renewed
        claim = await self._claim(state, conversation_id)
        return claim if isinstance(claim, int) else None

    # -- helpers -----------------------------------------------------------------------------
    async def _append_outcome(self, state: ReplyState, number: int, outcome: Envelope) -> bool:
        """Append a part's outcome. It is a fact, not a decision: on a conflict it is appended
        again at the new version, unless the part has an outcome by then (answers False)."""
        for _ in range(MAX_CONFLICTS):
            try:
                await self._store.append(state, outcome)
                return True
            except ConcurrencyConflict:
                fresh = await self._store.load(state.reply_id, at_least=state.version + 1)
                if fresh.part(number).done:
                    return False
                state.version = fresh.version
        raise RuntimeError("could not record a part's outcome")

    def _credentials(self, state: ReplyState) -> Credentials | None:
        assert state.accepted is not None
        route = self._directory.credentials(state.accepted.tenant_id or "")
        if route is None or route.account_sid != state.account_sid:
            return None
        return Credentials(route.account_sid, route.auth_token)

    def _status_callback(self, accepted: Envelope) -> str | None:
        base = self._settings.gateway_public_url
        if not base:
            return None
        return f"{base}{STATUS_PATH}?correlation_id={quote(accepted.correlation_id, safe='')}"

    def _backoff(self, retry_state: RetryCallState) -> float:
        """Exponential with jitter; never sooner than Twilio's Retry-After."""
        base, cap = self._settings.retry_base_s, self._settings.retry_max_s
        ceiling = min(cap, base * 2 ** (retry_state.attempt_number - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not crypto)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, TransientFailure) and error.error.retry_after_s is not None:
            delay = max(delay, error.error.retry_after_s + random.uniform(0, base))  # noqa: S311
        return delay

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
