"""People in the loop on a real NATS (ADR 0022): a user or the agent asks for a person, the
bot stays silent, an operator claims, answers and releases; an unclaimed handoff expires."""

from __future__ import annotations

import uuid

import pytest
from conversation_helpers import (
    CID,
    TENANT,
    count,
    of_type,
    public_view,
    send_command,
    send_inbound,
    send_reply,
    settle,
    wait_for,
)
from switchboard_contracts.commands import Claim, Release, Reply
from switchboard_contracts.conversation_view import Mode

pytestmark = pytest.mark.integration


def command_id() -> str:
    return uuid.uuid4().hex


async def test_a_user_asks_for_a_person_an_operator_answers_and_releases(js, nc, conversation):
    await send_inbound(js, text="hola")
    request = of_type(await wait_for(js, count("ReplyRequested")), "ReplyRequested")[0]
    bot_reply = await send_reply(js, request, "¡Hola!")
    await wait_for(js, count("AssistantMessageAppended"))

    await send_inbound(js, text="Humano!")
    events = await wait_for(js, count("OutboundMessageRequested"))
    [handoff] = of_type(events, "HandoffRequested")
    assert (handoff.data["source"], handoff.data["reason"]) == ("user", "Humano!")
    [notice] = of_type(events, "OutboundMessageRequested")
    assert (notice.data["kind"], notice.data["purpose"]) == ("notice", "handoff_requested")
    assert notice.data["text"].startswith("Gracias")  # the tenant's language
    assert notice.data["after"] == str(bot_reply.event_id)  # after the bot's last reply
    view = await public_view(js, version=len(events))
    assert view.mode is Mode.WAITING and not view.bot_answers

    # The bot stays silent on the next messages; no second notice.
    await send_inbound(js, text="¿hola?")
    await send_inbound(js, text="humano")
    events = await wait_for(js, count("UserMessageAppended", 4))
    events = await settle(js)
    assert len(of_type(events, "ReplyRequested")) == 1
    assert len(of_type(events, "OutboundMessageRequested")) == 1

    claim = await send_command(nc, Claim(command_id=command_id(), tenant_id=TENANT,
                                         conversation_id=CID, operator_id="ann"))
    assert (claim.accepted, claim.mode, claim.operator_id) == (True, "human", "ann")
    answer = await send_command(nc, Reply(command_id=command_id(), tenant_id=TENANT,
                                          conversation_id=CID, operator_id="ann",
                                          text="Soy Ann, ¿en qué te ayudo?"))
    assert answer.accepted
    events = await wait_for(js, count("OutboundMessageRequested", 2))
    sent = of_type(events, "OutboundMessageRequested")[1]
    assert (sent.data["kind"], sent.data["operator_id"]) == ("operator", "ann")
    assert sent.data["after"] == str(notice.event_id)
    view = await public_view(js, version=answer.version)
    assert (view.mode, view.operator_id) == (Mode.HUMAN, "ann")

    released = await send_command(nc, Release(command_id=command_id(), tenant_id=TENANT,
                                              conversation_id=CID, operator_id="ann"))
    assert (released.accepted, released.mode) == (True, "bot")
    await send_inbound(js, text="gracias")
    events = await wait_for(js, count("ReplyRequested", 2))
    second = of_type(events, "ReplyRequested")[1]
    assert [c["content"] for c in second.data["context"]][-2:] == [
        "Soy Ann, ¿en qué te ayudo?", "gracias"]


async def test_the_agents_handoff_tool_hands_the_conversation_to_a_person(js, conversation):
    await send_inbound(js, text="quiero poner una queja")
    request = of_type(await wait_for(js, count("ReplyRequested")), "ReplyRequested")[0]
    await send_reply(js, request, "(not sent)", handoff_reason="complaint")
    events = await wait_for(js, count("OutboundMessageRequested"))
    [handoff] = of_type(events, "HandoffRequested")
    assert (handoff.data["source"], handoff.data["reason"], handoff.data["turn"]) == (
        "agent", "complaint", 1)
    assert not of_type(events, "AssistantMessageAppended")
    view = await public_view(js, version=len(events))
    assert view.mode is Mode.WAITING and view.reply_is_stale(1)
    await send_inbound(js, text="¿hola?")
    events = await settle(js)
    assert len(of_type(events, "ReplyRequested")) == 1


class TestUnclaimedHandoff:
    @pytest.fixture(params=["bot", "wait"])
    def tenant_settings(self, request) -> dict[str, object]:
        return {"handoff_deadline_s": 1, "handoff_unclaimed": request.param}

    async def test_gets_the_tenants_outcome_at_its_deadline(self, js, conversation,
                                                            tenant_settings):
        outcome = tenant_settings["handoff_unclaimed"]
        await send_inbound(js, text="human")
        events = await wait_for(js, count("HandoffExpired"), timeout_s=10)
        events = await settle(js)
        assert [e.data["outcome"] for e in of_type(events, "HandoffExpired")] == [outcome]
        assert [e.data["purpose"] for e in of_type(events, "OutboundMessageRequested")] == [
            "handoff_requested", "handoff_expired"]
        released = of_type(events, "HandoffReleased")
        assert [r.data["reason"] for r in released] == (["unclaimed"] if outcome == "bot"
                                                        else [])
        view = await public_view(js, version=len(events))
        assert view.mode is (Mode.BOT if outcome == "bot" else Mode.WAITING)
        await send_inbound(js, text="hola")
        events = await wait_for(js, count("UserMessageAppended", 2))
        events = await settle(js)
        assert len(of_type(events, "ReplyRequested")) == (1 if outcome == "bot" else 0)
