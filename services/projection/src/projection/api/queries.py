"""The read API's queries. Every one is scoped by the caller's tenant in SQL, so another
tenant's row is simply not found (the same 404 as a row that does not exist)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from switchboard_contracts.conversation_view import Mode

from ..delivery import message_status, part_status
from ..readmodels.messages import INBOUND
from . import models, pagination

USER, REPLY = "user", "reply"  # the kinds of messages the conversation did not ask for

_CONVERSATIONS = """
SELECT c.* FROM conversations c
WHERE c.tenant_id = $1
  AND ($2::text IS NULL OR c.status = $2)
  AND ($3::text IS NULL OR c.user_address ILIKE '%' || $3 || '%' ESCAPE '\\')
  AND ($4::text IS NULL OR EXISTS (
        SELECT 1 FROM messages m
        WHERE m.conversation_id = c.conversation_id AND m.tenant_id = $1
          AND m.search @@ plainto_tsquery('simple', $4)))
  AND ($5::timestamptz IS NULL OR c.updated_at >= $5)
  AND ($6::timestamptz IS NULL OR c.updated_at < $6)
  AND ($7::timestamptz IS NULL OR (c.updated_at, c.conversation_id) < ($7, $8::text))
ORDER BY c.updated_at DESC, c.conversation_id DESC
LIMIT $9
"""
_CONVERSATION = "SELECT * FROM conversations WHERE tenant_id = $1 AND conversation_id = $2"
_MESSAGES = """
SELECT * FROM messages
WHERE tenant_id = $1 AND conversation_id = $2
  AND ($3::timestamptz IS NULL OR (created_at, message_id) > ($3, $4::text))
ORDER BY created_at, message_id
LIMIT $5
"""
# A message by its id, or by the Twilio sid of one of its parts.
_MESSAGE = """
SELECT * FROM messages WHERE tenant_id = $1 AND message_id = $2
UNION ALL
SELECT m.* FROM messages m JOIN message_parts p ON p.message_id = m.message_id
WHERE m.tenant_id = $1 AND p.tenant_id = $1 AND p.twilio_sid = $2
LIMIT 1
"""
_PARTS = """
SELECT * FROM message_parts WHERE tenant_id = $1 AND message_id = ANY($2::text[])
ORDER BY message_id, part
"""
# The tenant's own callbacks only: another tenant's naming this sid is not this part's status.
_STATUSES = """
SELECT * FROM delivery_statuses WHERE tenant_id = $1 AND message_sid = ANY($2::text[])
ORDER BY message_sid, reported_at, status
"""
_TIMELINE = """
WITH hops AS (
    SELECT *, occurred_at - first_value(occurred_at) OVER w AS since_start,
              occurred_at - lag(occurred_at) OVER w AS since_previous
    FROM timeline_events
    WHERE tenant_id = $1 AND correlation_id = $2
    WINDOW w AS (ORDER BY occurred_at, event_id)
)
SELECT * FROM hops
WHERE $3::timestamptz IS NULL OR (occurred_at, event_id) > ($3, $4::text)
ORDER BY occurred_at, event_id
LIMIT $5
"""
# The operator queue: waiting for a person (oldest first), then those an operator has.
_QUEUE = """
SELECT * FROM conversations
WHERE tenant_id = $1 AND mode IN ('waiting', 'human')
ORDER BY mode = 'human', waiting_since NULLS LAST, conversation_id
LIMIT $2
"""
_LATEST_MESSAGES = """
SELECT * FROM (
    SELECT * FROM messages WHERE tenant_id = $1 AND conversation_id = $2
    ORDER BY created_at DESC, message_id DESC LIMIT $3
) latest
ORDER BY created_at, message_id
"""
_DEAD_LETTERS = """
SELECT * FROM dead_letters
WHERE tenant_id = $1
  AND ($2::timestamptz IS NULL
       OR (dead_lettered_at, stream, consumer, stream_seq) < ($2, $3::text, $4::text, $5::bigint))
