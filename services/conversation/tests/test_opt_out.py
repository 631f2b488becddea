"""STOP (ADR 0022): one confirmation, then nothing at all is requested for the user (no bot
reply, no notice, no operator message, no template) until START."""

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
from switchboard_contracts.commands import SendTemplate, TakeOver

pytestmark = pytest.mark.integration


async def test_stop_then_nothing_until_start(js, nc, conversation):
    await send_inbound(js, text="hola")
    request = of_type(await wait_for(js, count("ReplyRequested")), "ReplyRequested")[0]
    await send_reply(js, request, "¡Hola!")
    await wait_for(js, count("AssistantMessageAppended"))

    await send_inbound(js, text="STOP")
    events = await wait_for(js, count("OutboundMessageRequested"))
    [opted_out] = of_type(events, "UserOptedOut")
    assert opted_out.data["keyword"] == "STOP"
    [notice] = of_type(events, "OutboundMessageRequested")
    assert (notice.data["kind"], notice.data["purpose"]) == ("notice", "opted_out")
    assert (await public_view(js, version=len(events))).opted_out

    # Nothing more: not for a message, a keyword, an operator, or a template.
    for text in ("hola", "humano", "stop"):
        await send_inbound(js, text=text)
    taken = await send_command(nc, TakeOver(command_id=uuid.uuid4().hex, tenant_id=TENANT,
                                            conversation_id=CID, operator_id="ann"))
    assert taken.accepted  # an operator may look after the conversation...
    template = await send_command(nc, SendTemplate(
        command_id=uuid.uuid4().hex, tenant_id=TENANT, conversation_id=CID,
        template="appointment", variables={"1": "lunes"}))
    assert (template.accepted, template.reason) == (False, "opted_out")  # ...but not write
    events = await wait_for(js, count("UserMessageAppended", 5))
    events = await settle(js)
    assert len(of_type(events, "ReplyRequested")) == 1
    assert len(of_type(events, "OutboundMessageRequested")) == 1
    assert [h.data["source"] for h in of_type(events, "HandoffRequested")] == ["operator"]

    await send_inbound(js, text="Comenzar")
    events = await wait_for(js, count("OutboundMessageRequested", 2))
    assert [e.data["keyword"] for e in of_type(events, "UserOptedIn")] == ["Comenzar"]
    assert of_type(events, "OutboundMessageRequested")[1].data["purpose"] == "opted_in"
    assert not (await public_view(js, version=len(events))).opted_out
