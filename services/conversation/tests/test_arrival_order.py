"""Arrival order across replicas (issue 10, ADR 0017): whatever the number of conversation
replicas, one conversation's messages are appended in the order the gateway stored them."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from conversation_helpers import TENANT, count, of_type, send_inbound, wait_for
from switchboard_contracts.topology import (
    INBOUND_PARTITIONS,
    conversation_id_for,
    inbound_partition,
)
from switchboard_runtime.eventsourcing import replay

USERS = [f"whatsapp:+4477009{i:05d}" for i in range(8)]
BURST = 6


def test_a_conversation_always_lands_on_the_same_partition():
    cid = conversation_id_for(TENANT, USERS[0])
    assert inbound_partition(cid) == inbound_partition(cid)
    assert len({inbound_partition(conversation_id_for(TENANT, u)) for u in USERS}) > 1
    assert all(0 <= inbound_partition(conversation_id_for(TENANT, u)) < INBOUND_PARTITIONS
               for u in USERS)


@pytest.mark.parametrize("run", range(3))
async def test_two_replicas_append_each_conversations_messages_in_arrival_order(
    js, make_service, run
):
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(make_service().running())
        # Bursts from every user at once: each user's messages published concurrently, as
        # webhooks for messages sent close together reach several gateway replicas.
        await asyncio.gather(*(send_inbound(js, text=f"{user[-2:]}:{i}", user=user)
                               for i in range(BURST) for user in USERS))
        arrived: dict[str, list[str]] = {}
        for stored in await replay(js, "GATEWAY", "gateway.*.InboundMessageReceived"):
            cid = conversation_id_for(TENANT, stored.envelope.data["from_address"])
            arrived.setdefault(cid, []).append(stored.envelope.data["message_sid"])
        assert sorted(arrived) == sorted(conversation_id_for(TENANT, u) for u in USERS)
        for cid, sids in arrived.items():
            events = await wait_for(js, count("UserMessageAppended", BURST), cid=cid,
                                    timeout_s=30)
            appended = [e.data["message_sid"] for e in of_type(events, "UserMessageAppended")]
            assert appended == sids, f"{cid}: appended out of the gateway's order"
