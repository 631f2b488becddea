"""The read models after realistic conversations, published to the real streams."""

from __future__ import annotations

import gc
import json
from datetime import timedelta

import asyncpg
import pytest
from nats.js import JetStreamContext
from projection.api import queries
from projection.main import build
from projection_helpers import START, rows, settings_for, wait_caught_up
from projection_scripts import (
    ACCOUNT,
    BUSINESS,
    ConversationScript,
    Published,
    orphaned_message,
    publish,
)
from prometheus_client import REGISTRY
from switchboard_contracts import Envelope
from switchboard_contracts.events.gateway import DeliveryStatusReported
from switchboard_contracts.topology import CONVERSATION, DEADLETTER, GATEWAY, event_subject
from switchboard_devstack.waiting import eventually
from switchboard_runtime import Service

USER = "whatsapp:+447700900001"
FOREIGN = "switchboard_projection_foreign_statuses_total"


def the(script: ConversationScript, event_type: str) -> Envelope:
    found = [p.envelope for p in script.events
             if p.envelope.type == event_type and "Nats-Schedule" not in p.headers]
    assert len(found) == 1, event_type
    return found[0]


def timers(script: ConversationScript) -> int:
    return sum("Nats-Schedule" in p.headers for p in script.events)


async def test_a_text_conversation(projection: Service, js: JetStreamContext,
                                   pool: asyncpg.Pool) -> None:
    talk = ConversationScript("clinic", USER, start=START)
    sid = talk.text_message("Are you open on Saturday morning?",
                            reply="Yes, from nine to one. Shall I book you in?", parts=2)
    await publish(js, talk.events)
    await wait_caught_up(js)

    inbound, reply = the(talk, "InboundMessageReceived"), the(talk, "ReplyGenerated")
    conversation_events = [p.envelope for p in talk.events
                           if p.stream == CONVERSATION.name and "Nats-Schedule" not in p.headers]
    [conversation] = await rows(pool, "SELECT * FROM conversations")
    assert conversation == {
        "conversation_id": talk.conversation_id, "tenant_id": "clinic", "user_address": USER,
        "business_address": BUSINESS, "account_sid": ACCOUNT, "session": 1,
        "closed_session": None, "status": "open",
        "started_at": the(talk, "ConversationStarted").occurred_at, "closed_at": None,
        "close_reason": None, "last_user_message_at": inbound.occurred_at,
        "window_expires_at": inbound.occurred_at + timedelta(hours=24), "turns": 1,
        "user_messages": 1, "assistant_messages": 1,
        "created_at": conversation_events[0].occurred_at,
        "updated_at": conversation_events[-1].occurred_at,
        # Never handed to a person, never opted out (test_handoff_read_models.py).
        "mode": None, "operator_id": None, "mode_seq": None, "waiting_since": None,
        "handoff_source": None, "handoff_reason": None, "handoff_seq": None,
        "handoff_expired_at": None, "opted_out": None, "opted_out_at": None, "opt_seq": None,
    }

    user_row, reply_row = await rows(pool, "SELECT * FROM messages ORDER BY created_at")
    assert {k: user_row[k] for k in ("message_id", "direction", "conversation_id",
                                     "correlation_id", "turn", "text", "message_type",
                                     "profile_name", "from_address", "received_at",
                                     "transcription_status")} == {
        "message_id": sid, "direction": "inbound", "conversation_id": talk.conversation_id,
        "correlation_id": sid, "turn": 1, "text": "Are you open on Saturday morning?",
        "message_type": "text", "profile_name": "Ada", "from_address": USER,
        "received_at": inbound.occurred_at, "transcription_status": None,
    }
    assert json.loads(user_row["media"]) == []
    assert {k: reply_row[k] for k in ("message_id", "direction", "correlation_id", "turn",
                                      "text", "model", "parts", "prompt_tokens",
                                      "completion_tokens", "generated_at")} == {
        "message_id": str(reply.event_id), "direction": "outbound", "correlation_id": sid,
        "turn": 1, "text": "Yes, from nine to one. Shall I book you in?",
        "model": "gpt-4o-mini", "parts": 2, "prompt_tokens": 120, "completion_tokens": 30,
        "generated_at": reply.occurred_at,
    }

    parts = await rows(pool, "SELECT * FROM message_parts ORDER BY part")
    sent = [p.envelope for p in talk.events if p.envelope.type == "OutboundMessageSent"]
    assert [(p["message_id"], p["part"], p["text"], p["twilio_sid"], p["send_status"],
             p["attempts"], p["sent_at"]) for p in parts] == [
        (str(reply.event_id), n, e.data["text"], e.data["message_sid"], "sent", 1, e.occurred_at)
        for n, e in enumerate(sent, start=1)]
    statuses = await rows(pool, "SELECT message_sid, status FROM delivery_statuses")
    assert sorted((s["message_sid"], s["status"]) for s in statuses) == sorted(
        (e.data["message_sid"], status) for e in sent for status in ("sent", "delivered", "read"))

    timeline = await rows(pool, "SELECT * FROM timeline_events ORDER BY occurred_at")
    assert len(timeline) == len(talk.events) - timers(talk)  # timer definitions are no events
    assert {t["correlation_id"] for t in timeline} == {sid}
    assert [t["service"] for t in timeline[:4]] == ["gateway", "conversation", "conversation",
                                                    "conversation"]
    # Built by Postgres from the envelopes as stored: the same values as Envelope reads.
    published = {str(p.envelope.event_id): p for p in talk.events
                 if "Nats-Schedule" not in p.headers}
    for row in timeline:
        event = published[row["event_id"]]
        e = event.envelope
        assert row == {
            "event_id": str(e.event_id), "correlation_id": e.correlation_id,
            "tenant_id": e.tenant_id or None, "conversation_id": e.conversation_id,
            "type": e.type, "version": e.version, "service": event.subject.split(".")[0],
            "subject": event.subject,
            "causation_id": str(e.causation_id) if e.causation_id else None,
            "occurred_at": e.occurred_at,
        }
    processed = await pool.fetchval("SELECT sum(processed) FROM projection_checkpoints")
    assert processed == len(talk.events)


