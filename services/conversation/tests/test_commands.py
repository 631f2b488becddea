"""Operator commands over NATS request-reply (ADR 0022): decided like any fact, with the same
version check, so two operators claiming at once cannot both win; idempotent by command_id;
scoped to the subject's tenant; refused with a reason a person can act on."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from conversation.view import open_view_bucket
from conversation_helpers import (
    CID,
    NUMBER,
    TEMPLATE,
    TENANT,
    count,
    history,
    of_type,
    replica,
    send_command,
    send_inbound,
    settle,
    sid,
    wait_for,
)
from switchboard_contracts import Envelope, registry
from switchboard_contracts.commands import (
    Claim,
    Close,
    CommandResult,
    Release,
    Reply,
    SendTemplate,
    TakeOver,
    command_subject,
)
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.topology import CONVERSATION, conversation_id_for
from switchboard_runtime.bus import ensure_stream

pytestmark = pytest.mark.integration


def new_id() -> str:
    return uuid.uuid4().hex


def claim(operator: str, command_id: str | None = None, cid: str = CID) -> Claim:
    return Claim(command_id=command_id or new_id(), tenant_id=TENANT, conversation_id=cid,
                 operator_id=operator)


async def waiting_for_a_person(js) -> None:
    await send_inbound(js, text="humano")
    await wait_for(js, count("HandoffRequested"))


async def test_two_replicas_claiming_at_once_one_wins(nc, js):
    await ensure_stream(js, CONVERSATION)
    views = await open_view_bucket(js, replicas=1)
    replicas = [replica(nc, js, views) for _ in range(2)]
    for round_ in range(5):  # several conversations: each race has exactly one winner
        user = f"whatsapp:+4477009{round_:05d}"
        cid = conversation_id_for(TENANT, user)
        message = InboundMessageReceived(message_sid=sid(), account_sid="AC1",
                                         from_address=user, to_address=NUMBER, body="human")
        await replicas[0].on_inbound(registry.decode(Envelope.wrap(
            message, correlation_id=message.message_sid, tenant_id=TENANT)))
        results = await asyncio.gather(
            replicas[0].on_command(claim("ann", cid=cid)),
            replicas[1].on_command(claim("bob", cid=cid)),
        )
        accepted = [r for r in results if r.accepted]
        refused = [r for r in results if not r.accepted]
        assert len(accepted) == 1 and len(refused) == 1
        assert refused[0].reason == "claimed_by_another"
        assert refused[0].operator_id == accepted[0].operator_id
        claims = of_type(await history(js, cid), "HandoffClaimed")
        assert [c.data["operator_id"] for c in claims] == [accepted[0].operator_id]


async def test_two_service_instances_answer_the_queue_group_one_claim_wins(
    js, nc, make_service
):
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(make_service().running())
        await waiting_for_a_person(js)
        results = await asyncio.gather(*(send_command(nc, claim(name))
                                         for name in ("ann", "bob", "cy", "dee")))
        assert sorted(r.accepted for r in results) == [False, False, False, True]
        assert {r.reason for r in results if not r.accepted} == {"claimed_by_another"}
        [winner] = [r for r in results if r.accepted]
        assert {r.operator_id for r in results} == {winner.operator_id}
        assert len(of_type(await history(js), "HandoffClaimed")) == 1


async def test_a_retried_command_is_accepted_once(js, nc, conversation):
    await waiting_for_a_person(js)
    first = claim("ann")
    results = await asyncio.gather(send_command(nc, first), send_command(nc, first))
    assert [r.accepted for r in results] == [True, True]
    await send_command(nc, Release(command_id=new_id(), tenant_id=TENANT, conversation_id=CID))
    again = await send_command(nc, first)  # long after: still accepted, nothing changes
    assert (again.accepted, again.mode) == (True, "bot")
    events = await history(js)
    assert len(of_type(events, "HandoffClaimed")) == 1
    assert [c.data["command_id"] for c in of_type(events, "HandoffClaimed")] == [
        first.command_id]


async def test_an_operator_reply_outside_the_window_is_refused_a_template_is_not(
    js, nc, conversation
):
    await send_inbound(js, text="humano", received_at=datetime.now(UTC) - timedelta(hours=25))
    await wait_for(js, count("HandoffRequested"))
    assert (await send_command(nc, claim("ann"))).accepted
    refused = await send_command(nc, Reply(command_id=new_id(), tenant_id=TENANT,
                                           conversation_id=CID, operator_id="ann", text="hi"))
    assert (refused.accepted, refused.reason) == (False, "outside_24h_window")
    template = SendTemplate(command_id=new_id(), tenant_id=TENANT, conversation_id=CID,
                            operator_id="ann", template="appointment", variables={"1": "lunes"})
    assert (await send_command(nc, template)).accepted
    events = await wait_for(js, count("OutboundMessageRequested", 2))
    sent = of_type(events, "OutboundMessageRequested")[-1]
    assert (sent.data["kind"], sent.data["content_sid"], sent.data["content_variables"]) == (
        "template", TEMPLATE.content_sid, {"1": "lunes"})


async def test_a_business_initiated_template_to_a_new_user(js, nc, conversation):
    user = "whatsapp:+447700900999"
    result = await send_command(nc, SendTemplate(
        command_id=new_id(), tenant_id=TENANT, user_address=user, template="appointment",
        variables={"1": "lunes"}))
    cid = conversation_id_for(TENANT, user)
    assert (result.accepted, result.conversation_id) == (True, cid)
    events = await wait_for(js, count("OutboundMessageRequested"), cid=cid)
    [started] = of_type(events, "ConversationStarted")
    assert (started.data["user_address"], started.data["business_address"]) == (user, NUMBER)
    [sent] = of_type(events, "OutboundMessageRequested")
    assert (sent.data["kind"], sent.data["template_name"], sent.data["user_address"]) == (
        "template", "appointment", user)


async def test_another_tenants_conversation_answers_like_an_unknown_one(js, nc, conversation):
    await waiting_for_a_person(js)
    before = await history(js)
    unknown = "cv" + uuid.uuid4().hex
    answers: list[CommandResult] = []
    for cid in (CID, unknown):
        for command in (
            Claim(command_id=new_id(), tenant_id="other", conversation_id=cid,
                  operator_id="eve"),
            TakeOver(command_id=new_id(), tenant_id="other", conversation_id=cid,
                     operator_id="eve"),
            Close(command_id=new_id(), tenant_id="other", conversation_id=cid),
        ):
            answers.append(await send_command(nc, command))
    assert {r.model_dump_json(exclude={"conversation_id"}) for r in answers} == {
        CommandResult(accepted=False, reason="unknown_conversation").model_dump_json(
            exclude={"conversation_id"})}
    assert await settle(js) == before  # nothing appended


async def test_a_command_for_another_tenant_than_its_subject_or_invalid_is_refused(
    nc, conversation
):
    wrong = await send_command(nc, claim("ann"), subject=command_subject("other"))
    assert (wrong.accepted, wrong.reason) == (False, "wrong_tenant")
    reply = await nc.request(command_subject(TENANT), b'{"command": "claim"}', timeout=10)
    invalid = CommandResult.model_validate_json(reply.data)
    assert (invalid.accepted, invalid.reason) == (False, "invalid_command")
