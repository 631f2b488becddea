"""Helpers for the sender's tests: a tenant, a conversation, replies, and what to look at."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js import JetStreamContext
from switchboard_contracts import Envelope
from switchboard_contracts.conversation_view import WHATSAPP_WINDOW, ConversationView
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import OutboundMessageRequested
from switchboard_contracts.topology import AGENT, CONVERSATION, SENDER
from switchboard_devstack.views import put_view
from switchboard_devstack.waiting import eventually
from switchboard_runtime.bus import Publisher
from switchboard_runtime.eventsourcing import replay
from switchboard_tenants import TenantRecord, TokenCipher
from twilio_sim.client import SimClient

TENANT = "clinic"
ACCOUNT = "AC" + "c" * 32
TOKEN = "3" * 32
NUMBER = "whatsapp:+14155550100"
USER = "whatsapp:+447700900123"
VIEW_AHEAD = 1_000_000  # a seeded view's version: past any stream sequence a test reaches


def sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


def record(cipher: TokenCipher, token: str = TOKEN) -> TenantRecord:
    now = datetime.now(UTC)
    return TenantRecord(
        tenant_id=TENANT, name=TENANT, account_sid=ACCOUNT,
        auth_token_encrypted=cipher.encrypt(token), system_prompt="Be brief.", model="m",
        language="en", numbers=(NUMBER,), created_at=now, updated_at=now,
    )


class Turn:
    """One conversation with a user message and a reply requested for ``turn``."""

    def __init__(self, conversation_id: str, correlation_id: str, turn: int) -> None:
        self.conversation_id = conversation_id
        self.correlation_id = correlation_id
        self.turn = turn


async def seed_conversation(
    js: JetStreamContext, *, turn: int = 1, last_user_message_at: datetime | None = None,
    requested_turn: int | None = None, **fields: Any,
) -> Turn:
    """A conversation whose view says: the user's last message came at
    ``last_user_message_at`` (default now) and the latest reply requested is for
    ``requested_turn`` (default ``turn``), and accepted (see ``set_view``); replies made with
    ``reply`` are for ``turn``."""
    found = Turn("c" + uuid.uuid4().hex[:16], sid(), turn)
    await set_view(js, found.conversation_id, turn=requested_turn or turn,
                   last_user_message_at=last_user_message_at, **fields)
    return found


async def set_view(js: JetStreamContext, conversation_id: str, *, turn: int,
                   last_user_message_at: datetime | None = None, version: int | None = None,
                   **fields: Any) -> None:
    """Write the conversation's public view, as the conversation service does. Unless
    ``answered_turn`` is given, ``turn``'s reply is accepted (not when ``turn_superseded``).
    Unless ``version`` is given, the view is newer than any request a test publishes (the
    sender checks a request against a view at least as new as the request)."""
    at = last_user_message_at or datetime.now(UTC)
    fields.setdefault("answered_turn", 0 if fields.get("turn_superseded") else turn)
    await put_view(js, ConversationView(
        conversation_id=conversation_id, tenant_id=TENANT,
        version=VIEW_AHEAD + turn if version is None else version, turn=turn,
        open=True, window_ends_at=at + WHATSAPP_WINDOW, **fields))


def next_turn(turn: Turn) -> Turn:
    """The conversation's following turn (its own correlation id)."""
    return Turn(turn.conversation_id, sid(), turn.turn + 1)


def reply(turn: Turn, text: str, **fields: Any) -> Envelope:
    return Envelope.wrap(
        ReplyGenerated(turn=turn.turn, text=text, model="m", user_address=USER,
                       business_address=NUMBER, account_sid=ACCOUNT, **fields),
        correlation_id=turn.correlation_id, tenant_id=TENANT,
        conversation_id=turn.conversation_id,
    )


def request(turn: Turn, kind: str, purpose: str, text: str = "", **fields: Any) -> Envelope:
    """An OutboundMessageRequested of the conversation, for ``turn`` (``after``,
    ``content_sid``, ``media_url``, ... in ``fields``)."""
    return Envelope.wrap(
        OutboundMessageRequested(kind=kind, purpose=purpose, turn=turn.turn, text=text,
                                 user_address=USER, business_address=NUMBER,
                                 account_sid=ACCOUNT, **fields),
        correlation_id=turn.correlation_id, tenant_id=TENANT,
        conversation_id=turn.conversation_id,
    )


async def publish_request(js: JetStreamContext, envelope: Envelope) -> int:
    """Store it where the conversation publishes it; its stream sequence."""
    ack = await Publisher(js, CONVERSATION.name).publish(
        f"conversation.{envelope.conversation_id}.{OutboundMessageRequested.TYPE}", envelope)
    return ack.seq


async def publish_reply(js: JetStreamContext, envelope: Envelope, msg_id: str | None = None
                        ) -> None:
    """Store a ReplyGenerated on AGENT (``msg_id`` other than the event id: a redelivery past
    the duplicate window, e.g. a dead letter replayed)."""
    await Publisher(js, AGENT.name).publish("agent.ReplyGenerated", envelope, msg_id=msg_id)


async def sender_events(js: JetStreamContext, reply_id: str) -> list[Envelope]:
    try:
        return [s.envelope for s in await replay(js, SENDER.name, f"sender.{reply_id}.>")]
    except Exception:  # the stream may not exist yet
        return []


def of_type(events: list[Envelope], kind: str) -> list[Envelope]:
    return [e for e in events if e.type == kind]


async def wait_for(js: JetStreamContext, reply_id: str, kind: str, count: int = 1,
                   timeout_s: float = 15.0) -> list[Envelope]:
    async def check() -> list[Envelope] | None:
        found = of_type(await sender_events(js, reply_id), kind)
        return found if len(found) >= count else None

    found: list[Envelope] = await eventually(check, timeout_s)
    return found


async def drained(js: JetStreamContext, stream: str, durable: str, timeout_s: float = 15.0
                  ) -> None:
    """Until the consumer has nothing pending and nothing unacknowledged."""
    async def check() -> bool:
        info = await js.consumer_info(stream, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(check, timeout_s)


async def attempts(sim: SimClient) -> list[dict[str, Any]]:
    """Messages API create calls the simulator received, in order."""
    found: list[dict[str, Any]] = (await sim.messages())["attempts"]
    return found


def attempt_time(attempt: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(attempt["at"])


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)
