"""Drive the conversation service with real gateway/agent/transcription events; read its stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from conversation.handlers import ConversationHandlers
from conversation.policy import TenantPolicy, policy_of
from conversation.state import ConversationState, fold
from conversation.store import ConversationStore, timer_subject
from conversation.view import ViewWriter
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from switchboard_contracts import Envelope
from switchboard_contracts.commands import Command, CommandResult, command_subject
from switchboard_contracts.conversation_view import VIEW_BUCKET, ConversationView, view_key
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.gateway import InboundMessageReceived, Media
from switchboard_contracts.events.transcription import TranscriptionCompleted, TranscriptionFailed
from switchboard_contracts.topology import (
    AGENT,
    GATEWAY,
    TRANSCRIPTION,
    conversation_id_for,
    inbound_subject,
)
from switchboard_devstack.waiting import drained
from switchboard_runtime.bus import Publisher
from switchboard_runtime.eventsourcing import replay
from switchboard_tenants import TenantRecord, TokenCipher
from switchboard_tenants.models import Template

TENANT = "clinic"
ACCOUNT = "AC" + "a" * 32
NUMBER = "whatsapp:+14155550100"
USER = "whatsapp:+447700900123"
LANGUAGE = "es"
CID = conversation_id_for(TENANT, USER)
GATEWAY_NS = uuid.UUID("0b7c2f64-2b4e-4a4e-9a53-8a3f2f1f0c11")


def sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


TEMPLATE = Template(name="appointment", content_sid="HX" + "b" * 32, language=LANGUAGE,
                    variables=("1",))


def tenant_record(cipher: TokenCipher, **settings: Any) -> TenantRecord:
    now = datetime.now(UTC)
    return TenantRecord(
        tenant_id=TENANT, name="Clinic", account_sid=ACCOUNT,
        auth_token_encrypted=cipher.encrypt("1" * 32), system_prompt="Be brief.", model="m",
        language=LANGUAGE, numbers=(NUMBER,), created_at=now, updated_at=now,
        templates=(TEMPLATE,), **settings,
    )


async def send_inbound(
    js: JetStreamContext, message_sid: str | None = None, text: str = "hello", *,
    media: list[Media] | None = None, user: str = USER, event_id: uuid.UUID | None = None,
    msg_id: str | None = None, received_at: datetime | None = None,
) -> Envelope:
    """As the gateway stores it: event id from the MessageSid, correlation = MessageSid
    (``received_at``: when the gateway took it, now by default)."""
    message_sid = message_sid or sid("MM" if media else "SM")
    data = InboundMessageReceived(
        message_sid=message_sid, account_sid=ACCOUNT, from_address=user, to_address=NUMBER,
        body=text, message_type="audio" if media else "text", media=media or [],
    )
    envelope = Envelope.wrap(
        data, correlation_id=message_sid, tenant_id=TENANT,
        event_id=event_id or uuid.uuid5(GATEWAY_NS, f"InboundMessageReceived:{message_sid}"),
    )
    if received_at is not None:
        envelope = envelope.model_copy(update={"occurred_at": received_at})
    await Publisher(js, GATEWAY.name).publish(
        inbound_subject(TENANT, user), envelope, msg_id=msg_id or message_sid
    )
    return envelope


async def send_reply(js: JetStreamContext, request: Envelope, text: str = "answer", *,
                     handoff_reason: str | None = None) -> Envelope:
    """As the agent answers a ReplyRequested (``handoff_reason``: its LLM called handoff)."""
    data = request.data
    reply = ReplyGenerated(
        turn=data["turn"], text=text, model="m", user_address=data["user_address"],
        business_address=data["business_address"], account_sid=data["account_sid"],
        handoff_reason=handoff_reason,
    )
    envelope = request.caused(reply)
    await Publisher(js, AGENT.name).publish("agent.ReplyGenerated", envelope)
    return envelope


async def send_transcript(js: JetStreamContext, request: Envelope, text: str | None) -> Envelope:
    """As the transcription service answers a TranscriptionRequested (None: it failed)."""
    message_sid = request.data["message_sid"]
    result = (TranscriptionFailed(message_sid=message_sid, reason="no speech") if text is None
              else TranscriptionCompleted(message_sid=message_sid, text=text, language="es",
                                          audio_duration_s=2.0, processing_s=0.3, model="base"))
    envelope = request.caused(result)
    await Publisher(js, TRANSCRIPTION.name).publish(f"transcription.{result.TYPE}", envelope)
    return envelope


async def history(js: JetStreamContext, cid: str = CID) -> list[Envelope]:
    """The conversation's events in stream order (its timer firings left out)."""
    return [s.envelope for s in await replay(js, "CONVERSATION", f"conversation.{cid}.>")
            if s.envelope.type != "IdleCheckDue"]


