"""Realistic event sequences, for the projection's tests and its benchmark (test code, not
shipped in the service): a conversation's events exactly as the services write them
(envelopes, subjects, causation, correlation, ids), from the inbound webhook to the last
delivery status, ready to publish to the real streams.

    talk = ConversationScript("clinic", "whatsapp:+447700900001", start=now)
    sid = talk.text_message("Hello", reply="Hi! How can I help?")
    await publish(js, talk.events)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from switchboard_contracts import Envelope, EventData
from switchboard_contracts.events.agent import ReplyGenerated, TokenUsage
from switchboard_contracts.events.conversation import (
    AssistantMessageAppended,
    ContextMessage,
    ConversationClosed,
    ConversationStarted,
    HandoffClaimed,
    HandoffExpired,
    HandoffReleased,
    HandoffRequested,
    IdleCheckDue,
    OutboundMessageRequested,
    ReplyRequested,
    TranscriptAppended,
    TranscriptionRequested,
    UserMessageAppended,
    UserOptedIn,
    UserOptedOut,
)
from switchboard_contracts.events.gateway import (
    DeliveryStatusReported,
    InboundMessageReceived,
    Media,
    OrphanedMessageReceived,
)
from switchboard_contracts.events.sender import (
    DeliveryStatusApplied,
    OutboundMessageSent,
    OutboundPartAttempted,
    OutboundReplyAccepted,
)
from switchboard_contracts.events.transcription import TranscriptionCompleted
from switchboard_contracts.topology import (
    AGENT,
    CONVERSATION,
    GATEWAY,
    SENDER,
    TRANSCRIPTION,
    StreamSpec,
    conversation_id_for,
    event_subject,
)

NAMESPACE = uuid.UUID("0b9f6c1e-3a52-4c55-8d1e-7d3a2f6e9b10")
ACCOUNT = "AC" + "d" * 32
BUSINESS = "whatsapp:+14155550100"
STEP = timedelta(milliseconds=40)  # between two events of a script


@dataclass(frozen=True, slots=True)
class Published:
    """An event and where its producer stores it."""

    stream: str
    subject: str
    envelope: Envelope
    headers: dict[str, str] = field(default_factory=dict)

    async def publish(self, js: JetStreamContext, msg_id: str | None = None) -> None:
        headers = {"Nats-Msg-Id": msg_id or str(self.envelope.event_id), **self.headers}
        await js.publish(self.subject, self.envelope.to_bytes(), stream=self.stream,
                         headers=headers, timeout=10.0)


class ConversationScript:
    """One user's conversation with a tenant, turn by turn; ``events`` in production order."""

    def __init__(self, tenant_id: str, user_address: str, *, start: datetime,
                 business_address: str = BUSINESS, account_sid: str = ACCOUNT) -> None:
        self.tenant_id = tenant_id
        self.user_address = user_address
        self.business_address = business_address
        self.account_sid = account_sid
        self.conversation_id = conversation_id_for(tenant_id, user_address)
        self.events: list[Published] = []
        self._at = start
        self._turn = 0
        self._session = 0
        self._open = False
        self._history: list[ContextMessage] = []

    # -- turns -------------------------------------------------------------------------------
    def text_message(self, body: str, *, reply: str, parts: int = 1,
                     statuses: Sequence[str] = ("sent", "delivered", "read")) -> str:
        """A text message and its reply in ``parts`` parts, each reaching ``statuses``."""
        sid, inbound, appended = self._user_message(body, [])
        self._history.append(ContextMessage(role="user", content=body, at=inbound.occurred_at))
        self._answer(sid, appended, reply, parts, statuses)
        return sid

    def voice_note(self, transcript: str, *, reply: str, language: str = "en",
                   statuses: Sequence[str] = ("sent", "delivered")) -> str:
        """A voice note, its transcription, and a reply in one part."""
        audio = Media(url=f"https://api.twilio.com/media/{uuid.uuid4().hex}",
                      content_type="audio/ogg")
        sid, inbound, appended = self._user_message("", [audio])
        requested = self._emit(CONVERSATION, TranscriptionRequested(
            message_sid=sid, media_url=audio.url, content_type=audio.content_type,
            account_sid=self.account_sid, language_hint=language), appended)
        done = self._emit(TRANSCRIPTION, TranscriptionCompleted(
            message_sid=sid, text=transcript, language=language, audio_duration_s=3.2,
            processing_s=0.4, model="whisper-base"), requested)
        self._emit(CONVERSATION, TranscriptAppended(
            message_sid=sid, text=transcript, language=language), done)
        self._history.append(ContextMessage(role="user", content=transcript,
                                            at=inbound.occurred_at))
        self._answer(sid, done, reply, 1, statuses)
        return sid

    def close_idle(self) -> None:
        """The idle timer fires and the conversation closes its session."""
        last = self.events[-1].envelope
        fired = self._emit(CONVERSATION, IdleCheckDue(last_activity_at=last.occurred_at), last)
        self._emit(CONVERSATION, ConversationClosed(reason="idle", session=self._session), fired)
        self._open = False

    # -- people in the loop (ADR 0022) -------------------------------------------------------
    def ask_for_person(self, body: str = "human") -> str:
        """The user writes a handoff keyword: the conversation waits for a person and tells
        the user so (a notice, sent)."""
        sid, _, appended = self._user_message(body, [])
        self.handoff("user", reason=body.lower(), cause=appended)
        self.outbound("notice", "handoff_requested", text="A person will answer you shortly.")
        return sid

    def handoff(self, source: str, *, reason: str | None = None,
                operator_id: str | None = None, cause: Envelope | None = None) -> None:
        self._emit(CONVERSATION, HandoffRequested(
            source=source, reason=reason, operator_id=operator_id, turn=self._turn),
            cause or self.events[-1].envelope)

    def take_over(self, operator_id: str) -> None:
        """An operator takes the conversation from the bot: requested, then claimed."""
        self.handoff("operator", operator_id=operator_id)
        self.claim(operator_id)

    def close(self) -> None:
        """An operator closes the conversation: its handoff released first, as the
        conversation does."""
        self.release("closed")
        self._emit(CONVERSATION, ConversationClosed(reason="operator", session=self._session),
                   self.events[-1].envelope)
        self._open = False

    def claim(self, operator_id: str) -> None:
        self._emit(CONVERSATION, HandoffClaimed(operator_id=operator_id),
                   self.events[-1].envelope)

    def release(self, reason: str = "operator", operator_id: str | None = None) -> None:
        self._emit(CONVERSATION, HandoffReleased(reason=reason, operator_id=operator_id),
                   self.events[-1].envelope)

    def expire(self, outcome: str) -> None:
        self._emit(CONVERSATION, HandoffExpired(outcome=outcome), self.events[-1].envelope)
        if outcome == "bot":
            self.release("unclaimed")

    def opt_out(self, body: str = "STOP") -> str:
        sid, _, appended = self._user_message(body, [])
        self._emit(CONVERSATION, UserOptedOut(message_sid=sid, keyword=body.lower()), appended)
        self.outbound("notice", "opted_out", text="You will receive no more messages.")
        return sid

    def opt_in(self, body: str = "START") -> str:
        sid, _, appended = self._user_message(body, [])
        self._emit(CONVERSATION, UserOptedIn(message_sid=sid, keyword=body.lower()), appended)
        return sid

    def outbound(self, kind: str, purpose: str, *, text: str = "",
                 operator_id: str | None = None, template: tuple[str, str] | None = None,
                 variables: dict[str, str] | None = None, media_url: str | None = None,
                 statuses: Sequence[str] = ("sent", "delivered")) -> str:
        """Something the conversation asks the sender for (``template``: its name and
        ContentSid), sent in one part; its id."""
        request = self._emit(CONVERSATION, OutboundMessageRequested(
            kind=kind, purpose=purpose, turn=self._turn, text=text, media_url=media_url,
            template_name=template[0] if template else None,
            content_sid=template[1] if template else None,
            content_variables=variables or {}, operator_id=operator_id,
            user_address=self.user_address, business_address=self.business_address,
            account_sid=self.account_sid), self.events[-1].envelope)
        self._send(request, [text or (template[0] if template else "")], statuses)
        return str(request.event_id)

    def agent_hands_off(self, body: str, *, reason: str) -> str:
        """The LLM calls its handoff tool: its reply is withheld, the conversation waits for
        a person."""
        sid, _, appended = self._user_message(body, [])
        generated = self._generate(sid, appended, "", handoff_reason=reason)
        self.handoff("agent", reason=reason, cause=generated)
        return sid

    # -- steps -------------------------------------------------------------------------------
    def _generate(self, sid: str, cause: Envelope, text: str,
                  handoff_reason: str | None = None) -> Envelope:
        requested = self._emit(CONVERSATION, ReplyRequested(
            turn=self._turn, message_sids=[sid], context=list(self._history),
            user_address=self.user_address, business_address=self.business_address,
            account_sid=self.account_sid), cause)
        self._idle_timer(requested)
        return self._emit(AGENT, ReplyGenerated(
            turn=self._turn, text=text, model="gpt-4o-mini",
            usage=TokenUsage(prompt_tokens=120, completion_tokens=30), latency_ms=850.0,
            user_address=self.user_address, business_address=self.business_address,
            account_sid=self.account_sid, handoff_reason=handoff_reason), requested)

    def _user_message(self, body: str, media: list[Media]
                      ) -> tuple[str, Envelope, Envelope]:
        sid = "SM" + self._id("sid").hex
        inbound = self._emit(GATEWAY, InboundMessageReceived(
            message_sid=sid, account_sid=self.account_sid, from_address=self.user_address,
            to_address=self.business_address, body=body, profile_name="Ada",
            message_type="audio" if media else "text", media=media,
        ), None, correlation_id=sid, conversation=False)
        cause = inbound
        if not self._open:
            self._session += 1
            self._open = True
            self._history = []
            cause = self._emit(CONVERSATION, ConversationStarted(
                user_address=self.user_address, business_address=self.business_address,
                account_sid=self.account_sid, session=self._session), inbound)
        self._turn += 1
        appended = self._emit(CONVERSATION, UserMessageAppended(
            message_sid=sid, text=body, media=media, message_type="audio" if media else "text",
            received_at=inbound.occurred_at, turn=self._turn), cause)
        return sid, inbound, appended

    def _answer(self, sid: str, cause: Envelope, text: str, parts: int,
                statuses: Sequence[str]) -> None:
        generated = self._generate(sid, cause, text)
        self._emit(CONVERSATION, AssistantMessageAppended(
            turn=self._turn, text=text, fallback=False, reply_event_id=str(generated.event_id)),
            generated)
        self._history.append(ContextMessage(role="assistant", content=text,
                                            at=generated.occurred_at))
        self._send(generated, _split(text, parts), statuses)

    def _send(self, reply: Envelope, texts: list[str], statuses: Sequence[str]) -> None:
        reply_id = str(reply.event_id)
        accepted = self._emit(SENDER, OutboundReplyAccepted(
            turn=self._turn, texts=texts, to_address=self.user_address,
            from_address=self.business_address, account_sid=self.account_sid), reply,
            key=reply_id)
        for number, text in enumerate(texts, start=1):
            attempt = self._emit(SENDER, OutboundPartAttempted(
                turn=self._turn, part=number, parts=len(texts), attempt=1,
                attempted_at=self._at), accepted, key=reply_id)
            twilio_sid = "SM" + self._id(f"out:{reply_id}:{number}").hex
            self._emit(SENDER, OutboundMessageSent(
                turn=self._turn, part=number, parts=len(texts), message_sid=twilio_sid,
                text=text, to_address=self.user_address, from_address=self.business_address),
                attempt, key=reply_id)
            for status in statuses:
                error = "30008" if status in ("failed", "undelivered") else None
                callback = self._emit(GATEWAY, DeliveryStatusReported(
                    message_sid=twilio_sid, account_sid=self.account_sid, status=status,
                    error_code=error), None, correlation_id=reply.correlation_id,
                    conversation=False)
                self._emit(SENDER, DeliveryStatusApplied(
                    message_sid=twilio_sid, status=status, error_code=error, part=number),
                    callback, key=reply_id, conversation_id=self.conversation_id)

    def _idle_timer(self, cause: Envelope) -> None:
        """The durable idle timer, as the conversation service schedules it (a day ahead, so
        it does not fire during a test)."""
        check = Envelope.wrap(
            IdleCheckDue(last_activity_at=self._at), event_id=self._id("timer"),
            correlation_id=cause.correlation_id, causation_id=cause.event_id,
            tenant_id=self.tenant_id, conversation_id=self.conversation_id)
        due = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.events.append(Published(
            CONVERSATION.name, f"conversation.timers.{self.conversation_id}", check,
            {"Nats-Schedule": f"@at {due}",
             "Nats-Schedule-Target": f"conversation.{self.conversation_id}.IdleCheckDue"}))

    def _emit(self, stream: StreamSpec, data: EventData, cause: Envelope | None, *,
              correlation_id: str | None = None, conversation: bool = True,
              key: str | None = None, conversation_id: str | None = None) -> Envelope:
        self._at += STEP
        envelope = Envelope.wrap(
            data, event_id=self._id(data.TYPE),
            correlation_id=correlation_id or (cause.correlation_id if cause else ""),
            causation_id=cause.event_id if cause else None, tenant_id=self.tenant_id,
            conversation_id=conversation_id or (self.conversation_id if conversation else None),
        ).model_copy(update={"occurred_at": self._at})
        if stream is CONVERSATION:
            key = self.conversation_id
        self.events.append(Published(stream.name, event_subject(stream.name.lower(), data.TYPE,
                                                                key), envelope))
        return envelope

    def _id(self, what: str) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"{self.conversation_id}:{len(self.events)}:{what}")


def orphaned_message(account_sid: str, to_address: str, at: datetime) -> Published:
    sid = "SM" + uuid.uuid5(NAMESPACE, f"orphan:{to_address}:{at.isoformat()}").hex
    envelope = Envelope.wrap(OrphanedMessageReceived(
        message_sid=sid, account_sid=account_sid, to_address=to_address,
        reason="no tenant owns this number"), correlation_id=sid,
        event_id=uuid.uuid5(NAMESPACE, sid)).model_copy(update={"occurred_at": at})
    return Published(GATEWAY.name, "gateway.OrphanedMessageReceived", envelope)


def _split(text: str, parts: int) -> list[str]:
    words = text.split()
    size = -(-len(words) // parts)
    return [" ".join(words[i:i + size]) for i in range(0, len(words), size)][:parts]


async def publish(js: JetStreamContext, events: Sequence[Published], *,
                  concurrency: int = 1) -> None:
    """Store the events in their streams, in order (or ``concurrency`` at a time)."""
    for start in range(0, len(events), concurrency):
        await asyncio.gather(*(item.publish(js) for item in events[start:start + concurrency]))
