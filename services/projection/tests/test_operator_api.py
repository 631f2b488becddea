"""The operator API (ADR 0022): the queue and a conversation's messages from the read models;
commands forwarded to the conversation service (a fake responder here) with the tenant and
the operator taken from the key; roles and tenants kept apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fake_conversation import FakeConversation, fake_conversation
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from projection_helpers import START, add_operator_key, add_tenant, wait_caught_up
from projection_scripts import ConversationScript, publish
from switchboard_contracts.commands import (
    Claim,
    CommandResult,
    Release,
    Reply,
    SendTemplate,
    TakeOver,
)
from switchboard_runtime import Service

ADA, BOB, CAROL = "whatsapp:+447700900001", "whatsapp:+447700900002", "whatsapp:+447700900003"
DAN = "whatsapp:+447700900004"  # the garage's customer
TEMPLATE = ("appointment_reminder", "HX" + "a" * 32)


@dataclass
class World:
    reader: str  # the clinic's read-only key
    ann: str  # the clinic's operator
    gus: str  # the garage's operator
    ada: ConversationScript  # waiting for a person since she asked
    bob: ConversationScript  # Ann has him: a reply and a template
    carol: ConversationScript  # the bot answers; the LLM handed a turn off, released since
    dan: ConversationScript  # the garage's, waiting


@pytest.fixture
async def world(projection: Service, js: JetStreamContext) -> World:
    db = projection.db
    assert db is not None
    reader = await add_tenant(db, js, "clinic", 0)
    await add_tenant(db, js, "garage", 1)
    ann = await add_operator_key(db, js, "clinic", "ann")
    gus = await add_operator_key(db, js, "garage", "gus")
    bob = ConversationScript("clinic", BOB, start=START)
    bob.text_message("Hi", reply="Hello!")
    bob.ask_for_person("agent")
    bob.claim("ann")
    bob.outbound("operator", "operator_reply", text="Ann here, how can I help?",
                 operator_id="ann", statuses=("sent", "delivered", "read"))
    bob.outbound("template", "template", template=TEMPLATE, variables={"1": "Thursday"},
                 operator_id="ann", statuses=("sent",))
    ada = ConversationScript("clinic", ADA, start=START + timedelta(minutes=1))
    ada.voice_note("I want to talk to a person", reply="Sure.")
    ada.ask_for_person("human")
    carol = ConversationScript("clinic", CAROL, start=START)
    carol.agent_hands_off("My bill is wrong", reason="billing dispute")
    carol.release()
    carol.opt_out()
    dan = ConversationScript("garage", DAN, start=START)
    dan.ask_for_person("humano")
    await publish(js, bob.events + ada.events + carol.events + dan.events)
    await wait_caught_up(js)
    return World(reader, ann, gus, ada, bob, carol, dan)


@pytest.fixture
async def api(projection: Service) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=projection.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://projection") as client:
        yield client


@pytest.fixture
async def conversation_service(nc: NATS) -> AsyncIterator[FakeConversation]:
    async with fake_conversation(nc) as fake:
        yield fake


def as_(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def on(script: ConversationScript, command: str) -> str:
    return f"/v1/operator/conversations/{script.conversation_id}/{command}"


async def test_the_queue_lists_waiting_conversations_oldest_first_then_human_ones(
        api: httpx.AsyncClient, world: World) -> None:
    for key in (world.reader, world.ann):  # any key of the tenant reads
        queue = await api.get("/v1/operator/queue", headers=as_(key))
        assert queue.status_code == 200
        assert [(c["user_address"], c["mode"], c["operator_id"], c["handoff_source"],
                 c["handoff_reason"]) for c in queue.json()["items"]] == [
            (ADA, "waiting", None, "user", "human"),
            (BOB, "human", "ann", "user", "agent"),
        ]
    garage = (await api.get("/v1/operator/queue", headers=as_(world.gus))).json()
    assert [c["user_address"] for c in garage["items"]] == [DAN]
    # The read API's conversations show the mode and the opt-out too.
    carol = (await api.get(f"/v1/conversations/{world.carol.conversation_id}",
                           headers=as_(world.reader))).json()
    assert (carol["mode"], carol["opted_out"]) == ("bot", True)
    assert carol["opted_out_at"] is not None


async def test_a_conversation_shows_every_kind_of_message_with_its_delivery(
        api: httpx.AsyncClient, world: World) -> None:
    bob = (await api.get(f"/v1/operator/conversations/{world.bob.conversation_id}",
                         headers=as_(world.reader))).json()
    assert (bob["conversation"]["mode"], bob["conversation"]["operator_id"]) == ("human", "ann")
    assert [(m["kind"], m["purpose"], m["operator_id"], m["text"], m["delivery_status"])
            for m in bob["messages"]] == [
        ("user", None, None, "Hi", "received"),
        ("reply", None, None, "Hello!", "read"),
        ("user", None, None, "agent", "received"),
        ("notice", "handoff_requested", None, "A person will answer you shortly.", "delivered"),
        ("operator", "operator_reply", "ann", "Ann here, how can I help?", "read"),
        ("template", "template", "ann", None, "sent"),
    ]
    assert bob["messages"][-1]["template"] == {
        "name": TEMPLATE[0], "content_sid": TEMPLATE[1], "variables": {"1": "Thursday"}}

    ada = (await api.get(f"/v1/operator/conversations/{world.ada.conversation_id}",
                         headers=as_(world.reader))).json()
    voice = ada["messages"][0]
    assert voice["transcription"]["text"] == "I want to talk to a person"
    assert voice["media"][0]["content_type"] == "audio/ogg"

    carol = (await api.get(f"/v1/operator/conversations/{world.carol.conversation_id}",
                           headers=as_(world.reader))).json()
    withheld = next(m for m in carol["messages"] if m["kind"] == "reply")
    assert (withheld["delivery_status"], withheld["reply"]["handoff_reason"]) == (
        "not_sent", "billing dispute")
    assert carol["messages"][-1]["purpose"] == "opted_out"

    limited = (await api.get(f"/v1/operator/conversations/{world.bob.conversation_id}",
                             params={"limit": 2}, headers=as_(world.reader))).json()
    assert [m["kind"] for m in limited["messages"]] == ["operator", "template"]  # the latest


async def test_commands_go_to_the_conversation_with_the_tenant_and_operator_of_the_key(
        api: httpx.AsyncClient, world: World, conversation_service: FakeConversation) -> None:
    ada, bob = world.ada.conversation_id, world.bob.conversation_id
    claimed = await api.post(on(world.ada, "claim"), headers=as_(world.ann))
    assert claimed.status_code == 200
    assert claimed.json() == CommandResult(accepted=True, conversation_id=ada, version=7,
                                           mode="human", operator_id="ann").model_dump()
    await api.post(on(world.bob, "release"), headers=as_(world.ann))
    await api.post(on(world.carol, "take-over"),
                   headers={**as_(world.ann), "Idempotency-Key": "double-click-1"})
    await api.post(on(world.bob, "reply"), headers=as_(world.ann),
                   json={"text": "On my way", "media_url": "https://example.com/map.png"})
    await api.post(on(world.bob, "template"), headers=as_(world.ann),
                   json={"template": "appointment_reminder", "variables": {"1": "Friday"}})
    notified = await api.post("/v1/templates/send", headers=as_(world.ann), json={
        "user_address": DAN.replace("4", "5"), "template": "appointment_reminder",
        "variables": {"1": "Monday"}})
    assert notified.status_code == 200

    received = conversation_service.received
    assert {subject for subject, _ in received} == {"commands.conversation.clinic"}
    commands = [command for _, command in received]
    assert [type(c) for c in commands] == [Claim, Release, TakeOver, Reply, SendTemplate,
                                           SendTemplate]
    assert {(c.tenant_id, c.operator_id) for c in commands} == {("clinic", "ann")}
    claim, release, take_over, reply, template, notify = commands
    assert (claim.conversation_id, release.conversation_id) == (ada, bob)
    assert take_over.command_id == "double-click-1"
    assert len({c.command_id for c in commands}) == len(commands)  # one per call otherwise
    assert (reply.text, reply.media_url) == ("On my way", "https://example.com/map.png")
    assert (template.conversation_id, template.template, template.variables) == (
        bob, "appointment_reminder", {"1": "Friday"})
    assert (notify.conversation_id, notify.user_address, notify.variables) == (
        None, DAN.replace("4", "5"), {"1": "Monday"})


async def test_a_refused_command_is_a_409_with_the_reason(
        api: httpx.AsyncClient, world: World, conversation_service: FakeConversation) -> None:
    conversation_service.answer = lambda command: CommandResult(
        accepted=False, reason="claimed_by_another", conversation_id=world.ada.conversation_id,
        version=9, mode="human", operator_id="zoe")
    refused = await api.post(on(world.ada, "claim"), headers=as_(world.ann))
    assert refused.status_code == 409
    assert refused.json()["reason"] == "claimed_by_another"
    assert refused.json()["accepted"] is False


async def test_nobody_answering_is_a_503_and_nothing_is_done(
        start_projection: object, js: JetStreamContext, nc: NATS) -> None:
    async with start_projection(command_timeout_s=0.3) as projection:  # type: ignore[operator]
        assert projection.db is not None
        await add_tenant(projection.db, js, "clinic", 0)
        ann = await add_operator_key(projection.db, js, "clinic", "ann")
        ada = ConversationScript("clinic", ADA, start=START)
        ada.ask_for_person()
        await publish(js, ada.events)
        await wait_caught_up(js)
        transport = httpx.ASGITransport(app=projection.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as api:
            nobody = await api.post(on(ada, "claim"), headers=as_(ann))  # no responders
            assert nobody.status_code == 503
            assert "did not answer" in nobody.json()["detail"]
            async with fake_conversation(nc) as silent:
                silent.answer = lambda command: None  # takes it, never answers: a timeout
                late = await api.post(on(ada, "claim"), headers=as_(ann))
                assert late.status_code == 503
                assert len(silent.received) == 1


async def test_a_reader_key_cannot_act_and_another_tenants_conversation_is_not_found(
        api: httpx.AsyncClient, world: World, conversation_service: FakeConversation) -> None:
    for command in ("take-over", "claim", "release", "close"):
        assert (await api.post(on(world.ada, command), headers=as_(world.reader))
                ).status_code == 403
    assert (await api.post(on(world.ada, "reply"), headers=as_(world.reader),
                           json={"text": "hi"})).status_code == 403
    assert (await api.post("/v1/templates/send", headers=as_(world.reader), json={
        "user_address": ADA, "template": "x"})).status_code == 403
    # The garage's operator on the clinic's conversation: not found, exactly like a missing one.
    foreign = await api.post(on(world.ada, "claim"), headers=as_(world.gus))
    missing = await api.post(f"/v1/operator/conversations/cv{'0' * 32}/claim",
                             headers=as_(world.gus))
    assert (foreign.status_code, foreign.json()) == (missing.status_code, missing.json())
    assert foreign.status_code == 404
    read = await api.get(f"/v1/operator/conversations/{world.ada.conversation_id}",
                         headers=as_(world.gus))
    assert read.status_code == 404
    assert (await api.post(on(world.ada, "claim"))).status_code == 401
    assert conversation_service.received == []  # nothing reached the conversation


async def test_an_invalid_body_is_a_422_that_does_not_repeat_it(
        api: httpx.AsyncClient, world: World, conversation_service: FakeConversation) -> None:
    cases = [
        (on(world.bob, "reply"), {"text": "x", "media_url": "http://insecure.example/a.png"}),
        (on(world.bob, "reply"), {"text": "long words " * 500}),
        (on(world.bob, "reply"), {"text": "hi", "tenant_id": "garage"}),  # never from a body
        (on(world.bob, "template"), {"variables": {"1": "x"}}),
        ("/v1/templates/send", {"user_address": "+447700900099", "template": "reminder"}),
    ]
    for url, body in cases:
        response = await api.post(url, headers=as_(world.ann), json=body)
        assert response.status_code == 422, (url, body, response.text)
        assert "insecure.example" not in response.text and "447700900099" not in response.text
    short_key = await api.post(on(world.bob, "claim"),
                               headers={**as_(world.ann), "Idempotency-Key": "x"})
    assert short_key.status_code == 422
    assert conversation_service.received == []
