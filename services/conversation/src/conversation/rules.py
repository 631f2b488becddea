"""The conversation's rules, as plain functions over its folded state.

Each ``decide_*`` looks at the state and the fact being handled and returns the one next
event (a ``Step``), or None when there is nothing (more) to do. The handler folds each step
into a scratch copy and asks again, then appends all the steps of the fact in one atomic
batch with the version check (a first message: ConversationStarted, UserMessageAppended and
ReplyRequested in one append). Because a step depends only on the state, a fact handled twice,
or a handler that crashed half-way and is redelivered, simply finishes what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from switchboard_contracts import EventData
from switchboard_contracts.conversation_view import Mode
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import (
    AssistantMessageAppended,
    ContextMessage,
    ConversationClosed,
    ConversationStarted,
    HandoffDeadlineDue,
    HandoffExpired,
    HandoffReleased,
    HandoffRequested,
    IdleCheckDue,
    OutboundMessageRequested,
    ReplyRequested,
    ReplySuperseded,
    TranscriptAppended,
    TranscriptDeadlineDue,
    TranscriptionRequested,
    TurnDeadlineDue,
    UserMessageAppended,
    UserOptedIn,
    UserOptedOut,
)
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.events.transcription import TranscriptionCompleted, TranscriptionFailed

from .keywords import Intent
from .notices import notice_text
from .policy import TenantPolicy
from .state import TURN_DEADLINE, ConversationState

TRANSCRIPTION_FAILED = "transcription_failed"  # ReplyRequested.fallback_reason
TRANSCRIPTION_DEADLINE = "transcription_deadline"  # TranscriptAppended.reason


@dataclass(frozen=True, slots=True)
class Step:
    """One event to append. ``key`` names the fact within the conversation (it becomes the
    event id and the ``Nats-Msg-Id``); ``correlation_id`` overrides the cause's."""

    data: EventData
    key: str
    correlation_id: str | None = None


# -- inbound messages --------------------------------------------------------------------------
def decide_inbound(
    state: ConversationState,
    msg: InboundMessageReceived,
    received_at: datetime,
    *,
    policy: TenantPolicy,
    context_size: int,
) -> Step | None:
    sid = msg.message_sid
    if sid not in state.message_sids:  # idempotent on MessageSid, whatever the event id
        if not state.open:
            session = state.session + 1
            return Step(ConversationStarted(
                user_address=msg.from_address, business_address=msg.to_address,
                account_sid=msg.account_sid, session=session,
            ), f"ConversationStarted:{session}")
        return Step(UserMessageAppended(
            message_sid=sid, text=msg.body, media=msg.media, message_type=msg.message_type,
            received_at=received_at, turn=state.turn + 1,
        ), f"UserMessageAppended:{sid}")
    if state.just_appended_sid == sid:
        keyword = decide_keyword(state, msg.body, sid, policy, received_at)
        if keyword is not None:
            return keyword
    if state.open and sid in state.awaiting_transcript and sid not in state.transcription_requested:
        audio = next(m for m in msg.media if m.content_type.lower().startswith("audio/"))
        return Step(TranscriptionRequested(
            message_sid=sid, media_url=audio.url, content_type=audio.content_type,
            account_sid=msg.account_sid, language_hint=policy.language,
        ), f"TranscriptionRequested:{sid}")
    return follow_up(state, policy, context_size)


def decide_keyword(state: ConversationState, text: str, sid: str, policy: TenantPolicy,
                   now: datetime) -> Step | None:
    """The message just appended is a keyword (the whole message, ADR 0022): opt out, opt
    back in, or ask for a person. Otherwise (or already in that state) it is a message."""
    intent = policy.keywords.intent(text)
    keyword = text.strip()
    if intent is Intent.OPT_OUT and not state.opted_out:
        return Step(UserOptedOut(message_sid=sid, keyword=keyword), f"UserOptedOut:{sid}")
    if intent is Intent.OPT_IN and state.opted_out:
        return Step(UserOptedIn(message_sid=sid, keyword=keyword), f"UserOptedIn:{sid}")
    if intent is Intent.HANDOFF and state.mode is Mode.BOT and not state.opted_out:
        return _handoff(state, "user", keyword, policy, now, f"HandoffRequested:{sid}")
    return None


def _handoff(state: ConversationState, source: str, reason: str | None, policy: TenantPolicy,
             now: datetime, key: str) -> Step:
    deadline = policy.handoff_deadline
    return Step(HandoffRequested(
        source=source, reason=reason, turn=state.turn,
        deadline_at=now + deadline if deadline is not None else None,
    ), key)


