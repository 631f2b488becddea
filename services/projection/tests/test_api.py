"""The read API over projected conversations, with tenant-scoped API keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from nats.js import JetStreamContext
from projection_helpers import START, add_tenant, wait_caught_up
from projection_scripts import ConversationScript, publish
from switchboard_runtime import Service

ADA, BOB, CAROL = "whatsapp:+447700900001", "whatsapp:+447700900002", "whatsapp:+447700900003"


@dataclass
class World:
    clinic_key: str
    garage_key: str
    ada: ConversationScript
    bob: ConversationScript
    carol: ConversationScript  # the garage's customer
    ada_sids: list[str]
    carol_sid: str


@pytest.fixture
async def world(projection: Service, js: JetStreamContext) -> World:
    assert projection.db is not None
    keys = {tenant: await add_tenant(projection.db, js, tenant, n)
            for n, tenant in enumerate(("clinic", "garage"))}
    ada = ConversationScript("clinic", ADA, start=START)
    ada_sids = [ada.text_message("Do you do whitening?", reply="Yes, we do. Book online.",
                                 parts=2),
                ada.voice_note("How much does it cost", reply="It is 300 euros.")]
    bob = ConversationScript("clinic", BOB, start=START)
    bob.text_message("Hello", reply="Hi Bob.")
    bob.close_idle()
    carol = ConversationScript("garage", CAROL, start=START)
    carol_sid = carol.text_message("Is my car ready?", reply="Tomorrow at noon.")
    await publish(js, ada.events + bob.events + carol.events)
    # An event from a future agent version: dead-lettered, under the clinic.
    reply = next(e.envelope for e in bob.events if e.envelope.type == "ReplyGenerated")
    future = reply.model_copy(update={"version": "2.0", "event_id": uuid.uuid4()})
    await js.publish("agent.ReplyGenerated", future.to_bytes(), stream="AGENT")
    await wait_caught_up(js)
    return World(keys["clinic"], keys["garage"], ada, bob, carol, ada_sids, carol_sid)


@pytest.fixture
async def api(projection: Service) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=projection.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://read-api") as client:
        yield client


def as_(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def test_conversations_are_listed_searched_and_paginated(
        api: httpx.AsyncClient, world: World) -> None:
    clinic = as_(world.clinic_key)
    listed = (await api.get("/v1/conversations", headers=clinic)).json()
    assert {c["user_address"] for c in listed["items"]} == {ADA, BOB}
    assert listed["next_cursor"] is None

    first = (await api.get("/v1/conversations", params={"limit": 1}, headers=clinic)).json()
    second = (await api.get("/v1/conversations", headers=clinic,
                            params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [c["conversation_id"] for c in first["items"] + second["items"]] == [
        c["conversation_id"] for c in listed["items"]]
    assert second["next_cursor"] is None

    async def users(**params: str) -> set[str]:
        found = (await api.get("/v1/conversations", params=params, headers=clinic)).json()
        return {c["user_address"] for c in found["items"]}

    assert await users(status="closed") == {BOB}
    assert await users(user="900001") == {ADA}
    assert await users(q="cost") == {ADA}  # words of a voice note's transcript
    assert await users(q="whitening") == {ADA}
    assert await users(q="car") == set()  # the garage's conversation is not the clinic's

    ada = (await api.get(f"/v1/conversations/{world.ada.conversation_id}", headers=clinic)).json()
    assert (ada["status"], ada["user_messages"], ada["assistant_messages"], ada["turns"]) == (
        "open", 2, 2, 2)
    assert (await api.get("/v1/conversations", params={"cursor": "nonsense"},
                          headers=clinic)).status_code == 400


async def test_messages_show_where_each_one_is_in_its_journey(
        api: httpx.AsyncClient, world: World) -> None:
    clinic = as_(world.clinic_key)
    page = (await api.get(f"/v1/conversations/{world.ada.conversation_id}/messages",
                          headers=clinic)).json()
    text, reply, note, answer = page["items"]
    assert (text["direction"], text["text"], text["delivery_status"]) == (
        "inbound", "Do you do whitening?", "received")
    assert (reply["direction"], reply["parts_expected"], reply["delivery_status"]) == (
        "outbound", 2, "read")
    assert [p["status"] for p in reply["parts"]] == ["read", "read"]
    assert [s["status"] for s in reply["parts"][0]["statuses"]] == ["sent", "delivered", "read"]
    assert note["transcription"] == {
        "status": "completed", "text": "How much does it cost", "language": "en",
        "error": None, "audio_duration_s": 3.2, "model": "whisper-base"}
    assert note["media"][0]["content_type"] == "audio/ogg"
    assert answer["delivery_status"] == "delivered"
    assert answer["reply"]["model"] == "gpt-4o-mini"

    one = (await api.get(f"/v1/messages/{reply['message_id']}", headers=clinic)).json()
    assert one == reply
    by_twilio_sid = await api.get(f"/v1/messages/{reply['parts'][1]['twilio_sid']}",
                                  headers=clinic)
    assert by_twilio_sid.json()["message_id"] == reply["message_id"]


async def test_a_timeline_lists_every_hop_with_its_latency(
        api: httpx.AsyncClient, world: World) -> None:
    sid = world.ada_sids[0]
    timeline = (await api.get(f"/v1/timelines/{sid}", headers=as_(world.clinic_key))).json()
    hops = timeline["items"]
    expected = [e.envelope for e in world.ada.events
                if e.envelope.correlation_id == sid and "Nats-Schedule" not in e.headers]
    assert [h["type"] for h in hops] == [e.type for e in expected]
    assert hops[0]["service"] == "gateway" and hops[0]["since_previous_ms"] is None
    assert {h["service"] for h in hops} == {"gateway", "conversation", "agent", "sender"}
    assert all(h["since_previous_ms"] == pytest.approx(40.0) for h in hops[1:])
    assert hops[-1]["since_start_ms"] == pytest.approx(40.0 * (len(hops) - 1))

    paged = (await api.get(f"/v1/timelines/{sid}", params={"limit": 5},
                           headers=as_(world.clinic_key))).json()
    rest = (await api.get(f"/v1/timelines/{sid}", headers=as_(world.clinic_key),
                          params={"cursor": paged["next_cursor"]})).json()
    assert paged["items"] + rest["items"] == hops


async def test_a_key_sees_its_own_tenant_only_and_nothing_without_a_key(
        api: httpx.AsyncClient, world: World) -> None:
    clinic, garage = as_(world.clinic_key), as_(world.garage_key)
    carol_cid = world.carol.conversation_id
    own = await api.get(f"/v1/conversations/{carol_cid}", headers=garage)
    assert own.status_code == 200

    missing = await api.get("/v1/conversations/cv-no-such-thing", headers=clinic)
    for path in (f"/v1/conversations/{carol_cid}", f"/v1/conversations/{carol_cid}/messages",
                 f"/v1/messages/{world.carol_sid}", f"/v1/timelines/{world.carol_sid}"):
        other = await api.get(path, headers=clinic)
        assert (other.status_code, other.json()) == (404, missing.json()), path
    listed = (await api.get("/v1/conversations", headers=garage)).json()
    assert [c["user_address"] for c in listed["items"]] == [CAROL]

    for headers in ({}, {"X-API-Key": "sbk_not-a-key"}, {"Authorization": "Bearer nope"},
                    {"Authorization": f"Basic {world.clinic_key}"}):
        refused = await api.get("/v1/conversations", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == "Bearer"
    bearer = await api.get("/v1/conversations",
                           headers={"Authorization": f"Bearer {world.clinic_key}"})
    assert bearer.status_code == 200


async def test_the_api_is_documented(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    assert set(schema["paths"]) == {
        "/v1/conversations", "/v1/conversations/{conversation_id}",
        "/v1/conversations/{conversation_id}/messages", "/v1/messages/{message_id}",
        "/v1/timelines/{correlation_id}", "/v1/dead-letters",
        # The operator API (test_operator_api.py).
        "/v1/operator/queue", "/v1/operator/conversations/{conversation_id}",
        *(f"/v1/operator/conversations/{{conversation_id}}/{command}"
          for command in ("take-over", "claim", "release", "close", "reply", "template")),
        "/v1/templates/send"}
    assert set(schema["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    assert "401" in schema["paths"]["/v1/conversations"]["get"]["responses"]


async def test_dead_letters_are_listed_for_their_tenant(api: httpx.AsyncClient,
                                                       world: World) -> None:
    clinic = (await api.get("/v1/dead-letters", headers=as_(world.clinic_key))).json()
    [letter] = clinic["items"]
    assert (letter["stream"], letter["consumer"], letter["event_type"]) == (
        "AGENT", "projection-agent", "ReplyGenerated")
    assert letter["reason"].startswith("unsupported version")
    garage = (await api.get("/v1/dead-letters", headers=as_(world.garage_key))).json()
    assert garage["items"] == []
