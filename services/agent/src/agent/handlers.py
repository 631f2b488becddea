"""The handler of ``ReplyRequested``: answer the turn, or send the fallback text.

For each request:

1. Skip it (ack, no LLM call) when the conversation's public view
   (``switchboard_contracts.conversation_view``, read from its KV bucket through the
   ``view_of`` port) says the turn is stale (superseded, or a later turn exists and this one
   was not answered, or a later turn was answered), the turn was already answered
   (``reply_accepted``: the conversation accepted its reply), the bot does not answer (a
   person was asked for, mode waiting, or answers, mode human: ``bot_answers``), or the
   user opted out. A missing view (the conversation
   service has not written it yet) does not drop the request: the request carries all the
   agent needs (addresses, history), so it is answered, and the sender checks the view again
   before anything goes out.
2. If the request carries ``fallback_reason`` (a voice note that could not be transcribed),
   answer with the localized fallback text, without the LLM.
3. Otherwise ask the LLM with the tenant's prompt, model, language and endpoint (and key,
   ``credentials.py``) and the recent history within the token budget (``context.py``),
   offering its tools (``tools.py``, within ``AGENT_MAX_TOOL_ROUNDS``, ``tool_rounds.py``)
   and retrying transient failures (``retry.py``). A ``handoff`` call ends the turn with a
   ``ReplyGenerated`` whose ``handoff_reason`` is set: the sender never sends it, the
   conversation hands off. When the LLM gives up, or keeps calling tools past the limit,
   publish ``ReplyFailed`` and then a ``ReplyGenerated`` with ``fallback=True`` and the
   localized "try again later" text, so the user always gets an answer.

No double replies: the events of a turn have ``Nats-Msg-Id``s and event ids derived from
(conversation, turn, type), so a redelivered request's reply is dropped by the AGENT stream's
duplicate window; a duplicate that arrives while the first is being answered waits for it,
and one that arrives after it (in this process) is skipped (``RecentKeys``).

A request redelivered to another replica after the duplicate window (2 min) is skipped as
"answered" once the conversation has accepted that turn's reply (``view.answered_turn``);
until then (the reply is on its way) it may call the LLM a second time. Nothing goes out
twice: the new ``ReplyGenerated`` has the same event id as the first, which is the sender's
reply id, and the sender sends each reply id at most once (docs/adr/0008); the conversation
service ignores a second reply for an ended turn.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from switchboard_contracts import Envelope, Event, EventData
from switchboard_contracts.conversation_view import ConversationView
from switchboard_contracts.events.agent import ReplyFailed, ReplyGenerated, TokenUsage
from switchboard_contracts.events.conversation import ReplyRequested
from switchboard_contracts.topology import event_subject
from switchboard_runtime.bus import PermanentError, Publisher
from switchboard_runtime.eventsourcing import event_id_for
from switchboard_runtime.ports import NeedsPorts
from switchboard_runtime.recent import RecentKeys
from switchboard_runtime.telemetry import get_logger
from switchboard_tenants import TenantRecord

from .context import build_messages, system_prompt
from .credentials import endpoint_for
from .fallbacks import text_for_reason, unavailable_text
from .llm import ChatModel, ChatRequest, Endpoint
from .metrics import FALLBACKS, LLM_REJECTED, SKIPPED, VIEW_MISSING
from .retry import LLMGaveUp, RetryPolicy
from .settings import AgentSettings
from .tool_rounds import ToolRoundsExceeded, answer_with_tools
from .tools import HANDOFF, Toolbox

log = get_logger(__name__)

# Event ids of the agent's events are UUIDv5 of this namespace and the Nats-Msg-Id.
EVENT_ID_NAMESPACE = uuid.UUID("5b1f3c1e-2f4a-4d0e-9a59-7a0c1e6d2b10")


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """The agent settings that apply to one tenant."""

    model: str
    system_prompt: str
    language: str
    endpoint: Endpoint | None  # None: the development responder


def profile_for(tenant: TenantRecord | None, llm_api_key: str | None, settings: AgentSettings
                ) -> AgentProfile:
    """``llm_api_key``: the tenant's own key, decrypted, if it has one."""
    if tenant is None:
        return AgentProfile(settings.llm_model, settings.llm_system_prompt,
                            settings.llm_language, endpoint_for(None, None, settings))
    return AgentProfile(tenant.model, tenant.system_prompt, tenant.language,
                        endpoint_for(tenant.llm_base_url, llm_api_key, settings))