# -- transcripts -------------------------------------------------------------------------------
def decide_transcript(
    state: ConversationState,
    result: TranscriptionCompleted | TranscriptionFailed,
    *,
    policy: TenantPolicy,
    context_size: int,
) -> Step | None:
    sid = result.message_sid
    if state.open and sid in state.awaiting_transcript:
        if isinstance(result, TranscriptionCompleted):
            data = TranscriptAppended(message_sid=sid, text=result.text, language=result.language)
        else:
            data = TranscriptAppended(message_sid=sid, text="", failed=True, reason=result.reason)
        return Step(data, f"TranscriptAppended:{sid}")
    return follow_up(state, policy, context_size)


# -- the agent's replies -----------------------------------------------------------------------
def reply_awaited(state: ConversationState, turn: int) -> bool:
    """The reply to ``turn`` is the one the conversation waits for (not old, not done)."""
    return (state.open and state.reply_in_flight and turn == state.turn
            and turn not in state.answered_turns and turn not in state.superseded_turns)


def decide_reply(
    state: ConversationState, reply: ReplyGenerated, reply_event_id: str, *,
    policy: TenantPolicy, now: datetime, context_size: int,
) -> Step | None:
    turn = reply.turn
    if reply_awaited(state, turn):
        if reply.handoff_reason is not None:  # the LLM called its handoff tool: no answer
            return _handoff(state, "agent", reply.handoff_reason, policy, now,
                            f"HandoffRequested:agent:{turn}")
        if state.waiting_message_sids:  # the user said more meanwhile: answer it all next turn
            return Step(ReplySuperseded(turn=turn, next_turn=turn + 1), f"ReplySuperseded:{turn}")
        return Step(AssistantMessageAppended(
            turn=turn, text=reply.text, fallback=reply.fallback, reply_event_id=reply_event_id,
        ), f"AssistantMessageAppended:{turn}")
    return follow_up(state, policy, context_size)


# -- deadlines (ADR 0016) ----------------------------------------------------------------------
def turn_deadline_at(state: ConversationState, deadline: timedelta) -> datetime | None:
    """When the reply in flight is overdue (None: no reply in flight)."""
    if not (state.open and state.reply_in_flight) or state.turn_requested_at is None:
        return None
    return state.turn_requested_at + deadline


def decide_turn_deadline(
    state: ConversationState, due: TurnDeadlineDue, *, context_size: int
) -> Step | None:
    """The turn's reply never came (its request or its outcome was lost or dead-lettered).

    Ask for the fallback through the agent's path without the LLM: a new turn with
    ``fallback_reason="turn_deadline"`` for the same messages (the late reply, if it ever
    comes, is then stale everywhere). If that fallback turn is overdue too, nothing answers
    at all: it is superseded, so the messages that wait behind it get their turn. If user
    messages wait already, the overdue turn is superseded at once and the next turn answers
    everything (no fallback text first)."""
    turn = due.turn
    if not reply_awaited(state, turn):
        return next_request(state, context_size)
    if state.turn_is_deadline_fallback or state.waiting_message_sids:
        # Messages wait: the next turn answers them all, as after a late reply (ADR 0006).
        return Step(ReplySuperseded(turn=turn, next_turn=turn + 1), f"ReplySuperseded:{turn}")
    return _request(state, turn + 1, state.turn_message_sids, TURN_DEADLINE, context_size)


def decide_transcript_deadline(
    state: ConversationState, due: TranscriptDeadlineDue, *, context_size: int
) -> Step | None:
    """The voice note's transcript never came: it counts as not transcribed."""
    sid = due.message_sid
    if state.open and sid in state.awaiting_transcript:
        return Step(TranscriptAppended(message_sid=sid, text="", failed=True,
                                       reason=TRANSCRIPTION_DEADLINE), f"TranscriptAppended:{sid}")
    return next_request(state, context_size)