def of_type(events: list[Envelope], kind: str) -> list[Envelope]:
    return [e for e in events if e.type == kind]


async def wait_for(
    js: JetStreamContext, until: Callable[[list[Envelope]], bool], cid: str = CID,
    timeout_s: float = 10.0,
) -> list[Envelope]:
    deadline = time.monotonic() + timeout_s
    while True:
        events = await history(js, cid)
        if until(events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; events so far: {[e.type for e in events]}")
        await asyncio.sleep(0.05)


def count(kind: str, n: int = 1) -> Callable[[list[Envelope]], bool]:
    return lambda events: len(of_type(events, kind)) >= n


async def settle(js: JetStreamContext, cid: str = CID) -> list[Envelope]:
    """The events once every consumer has handled and acked everything stored (``drained``):
    a handler that failed is redelivered after its delay and handled before this returns, so
    a "nothing else happened" check after it covers the redelivery it guards. A timer not due
    yet is not waited for: check ``held_timers``."""
    await drained(js)
    return await history(js, cid)


async def held_timers(js: JetStreamContext, cid: str = CID) -> set[str]:
    """The conversation's timers set and not fired yet (a fired schedule leaves the stream):
    ``"idle"``, ``"turn"``, ``"handoff"``, ``"transcript.<sid>"``."""
    base = timer_subject(cid)
    info = await js.stream_info("CONVERSATION", subjects_filter=f"{base}.>")
    idle = await js.stream_info("CONVERSATION", subjects_filter=base)
    held = {subject.removeprefix(f"{base}.") for subject in info.state.subjects or {}}
    return held | ({"idle"} if idle.state.subjects else set())


async def state(js: JetStreamContext, cid: str = CID) -> ConversationState:
    events = await replay(js, "CONVERSATION", f"conversation.{cid}.>")
    return fold(cid, ((e.envelope, e.seq) for e in events))


async def public_view(js: JetStreamContext, cid: str = CID, *, version: int = 1,
                      timeout_s: float = 10.0) -> ConversationView:
    """The conversation's public view, once it reflects at least ``version``."""
    bucket = await js.key_value(VIEW_BUCKET)
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(KeyNotFoundError):
            entry = await bucket.get(view_key(cid))
            if entry.value is not None:
                found = ConversationView.from_bytes(entry.value)
                if found.version >= version:
                    return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no view of {cid} at version {version}")
        await asyncio.sleep(0.05)


def replica(nc: NATS, js: JetStreamContext, views: KeyValue,
            policy: TenantPolicy | None = None) -> ConversationHandlers:
    """The service's handlers as one replica has them (its own cache, its own view writer)."""
    return ConversationHandlers(
        ConversationStore(nc, js), ViewWriter(views, 100), lambda _: policy or policy_of(None),
        idle_close_s=86400, turn_deadline_s=300, transcript_deadline_s=600, context_size=20,
        max_conflicts=100,
    )


async def send_command(nc: NATS, command: Command, *, subject: str | None = None,
                       timeout_s: float = 10.0) -> CommandResult:
    """As the operator API sends it: a request on the tenant's command subject."""
    reply = await nc.request(subject or command_subject(command.tenant_id),
                             command.model_dump_json().encode(), timeout=timeout_s)
    return CommandResult.model_validate_json(reply.data)
