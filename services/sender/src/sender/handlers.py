"""The sender's handlers: one per event it consumes, each driving one reply forward.

``ReplyGenerated`` records the reply (split into parts) and sends part 1; an
``OutboundMessageRequested`` (a notice, an operator's message or a template the conversation
asks for) is recorded and sent the same way, in its own tree. A ``DeliveryStatusReported``
applies the status to its part and, once the part is ``sent``, sends the next; a
``PartTimeoutDue`` sends the next part when its callback is late (or, for part 0, looks again
at a reply that waits: ``waits.py``). What to do next is ``state.next_action``; before each
part, what must hold is ``checks.py`` (the message before it, the conversation's lease and
view); the call itself is ``calls.py`` (attempt recorded before it, outcome after it:
docs/adr/0008); outcomes are ``outcomes.py``. A reply the agent handed to a person
(``handoff_reason``) is never sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from switchboard_contracts import Envelope, Event
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import OUTBOUND_KINDS, OutboundMessageRequested
from switchboard_contracts.events.gateway import DeliveryStatusReported
from switchboard_contracts.events.sender import (
    DeliveryStatusApplied,
    OutboundReplyAccepted,
    PartTimeoutDue,
)
from switchboard_runtime.bus import PermanentError, current_delivery
from switchboard_runtime.eventsourcing import ConcurrencyConflict
from switchboard_runtime.telemetry import get_logger
from switchboard_tenants import TenantDirectory

from . import metrics
from .calls import Calls
from .checks import BeforePart
from .claims import Claims
from .leases import Leases
from .outcomes import Outcomes
from .ratelimit import SenderPacer
from .rules import status_applies
from .settings import SenderSettings
from .splitting import split_message
from .state import Done, FailRest, InFlight, ReplyState, Send, Wait, next_action
from .store import MAX_CONFLICTS, Decision, ReplyStore
from .twilio_api import Credentials, MessagesApi
from .view_watch import ViewWatch
from .waits import Waits

log = get_logger(__name__)


class NotRecordedYet(Exception):
    """A status callback for a MessageSid whose send is not recorded yet: try again soon."""


def _now() -> datetime:
    return datetime.now(UTC)


class Sender:
    def __init__(
        self, settings: SenderSettings, store: ReplyStore, directory: TenantDirectory,
        api: MessagesApi, pacer: SenderPacer, views: ViewWatch, leases: Leases,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._settings = settings
        self._store = store
        self._directory = directory
        self._clock = clock
        self._part_timeout = timedelta(seconds=settings.part_timeout_s)
        self._guard = timedelta(seconds=settings.in_flight_guard_s)
        self._outcomes = Outcomes(store, self._part_timeout)
        claims = Claims(leases, store, clock, timedelta(seconds=settings.reply_lease_s),
                        self._part_timeout)
        waits = Waits(store, clock, timedelta(seconds=settings.reply_wait_poll_s))
        self._checks = BeforePart(settings, store, views, claims, waits, self._outcomes, clock)
        self._calls = Calls(settings, store, api, pacer, claims, self._outcomes, clock)

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
            # In hand after the append: the stored state (or, if another delivery recorded
            # it first, the state read again after the conflict).
            recorded = (env.caused(acceptance), acceptance)
            if await self._store.decide(state, lambda s: None if s.accepted else recorded):
                metrics.PARTS_PER_REPLY.observe(len(acceptance.texts))
            if not acceptance.texts:
                await self._outcomes.failed(state, env, 1, "empty_reply", None)
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

        def decide(current: ReplyState) -> Decision | None:
            """The status, unless its part is unknown or has one that ranks as high."""
            part = current.by_sid(data.message_sid)
            if part is None or current.accepted is None:
                return None
            if not status_applies(part.status, data.status):
                return None
            applied = DeliveryStatusApplied(
                message_sid=data.message_sid, status=data.status, error_code=data.error_code,
                part=part.number, previous_status=part.status,
            )
            return current.accepted.caused(applied, causation_id=env.event_id), applied

        appended = await self._store.decide(state, decide)
        if state.by_sid(data.message_sid) is None or state.accepted is None:
            self._unknown(env, data.status)
            return
        metrics.STATUSES.labels(data.status, "applied" if appended else "not_applied").inc()
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
        # Not ``decide_and_append``: an action is not an event to append but effects around
        # appends (a lease claim, the Twilio call between the attempt and its outcome, a
        # timer), taken once; only a conflict on the attempt (before any call) decides again.
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
                    await self._outcomes.failed(state, cause, action.part, action.reason,
                                                action.error_code)
                    return
                assert isinstance(action, Send)
                await self._send(state, cause, action.part, action.recover)
                return
            except ConcurrencyConflict:
                state = await self._store.load(state.reply_id, at_least=state.version + 1)
        raise RuntimeError("too many concurrent writers on one reply")

    async def _send(self, state: ReplyState, cause: Envelope, number: int, recover: bool
                    ) -> None:
        credentials = self._credentials(state)
        if credentials is None:
            log.error("no credentials for the tenant; cannot send")
            await self._outcomes.failed(state, cause, number, "unknown_tenant", None)
            return
        # An earlier attempt may have created the message: ask Twilio before calling again.
        attempts = state.part(number).attempts
        if recover and attempts and await self._calls.found(
                state, cause, credentials, number, attempts[-1].at):
            return
        revision = await self._checks.clear(state, cause, number)
        if revision is not None:
            await self._calls.send(state, cause, credentials, number, revision)

    def _credentials(self, state: ReplyState) -> Credentials | None:
        assert state.accepted is not None
        route = self._directory.credentials(state.accepted.tenant_id or "")
        if route is None or route.account_sid != state.account_sid:
            return None
        return Credentials(route.account_sid, route.auth_token)