# -- handoff deadline --------------------------------------------------------------------------
def decide_handoff_deadline(
    state: ConversationState, due: HandoffDeadlineDue, *, policy: TenantPolicy, now: datetime,
    context_size: int,
) -> Step | None:
    """Nobody claimed the handoff in time: tell the user, and go back to the bot if the
    tenant chose so (``handoff_unclaimed``), else keep waiting for an operator."""
    version = due.requested_version
    unclaimed = (state.mode is Mode.WAITING and state.handoff_requested_version == version
                 and state.notice_due is None)
    if unclaimed and state.handoff_outcome is None:
        if state.handoff_deadline_at is not None and now < state.handoff_deadline_at:
            return None  # early (the timer is set again for its due time)
        return Step(HandoffExpired(outcome=policy.handoff_unclaimed), f"HandoffExpired:{version}")
    if unclaimed and state.handoff_outcome == "bot":
        return Step(HandoffReleased(reason="unclaimed"), f"HandoffReleased:unclaimed:{version}")
    return follow_up(state, policy, context_size)


def handoff_deadline_at(state: ConversationState) -> datetime | None:
    """When the pending handoff expires (None: none pending, or it expired already)."""
    if state.mode is not Mode.WAITING or state.handoff_outcome is not None:
        return None
    return state.handoff_deadline_at


# -- the next step -----------------------------------------------------------------------------
def follow_up(state: ConversationState, policy: TenantPolicy, context_size: int) -> Step | None:
    """After a fact's own steps: the notice it owes the user, else the next turn."""
    if state.notice_due is not None:
        purpose, cause_id = state.notice_due
        return outbound(state, f"OutboundMessageRequested:{cause_id}", kind="notice",
                        purpose=purpose, text=notice_text(purpose, policy.language))
    return next_request(state, context_size)


def outbound(state: ConversationState, key: str, **what: Any) -> Step:
    """A message the conversation asks the sender for, after the conversation's last one,
    to the conversation's user from its business number."""
    return Step(OutboundMessageRequested(
        turn=state.turn, after=state.last_outbound_id, user_address=state.user_address or "",
        business_address=state.business_address or "", account_sid=state.account_sid or "",
        **what,
    ), key)


def next_request(state: ConversationState, context_size: int) -> Step | None:
    """Ask for a reply when messages wait, none is in flight and every voice note among them
    has its transcript (or failed to get one). (No message waits while a person is asked
    for or answering, or from a user who opted out: ``state.py``.)"""
    waiting = list(state.waiting_message_sids)
    if not (state.open and waiting) or state.reply_in_flight:
        return None
    if any(sid in state.awaiting_transcript for sid in waiting):
        return None
    nothing_to_answer = all(sid in state.failed_transcripts for sid in waiting)
    return _request(state, state.turn + 1, waiting,
                    TRANSCRIPTION_FAILED if nothing_to_answer else None, context_size)


def _request(state: ConversationState, turn: int, message_sids: list[str],
             fallback_reason: str | None, context_size: int) -> Step:
    return Step(ReplyRequested(
        turn=turn,
        message_sids=message_sids,
        context=[ContextMessage(role=role, content=text, at=at)
                 for role, text, at in state.history[-context_size:]],
        user_address=state.user_address or "",
        business_address=state.business_address or "",
        account_sid=state.account_sid or "",
        fallback_reason=fallback_reason,
        turn_started_at=turn_started_at(state, message_sids),
        after=state.last_outbound_id,  # the sender sends the reply after it (ADR 0014)
    ), f"ReplyRequested:{turn}",
        correlation_id=state.message_correlation.get(message_sids[0]) if message_sids else None)


def turn_started_at(state: ConversationState, message_sids: list[str]) -> datetime | None:
    """When the gateway accepted the earliest of the turn's messages: the start of the
    "webhook to reply" SLO (ADR 0019). None if none is known."""
    known = [state.message_received_at[sid] for sid in message_sids
             if sid in state.message_received_at]
    return min(known, default=None)


# -- idle close --------------------------------------------------------------------------------
def idle_due_at(state: ConversationState, idle_close: timedelta) -> datetime | None:
    """When the open conversation goes idle if nothing happens before."""
    if not state.open or state.last_activity_at is None:
        return None
    return state.last_activity_at + idle_close


def decide_idle(
    state: ConversationState, check: IdleCheckDue, now: datetime, idle_close: timedelta
) -> Step | None:
    """Close only if nothing happened since the activity the timer was set for, and the idle
    time has really passed (otherwise the handler sets the timer again)."""
    due = idle_due_at(state, idle_close)
    if due is None or state.last_activity_at is None:
        return None
    if state.last_activity_at > check.last_activity_at or now < due:
        return None
    if state.mode is not Mode.BOT:  # the next session starts with the bot
        return Step(HandoffReleased(reason="closed"), f"HandoffReleased:closed:{state.session}")
    return Step(ConversationClosed(reason="idle", session=state.session),
                f"ConversationClosed:{state.session}")