ORDER BY dead_lettered_at DESC, stream DESC, consumer DESC, stream_seq DESC
LIMIT $6
"""


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    status: str | None = None
    user: str | None = None
    text: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


async def list_conversations(db: asyncpg.Pool, tenant: str, where: ConversationFilter, limit: int,
                             cursor: str | None) -> models.Page[models.Conversation]:
    after = pagination.decode(cursor, (datetime, str)) or (None, None)
    rows = await db.fetch(_CONVERSATIONS, tenant, where.status, _like(where.user), where.text,
                          where.updated_after, where.updated_before, *after, limit + 1)
    shown, more = pagination.page(rows, limit)
    last = shown[-1] if shown else None
    return models.Page[models.Conversation](
        items=[_conversation(r) for r in shown],
        next_cursor=pagination.encode(last["updated_at"], last["conversation_id"])
        if more and last else None,
    )


async def get_conversation(db: asyncpg.Pool, tenant: str, conversation_id: str
                           ) -> models.Conversation | None:
    row = await db.fetchrow(_CONVERSATION, tenant, conversation_id)
    return _conversation(row) if row else None


async def list_messages(db: asyncpg.Pool, tenant: str, conversation_id: str, limit: int,
                        cursor: str | None) -> models.Page[models.Message]:
    after = pagination.decode(cursor, (datetime, str)) or (None, None)
    rows = await db.fetch(_MESSAGES, tenant, conversation_id, *after, limit + 1)
    shown, more = pagination.page(rows, limit)
    last = shown[-1] if shown else None
    return models.Page[models.Message](
        items=await _messages(db, tenant, shown),
        next_cursor=pagination.encode(last["created_at"], last["message_id"])
        if more and last else None,
    )


async def get_message(db: asyncpg.Pool, tenant: str, message_id: str) -> models.Message | None:
    row = await db.fetchrow(_MESSAGE, tenant, message_id)
    if row is None:
        return None
    return (await _messages(db, tenant, [row]))[0]


async def get_timeline(db: asyncpg.Pool, tenant: str, correlation_id: str, limit: int,
                       cursor: str | None) -> models.Timeline | None:
    after = pagination.decode(cursor, (datetime, str)) or (None, None)
    rows = await db.fetch(_TIMELINE, tenant, correlation_id, *after, limit + 1)
    if not rows and cursor is None:
        return None
    shown, more = pagination.page(rows, limit)
    last = shown[-1] if shown else None
    return models.Timeline(
        correlation_id=correlation_id,
        items=[_hop(r) for r in shown],
        next_cursor=pagination.encode(last["occurred_at"], last["event_id"])
        if more and last else None,
    )


async def list_dead_letters(db: asyncpg.Pool, tenant: str, limit: int, cursor: str | None
                            ) -> models.Page[models.DeadLetter]:
    after = pagination.decode(cursor, (datetime, str, str, int)) or (None,) * 4
    rows = await db.fetch(_DEAD_LETTERS, tenant, *after, limit + 1)
    shown, more = pagination.page(rows, limit)
    last = shown[-1] if shown else None
    return models.Page[models.DeadLetter](
        items=[models.DeadLetter.model_validate(dict(r)) for r in shown],
        next_cursor=pagination.encode(last["dead_lettered_at"], last["stream"],
                                      last["consumer"], last["stream_seq"])
        if more and last else None,
    )


async def operator_queue(db: asyncpg.Pool, tenant: str, limit: int) -> models.Queue:
    return models.Queue(items=[_conversation(r) for r in await db.fetch(_QUEUE, tenant, limit)])


async def operator_conversation(db: asyncpg.Pool, tenant: str, conversation_id: str, limit: int
                                ) -> models.OperatorConversation | None:
    conversation = await get_conversation(db, tenant, conversation_id)
    if conversation is None:
        return None
    rows = await db.fetch(_LATEST_MESSAGES, tenant, conversation_id, limit)
    return models.OperatorConversation(conversation=conversation,
                                       messages=await _messages(db, tenant, rows))


# -- rows to models ----------------------------------------------------------------------------
def _like(text: str | None) -> str | None:
    """A substring for ILIKE, with its wildcards taken literally."""
    if text is None:
        return None
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conversation(row: asyncpg.Record) -> models.Conversation:
    expires = row["window_expires_at"]
    return models.Conversation.model_validate({
        **dict(row), "window_open": expires is not None and expires > datetime.now(UTC),
        "mode": row["mode"] or Mode.BOT.value, "opted_out": bool(row["opted_out"])})


def _hop(row: asyncpg.Record) -> models.Hop:
    previous = row["since_previous"]
    return models.Hop.model_validate({
        **dict(row),
        "since_start_ms": row["since_start"].total_seconds() * 1000,
        "since_previous_ms": previous.total_seconds() * 1000 if previous is not None else None,
    })


async def _messages(db: asyncpg.Pool, tenant: str, rows: Sequence[asyncpg.Record]
                    ) -> list[models.Message]:
    """The rows with their parts and each part's status callbacks (two queries per page)."""
    outbound = [r["message_id"] for r in rows if r["direction"] == "outbound"]
    part_rows = await db.fetch(_PARTS, tenant, outbound) if outbound else []
    sids = [p["twilio_sid"] for p in part_rows if p["twilio_sid"]]
    reports: dict[str, list[models.StatusReport]] = {}
    for s in await db.fetch(_STATUSES, tenant, sids) if sids else []:
        reports.setdefault(s["message_sid"], []).append(models.StatusReport(
            status=s["status"], at=s["reported_at"], error_code=s["error_code"],
            error_message=s["error_message"]))
    parts: dict[str, list[models.Part]] = {}
    for p in part_rows:
        statuses = reports.get(p["twilio_sid"] or "", [])
        parts.setdefault(p["message_id"], []).append(models.Part.model_validate({
            **dict(p), "statuses": statuses,
            "status": part_status(p["send_status"], (s.status for s in statuses)),
        }))
    return [_message(r, parts.get(r["message_id"], [])) for r in rows]


