"""What the read API returns (documented in its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; absent on the last page")


class Conversation(BaseModel):
    conversation_id: str
    user_address: str | None = Field(None, description="whatsapp:+E164 of the user")
    business_address: str | None = Field(None, description="the tenant's WhatsApp number")
    status: str = Field(description="open or closed")
    session: int | None = Field(None, description="latest session (a closed one reopens as +1)")
    started_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    last_user_message_at: datetime | None = None
    window_expires_at: datetime | None = Field(
        None, description="end of WhatsApp's 24-hour window after the user's last message")
    window_open: bool
    turns: int | None = None
    user_messages: int
    assistant_messages: int
    created_at: datetime
    updated_at: datetime
    mode: str = Field("bot", description="bot (the bot answers), waiting (for a person, nobody "
                                         "answers), human (an operator answers)")
    operator_id: str | None = Field(None, description="the operator who has it (mode human)")
    waiting_since: datetime | None = Field(
        None, description="when the current handoff was asked for (modes waiting and human)")
    handoff_source: str | None = Field(
        None, description="who asked for the current handoff: user, agent or operator")
    handoff_reason: str | None = Field(
        None, description="the user's keyword or the LLM's reason")
    handoff_expired_at: datetime | None = Field(
        None, description="when a handoff deadline last passed unclaimed")
    opted_out: bool = Field(False, description="the user opted out (STOP): nothing is sent")
    opted_out_at: datetime | None = None


class Media(BaseModel):
    url: str
    content_type: str | None = Field(None, description="absent for an operator's media URL")


class Transcription(BaseModel):
    status: str = Field(description="requested, completed or failed")
    text: str | None = None
    language: str | None = None
    error: str | None = None
    audio_duration_s: float | None = None
    model: str | None = None


class Reply(BaseModel):
    model: str | None = None
    fallback: bool | None = None
    fallback_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    generated_at: datetime | None = None
    handoff_reason: str | None = Field(
        None, description="the LLM handed the turn to a person instead: this reply is not sent")


class StatusReport(BaseModel):
    status: str
    at: datetime
    error_code: str | None = None
    error_message: str | None = None


class Part(BaseModel):
    part: int
    text: str | None = None
    twilio_sid: str | None = None
    status: str = Field(description="furthest of the sender's record and Twilio's callbacks: "
                                    "accepted, attempted, queued, sending, sent, delivered, "
                                    "read, or failed, undelivered, canceled")
    send_status: str | None = Field(None, description="the sender's own record")
    attempts: int | None = None
    failure_reason: str | None = None
    error_code: str | None = None
    retryable: bool | None = None
    accepted_at: datetime | None = None
    first_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    statuses: list[StatusReport] = Field(
        default_factory=list, description="Twilio's status callbacks, oldest first")


class Template(BaseModel):
    name: str | None = None
    content_sid: str | None = Field(None, description="the approved template's ContentSid")
    variables: dict[str, str] = Field(default_factory=dict)


class Message(BaseModel):
    message_id: str = Field(description="the MessageSid (inbound), the reply's event id, or "
                                        "the conversation's request's event id (kinds notice, "
                                        "operator, template)")
    conversation_id: str | None = None
    correlation_id: str | None = None
    direction: str = Field(description="inbound or outbound")
    kind: str = Field(description="user (inbound), reply (the bot's), notice (the "
                                  "conversation's own: handoff, opt-out), operator, template")
    purpose: str | None = Field(None, description="why a notice, operator message or template "
                                                  "was sent: handoff_requested, opted_out, "
                                                  "operator_reply, template ...")
    operator_id: str | None = Field(None, description="the operator who wrote or sent it")
    template: Template | None = None
    turn: int | None = None
    text: str | None = None
    media: list[Media] = Field(default_factory=list)
    message_type: str | None = None
    created_at: datetime
    updated_at: datetime
    delivery_status: str = Field(
        description="received (inbound); outbound: generated (not taken by the sender yet), "
                    "its least advanced part's status, a part's failure, or not_sent (a reply "
                    "withheld: the LLM handed the turn to a person)")
    transcription: Transcription | None = None
    reply: Reply | None = None
    parts_expected: int | None = None
    parts: list[Part] = Field(default_factory=list)


class Hop(BaseModel):
    event_id: str
    type: str
    version: str | None = None
    service: str = Field(description="the service that produced it (or the consumer that "
                                     "dead-lettered it)")
    subject: str | None = None
    conversation_id: str | None = None
    causation_id: str | None = None
    occurred_at: datetime
    since_start_ms: float
    since_previous_ms: float | None = Field(
        None, description="latency since the previous hop (absent on the first)")


class Timeline(Page[Hop]):
    correlation_id: str


class DeadLetter(BaseModel):
    stream: str
    consumer: str
    stream_seq: int
    subject: str | None = None
    deliveries: int | None = None
    reason: str | None = None
    error: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    correlation_id: str | None = None
    dead_lettered_at: datetime


# -- the operator API (ADR 0022) ---------------------------------------------------------------
class Queue(BaseModel):
    items: list[Conversation] = Field(
        description="waiting for a person, oldest first; then those an operator has")


class OperatorConversation(BaseModel):
    conversation: Conversation
    messages: list[Message] = Field(description="the latest messages, oldest first")


class ReplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field("", description="the message (or a caption with media_url)")
    media_url: str | None = Field(None, description="one https:// media URL")


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(description="the template's name (`switchboard-tenants add-template`)")
    variables: dict[str, str] = Field(default_factory=dict,
                                      description='its variables: {"1": "Thursday"}')


class NotifyBody(TemplateBody):
    user_address: str = Field(description="whatsapp:+E164 of the user")
    business_address: str | None = Field(
        None, description="the tenant's number to send from (default: its first)")