@pytest.mark.parametrize("forged_first", [False, True], ids=["after", "before"])
async def test_a_status_of_another_tenant_naming_a_sid_changes_nothing(
        projection: Service, js: JetStreamContext, pool: asyncpg.Pool, forged_first: bool
) -> None:
    """The garage's status callback names a Twilio sid of the clinic's reply (projected after
    the clinic's send, or before it): the clinic's message keeps its own status, the garage
    sees nothing of it (invariant 10), and it is counted once."""
    talk = ConversationScript("clinic", USER, start=START)
    talk.text_message("Hello", reply="Hi!", statuses=("sent",))
    sent, reply = the(talk, "OutboundMessageSent"), the(talk, "ReplyGenerated")
    forged = Envelope.wrap(DeliveryStatusReported(
        message_sid=sent.data["message_sid"], account_sid="AC" + "9" * 32, status="failed",
        error_code="30008"), correlation_id="SMforged", tenant_id="garage",
    ).model_copy(update={"occurred_at": sent.occurred_at + timedelta(seconds=1)})
    callback = Published(GATEWAY.name, event_subject("gateway", DeliveryStatusReported.TYPE),
                         forged)
    counted = REGISTRY.get_sample_value(FOREIGN) or 0.0
    for events in ([callback], talk.events) if forged_first else ([*talk.events, callback],):
        await publish(js, events)
        await wait_caught_up(js)

    message = await queries.get_message(pool, "clinic", str(reply.event_id))
    assert message is not None
    assert message.delivery_status == "sent"
    assert [[s.status for s in p.statuses] for p in message.parts] == [["sent"]]
    assert await queries.get_message(pool, "garage", sent.data["message_sid"]) is None
    assert REGISTRY.get_sample_value(FOREIGN) == counted + 1


async def test_a_voice_note_conversation(projection: Service, js: JetStreamContext,
                                         pool: asyncpg.Pool) -> None:
    talk = ConversationScript("clinic", USER, start=START)
    sid = talk.voice_note("I would like to move my appointment to Friday",
                          reply="Done: Friday at ten.", language="en")
    await publish(js, talk.events)
    await wait_caught_up(js)

    [note] = await rows(pool, "SELECT * FROM messages WHERE message_id = $1", sid)
    done = the(talk, "TranscriptionCompleted")
    assert {k: note[k] for k in ("direction", "text", "message_type", "transcription_status",
                                 "transcript", "transcript_language", "audio_duration_s",
                                 "transcription_model", "transcription_error")} == {
        "direction": "inbound", "text": "", "message_type": "audio",
        "transcription_status": "completed",
        "transcript": "I would like to move my appointment to Friday",
        "transcript_language": "en", "audio_duration_s": 3.2,
        "transcription_model": "whisper-base", "transcription_error": None,
    }
    assert [m["content_type"] for m in json.loads(note["media"])] == ["audio/ogg"]
    assert note["updated_at"] >= done.occurred_at

    [conversation] = await rows(pool, "SELECT * FROM conversations")
    assert (conversation["user_messages"], conversation["assistant_messages"]) == (1, 1)
    [part] = await rows(pool, "SELECT * FROM message_parts")
    assert (part["text"], part["send_status"]) == ("Done: Friday at ten.", "sent")
    statuses = await rows(pool, "SELECT status FROM delivery_statuses ORDER BY reported_at")
    assert [s["status"] for s in statuses] == ["sent", "delivered"]
    timeline = await rows(pool, "SELECT type, service FROM timeline_events "
                                "WHERE type LIKE 'Transcri%' ORDER BY occurred_at")
    assert [(t["type"], t["service"]) for t in timeline] == [
        ("TranscriptionRequested", "conversation"), ("TranscriptionCompleted", "transcription"),
        ("TranscriptAppended", "conversation")]