def _kind(row: asyncpg.Record) -> str:
    """What a message is: the conversation's own requests carry their kind."""
    if row["kind"]:
        return str(row["kind"])
    return USER if row["direction"] == INBOUND else REPLY


def _template(row: asyncpg.Record) -> models.Template | None:
    if not (row["template_name"] or row["content_sid"]):
        return None
    variables = json.loads(row["content_variables"]) if row["content_variables"] else {}
    return models.Template(name=row["template_name"], content_sid=row["content_sid"],
                           variables=variables)


def _message(row: asyncpg.Record, parts: list[models.Part]) -> models.Message:
    withheld = row["handoff_reason"] is not None
    return models.Message(
        message_id=row["message_id"], conversation_id=row["conversation_id"],
        correlation_id=row["correlation_id"], direction=row["direction"], kind=_kind(row),
        purpose=row["purpose"], operator_id=row["operator_id"], template=_template(row),
        turn=row["turn"], text=row["text"], media=_media(row["media"]),
        message_type=row["message_type"], created_at=row["created_at"],
        updated_at=row["updated_at"],
        delivery_status=message_status(row["direction"], [p.status for p in parts], withheld),
        transcription=models.Transcription(
            status=row["transcription_status"], text=row["transcript"],
            language=row["transcript_language"], error=row["transcription_error"],
            audio_duration_s=row["audio_duration_s"], model=row["transcription_model"],
        ) if row["transcription_status"] else None,
        reply=models.Reply(
            model=row["model"], fallback=row["fallback"], fallback_reason=row["fallback_reason"],
            prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
            latency_ms=row["llm_latency_ms"], generated_at=row["generated_at"],
            handoff_reason=row["handoff_reason"],
        ) if row["generated_at"] else None,
        parts_expected=row["parts"], parts=parts,
    )


def _media(raw: str | None) -> list[models.Media]:
    items: Iterable[dict[str, Any]] = json.loads(raw) if raw else []
    return [models.Media.model_validate(m) for m in items]
