from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from switchboard_contracts import Envelope
from switchboard_contracts.conversation_view import WHATSAPP_WINDOW, ConversationView
from switchboard_contracts.events.conversation import ContextMessage, ReplyRequested
from switchboard_contracts.topology import AGENT, CONVERSATION, event_subject
from switchboard_devstack.views import put_view
from switchboard_tenants import TenantRecord, TokenCipher

TENANT = "clinic"
ACCOUNT = "AC" + "a" * 32
BUSINESS = "whatsapp:+14155550100"
USER = "whatsapp:+447700900123"
PROMPT = "You are the assistant of the Acme Dental clinic."
MODEL = "clinic-model"


def tenant_record(cipher: TokenCipher, *, tenant_id: str = TENANT, language: str = "es",
                  model: str = MODEL, llm_base_url: str | None = None,
                  llm_api_key: str | None = None) -> TenantRecord:
    now = datetime.now(UTC)
    return TenantRecord(
        tenant_id=tenant_id, name=tenant_id, account_sid=ACCOUNT,
        auth_token_encrypted=cipher.encrypt("1" * 32), system_prompt=PROMPT, model=model,
        language=language, llm_base_url=llm_base_url, numbers=(BUSINESS,),
        llm_api_key_encrypted=cipher.encrypt(llm_api_key) if llm_api_key else None,
        created_at=now, updated_at=now,
    )


def new_conversation() -> str:
    return f"cv{uuid.uuid4().hex[:12]}"


def context(*texts: str) -> list[ContextMessage]:
    """Alternating user / assistant messages, oldest first, ending with the user's."""
    start = datetime.now(UTC) - timedelta(minutes=len(texts))
    last = len(texts) - 1
    return [ContextMessage(role="user" if (last - i) % 2 == 0 else "assistant", content=text,
                           at=start + timedelta(minutes=i))
            for i, text in enumerate(texts)]


async def start_conversation(js: JetStreamContext, conversation_id: str, turn: int = 1,
                             **fields: Any) -> None:
    """The public view the conversation service writes once it asked for ``turn``'s reply."""
    await put_view(js, ConversationView(
        conversation_id=conversation_id, tenant_id=TENANT, version=turn, turn=turn, open=True,
        window_ends_at=datetime.now(UTC) + WHATSAPP_WINDOW, **fields))


def reply_requested(conversation_id: str, turn: int = 1, texts: tuple[str, ...] = (
        "Is the clinic open tomorrow?",), *, correlation_id: str | None = None,
        fallback_reason: str | None = None, tenant_id: str = TENANT) -> Envelope:
    data = ReplyRequested(
        turn=turn, message_sids=[f"SM{uuid.uuid4().hex}"], context=context(*texts),
        user_address=USER, business_address=BUSINESS, account_sid=ACCOUNT,
        fallback_reason=fallback_reason,
    )
    return Envelope.wrap(data, correlation_id=correlation_id or f"SM{uuid.uuid4().hex}",
                         tenant_id=tenant_id, conversation_id=conversation_id)


async def request_reply(js: JetStreamContext, envelope: Envelope,
                        msg_id: str | None = None) -> None:
    assert envelope.conversation_id is not None
    await js.publish(event_subject("conversation", "ReplyRequested", envelope.conversation_id),
                     envelope.to_bytes(), stream=CONVERSATION.name,
                     headers={"Nats-Msg-Id": msg_id or str(envelope.event_id)})


async def agent_events(js: JetStreamContext, event_type: str | None = None
                       ) -> list[tuple[Envelope, dict[str, str]]]:
    """Every event on the AGENT stream (of one type), with its headers."""
    try:
        info = await js.stream_info(AGENT.name)
    except NotFoundError:
        return []
    found = []
    if info.state.messages == 0:
        return []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(AGENT.name, seq)
        envelope = Envelope.from_bytes(msg.data or b"")
        if event_type is None or envelope.type == event_type:
            found.append((envelope, dict(msg.headers or {})))
    return found


async def wait_for_events(js: JetStreamContext, count: int, event_type: str = "ReplyGenerated",
                          timeout_s: float = 15.0) -> list[Envelope]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [e for e, _ in await agent_events(js, event_type)]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, f"{len(found)} {event_type}, wanted {count}"
            return found
        await asyncio.sleep(0.05)


def user_texts(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] != "system"]


async def wait_until_handled(js: JetStreamContext, count: int, timeout_s: float = 10.0) -> None:
    """The agent's consumer has taken ``count`` requests and acked every one."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = await js.consumer_info(CONVERSATION.name, "agent-replies")
        if info.delivered.stream_seq and info.ack_floor.consumer_seq >= count and (
                info.num_pending == 0 and info.num_ack_pending == 0):
            return
        assert time.monotonic() < deadline, f"requests not handled: {info}"
        await asyncio.sleep(0.05)