def skip_reason(view: ConversationView | None, turn: int) -> str | None:
    """Why this turn must not be answered now, or None (no view yet: answer)."""
    if view is None:
        return None
    if view.reply_is_stale(turn):
        return "stale"
    if view.reply_accepted(turn):
        return "answered"
    if not view.bot_answers:  # a person was asked for, or answers
        return f"{view.mode.value}_mode"
    if view.opted_out:
        return "opted_out"
    return None


def msg_id(conversation_id: str, turn: int, event_type: str) -> str:
    return f"agent:{conversation_id}:{turn}:{event_type}"


@dataclass(frozen=True, slots=True)
class Ports:
    """What the handler reaches outside itself, connected at start-up."""

    view_of: Callable[[str], Awaitable[ConversationView | None]]
    tenant: Callable[[str], TenantRecord | None]
    llm_api_key: Callable[[str], str | None]  # a tenant's own key, decrypted
    publisher: Publisher


class ReplyHandler(NeedsPorts[Ports]):
    def __init__(self, settings: AgentSettings, chat: ChatModel) -> None:
        self._settings = settings
        self._chat = chat
        self._policy = RetryPolicy(
            max_attempts=settings.llm_max_attempts,
            backoff_base_s=settings.llm_backoff_base_s,
            backoff_max_s=settings.llm_backoff_max_s,
            retry_after_max_s=settings.llm_retry_after_max_s,
        )
        self._tools = Toolbox([HANDOFF])
        self._in_flight: dict[tuple[str, int], asyncio.Future[None]] = {}
        self._answered: RecentKeys[tuple[str, int]] = RecentKeys()

    async def handle(self, event: Event[ReplyRequested]) -> None:
        conversation_id = event.envelope.conversation_id
        if not conversation_id:
            raise PermanentError("ReplyRequested without a conversation_id")
        key = (conversation_id, event.data.turn)
        if key in self._answered:
            SKIPPED.labels("duplicate").inc()
            log.info("reply already sent for this turn", turn=key[1])
            return
        running = self._in_flight.get(key)
        if running is not None:  # the same turn is being answered: wait for that answer
            SKIPPED.labels("duplicate").inc()
            await asyncio.shield(running)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        self._in_flight[key] = done
        try:
            await self._answer(event, conversation_id)
        except BaseException as exc:
            # A waiting duplicate fails too, so it is retried rather than acked unanswered.
            done.set_exception(exc if isinstance(exc, Exception)
                               else RuntimeError("the first delivery was interrupted"))
            raise
        else:
            done.set_result(None)
            self._answered.add(key)
        finally:
            del self._in_flight[key]

    async def _answer(self, event: Event[ReplyRequested], conversation_id: str) -> None:
        env, request = event.envelope, event.data
        view = await self.ports.view_of(conversation_id)
        if view is None:
            VIEW_MISSING.inc()
            log.info("no conversation view yet; answering from the request", turn=request.turn)
        reason = skip_reason(view, request.turn)
        if reason is not None:
            SKIPPED.labels(reason).inc()
            log.info("reply not needed", reason=reason, turn=request.turn,
                     conversation_turn=view.turn if view else None)
            return
        tenant_id = env.tenant_id or "unknown"
        tenant = self.ports.tenant(env.tenant_id) if env.tenant_id else None
        if tenant is None:
            log.warning("tenant not in the directory; using the default agent settings")
        own_key = self.ports.llm_api_key(tenant.tenant_id) if tenant else None
        profile = profile_for(tenant, own_key, self._settings)
        events = await self._reply(env, request, profile, tenant_id)
        for data in events:
            await self._publish(env, conversation_id, request.turn, data)

    async def _reply(self, env: Envelope, request: ReplyRequested, profile: AgentProfile,
                     tenant_id: str) -> list[EventData]:
        if request.fallback_reason:
            FALLBACKS.labels(tenant_id, request.fallback_reason).inc()
            log.info("fallback without the LLM", reason=request.fallback_reason,
                     turn=request.turn)
            return [self._generated(request, text_for_reason(request.fallback_reason,
                                                             profile.language),
                                    model="none", fallback_reason=request.fallback_reason)]
        chat_request = ChatRequest(
            model=profile.model,
            messages=build_messages(system_prompt(profile.system_prompt, profile.language),
                                    request.context, self._settings.llm_context_tokens),
            timeout_s=self._settings.llm_timeout_s,
            endpoint=profile.endpoint,
            max_tokens=self._settings.llm_max_reply_tokens,
        )
        started = time.perf_counter()
        try:
            answer = await answer_with_tools(
                self._chat, chat_request, self._tools, policy=self._policy,
                max_rounds=self._settings.agent_max_tool_rounds, tenant=tenant_id)
        except (LLMGaveUp, ToolRoundsExceeded) as failure:
            return self._failed(request, profile, tenant_id, failure,
                                latency_ms=(time.perf_counter() - started) * 1000)
        latency_ms = (time.perf_counter() - started) * 1000
        log.info("handoff requested by the LLM" if answer.handoff_reason else "reply generated",
                 turn=request.turn, model=answer.model, attempts=answer.attempts,
                 prompt_tokens=answer.prompt_tokens,
                 completion_tokens=answer.completion_tokens, latency_ms=round(latency_ms))
        return [self._generated(
            request, answer.text, model=answer.model, latency_ms=latency_ms,
            handoff_reason=answer.handoff_reason,
            usage=TokenUsage(prompt_tokens=answer.prompt_tokens,
                             completion_tokens=answer.completion_tokens))]

    def _failed(self, request: ReplyRequested, profile: AgentProfile, tenant_id: str,
                failure: LLMGaveUp | ToolRoundsExceeded, latency_ms: float) -> list[EventData]:
        """ReplyFailed, then the fallback text: the user always gets an answer."""
        permanent = isinstance(failure, LLMGaveUp) and failure.permanent
        if isinstance(failure, ToolRoundsExceeded):
            why = failure.reason
            log.error("LLM kept calling tools past AGENT_MAX_TOOL_ROUNDS; sending the "
                      "fallback text", attempts=failure.attempts, model=profile.model,
                      turn=request.turn)
        elif permanent:
            why = "llm_rejected"
            LLM_REJECTED.labels(tenant_id, profile.model, failure.reason).inc()
            log.error("LLM endpoint refused the request: check the API key, model and "
                      "base URL of this tenant; sending the fallback text",
                      reason=failure.reason, model=profile.model, turn=request.turn)
        else:
            why = "llm_failed"
            log.error("LLM failed after retries; sending the fallback text",
                      reason=failure.reason, attempts=failure.attempts,
                      model=profile.model, turn=request.turn)
        FALLBACKS.labels(tenant_id, why).inc()
        return [
            ReplyFailed(turn=request.turn, reason=failure.reason, attempts=failure.attempts,
                        permanent=permanent, model=profile.model),
            self._generated(request, unavailable_text(profile.language),
                            model=profile.model, fallback_reason=why, latency_ms=latency_ms),
        ]

    @staticmethod
    def _generated(request: ReplyRequested, text: str, *, model: str,
                   fallback_reason: str | None = None, latency_ms: float = 0.0,
                   usage: TokenUsage | None = None,
                   handoff_reason: str | None = None) -> ReplyGenerated:
        return ReplyGenerated(
            turn=request.turn, text=text, model=model, fallback=fallback_reason is not None,
            usage=usage or TokenUsage(), latency_ms=round(latency_ms, 1),
            user_address=request.user_address, business_address=request.business_address,
            account_sid=request.account_sid, fallback_reason=fallback_reason,
            turn_started_at=request.turn_started_at,  # the sender's SLO clock (ADR 0019)
            handoff_reason=handoff_reason,  # set: never sent, the conversation hands off
            after=request.after,  # the sender sends it after that outbound message
        )

    async def _publish(self, cause: Envelope, conversation_id: str, turn: int,
                       data: EventData) -> None:
        identity = msg_id(conversation_id, turn, data.TYPE)
        envelope = cause.caused(data, event_id=event_id_for(EVENT_ID_NAMESPACE, identity))
        ack = await self.ports.publisher.publish(
            event_subject("agent", data.TYPE), envelope, msg_id=identity)
        if ack.duplicate:
            log.info("reply was already stored (duplicate)", event_type=data.TYPE, turn=turn)