async def test_an_orphaned_message_is_recorded_under_no_tenant(
        projection: Service, js: JetStreamContext, pool: asyncpg.Pool) -> None:
    orphan = orphaned_message(ACCOUNT, "whatsapp:+14155550999", START)
    await publish(js, [orphan])
    await wait_caught_up(js)

    [row] = await rows(pool, "SELECT * FROM orphaned_messages")
    assert (row["message_sid"], row["to_address"], row["reason"]) == (
        orphan.envelope.data["message_sid"], "whatsapp:+14155550999", "no tenant owns this number")
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    assert await pool.fetchval("SELECT tenant_id FROM timeline_events") is None


async def test_poison_events_are_dead_lettered_and_do_not_block_the_stream(
        projection: Service, js: JetStreamContext, pool: asyncpg.Pool) -> None:
    talk = ConversationScript("clinic", USER, start=START)
    sid = talk.text_message("Hello", reply="Hi!")
    future = Envelope.model_validate({**the(talk, "ReplyGenerated").model_dump(mode="json"),
                                      "version": "2.0", "event_id": "9" * 32})
    newer = Envelope.model_validate({**the(talk, "ReplyGenerated").model_dump(mode="json"),
                                     "type": "ReplyRated", "event_id": "8" * 32,
                                     "data": {"stars": 5}})
    await js.publish("gateway.InboundMessageReceived", b"{not json", stream="GATEWAY")
    await js.publish("agent.ReplyGenerated", future.to_bytes(), stream="AGENT")
    await js.publish("agent.ReplyRated", newer.to_bytes(), stream="AGENT")
    await publish(js, talk.events)
    await wait_caught_up(js)

    letters = await rows(pool, "SELECT * FROM dead_letters ORDER BY stream")
    assert [(d["stream"], d["consumer"], d["stream_seq"], d["reason"].split(":")[0])
            for d in letters] == [
        ("AGENT", "projection-agent", 1, "unsupported version"),
        ("GATEWAY", "projection-gateway", 1, "malformed envelope"),
    ]
    assert (await js.stream_info(DEADLETTER.name)).state.messages == 2
    # A type this build does not know is still a hop of its correlation; what follows the
    # poison is projected.
    assert await pool.fetchval(
        "SELECT service FROM timeline_events WHERE type = 'ReplyRated'") == "agent"
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE message_id = $1", sid) == 1
    assert await pool.fetchval(
        "SELECT count(*) FROM timeline_events WHERE type = 'DeadLettered'") == 1  # has a cid


async def test_an_event_postgres_refuses_is_isolated_and_dead_lettered(
        projection: Service, js: JetStreamContext, pool: asyncpg.Pool) -> None:
    """A NUL character is valid JSON but not valid Postgres text: that event alone is
    dead-lettered, its batch neighbours are written."""
    talk = ConversationScript("clinic", USER, start=START)
    talk.text_message("Hello", reply="Hi!")
    inbound = the(talk, "InboundMessageReceived")
    broken = Envelope.model_validate({**inbound.model_dump(mode="json"), "event_id": "7" * 32,
                                      "data": {**inbound.data, "message_sid": "SMbroken",
                                               "body": "nul \u0000 inside"}})
    await publish(js, talk.events[:1])
    await js.publish("gateway.InboundMessageReceived", broken.to_bytes(), stream="GATEWAY")
    await publish(js, talk.events[1:])
    await wait_caught_up(js)

    [letter] = await rows(pool, "SELECT * FROM dead_letters")
    assert (letter["stream_seq"], letter["reason"], letter["event_type"]) == (
        2, "the projection could not store it", "InboundMessageReceived")
    assert letter["error"].startswith("22")  # SQLSTATE class 22: data exception
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE message_id = 'SMbroken'") == 0
    assert await pool.fetchval("SELECT count(*) FROM messages") == 2


async def test_the_projection_sets_its_young_garbage_collection_threshold(
        nats_url: str, migrated_url: str, streams: None) -> None:
    settings = settings_for(nats_url, migrated_url, gc_young_threshold=12_345)
    async with build(settings).running():  # set once it projects (holds the writer lease)
        await eventually(lambda: gc.get_threshold()[0] == 12_345, what="threshold set")
