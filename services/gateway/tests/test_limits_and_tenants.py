"""Issue 10 at the edge: limits that hold across replicas, redeliveries that spend nothing, and
status callbacks that belong to the tenant whose message they name."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from gateway.ledgers import SENT_BUCKET
from gateway.main import build
from gateway.settings import GatewaySettings
from gateway_helpers import (
    ACCOUNT,
    NUMBER,
    OTHER_ACCOUNT,
    OTHER_NUMBER,
    OTHER_TOKEN,
    PUBLIC,
    STATUS_PATH,
    USER,
    inbound_params,
    post,
    sid,
    signed,
    stored,
)
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig

FIVE_PER_MINUTE = {"sender_rate_limit": "5/minute"}


@pytest.mark.parametrize("settings_overrides", [FIVE_PER_MINUTE])
async def test_twilios_retries_of_one_message_do_not_spend_the_senders_limit(
        client, js, settings_overrides) -> None:
    first = inbound_params()
    codes = [(await post(client, first, signed(first))).status_code for _ in range(10)]
    for _ in range(4):  # the user's next real messages
        params = inbound_params()
        codes.append((await post(client, params, signed(params))).status_code)
    assert codes == [200] * 14
    assert len(await stored(js)) == 5


@pytest.mark.parametrize("settings_overrides", [FIVE_PER_MINUTE])
async def test_a_stored_message_retried_after_the_limit_was_reached_still_gets_200(
        client, js, settings_overrides) -> None:
    messages = [inbound_params() for _ in range(5)]
    for params in messages:
        assert (await post(client, params, signed(params))).status_code == 200
    sixth = inbound_params()
    assert (await post(client, sixth, signed(sixth))).status_code == 429
    for params in messages:  # Twilio retries one it thinks failed: never refused now
        assert (await post(client, params, signed(params))).status_code == 200
    assert (await post(client, sixth, signed(sixth))).status_code == 429  # never stored
    assert len(await stored(js)) == 5


@pytest.mark.parametrize("settings_overrides", [FIVE_PER_MINUTE])
async def test_concurrent_messages_cannot_all_slip_past_the_check_before_being_counted(
        client, js, settings_overrides) -> None:
    messages = [inbound_params() for _ in range(20)]
    codes = await asyncio.gather(*(post(client, p, signed(p)) for p in messages))
    assert sorted(r.status_code for r in codes) == [200] * 5 + [429] * 15
    assert len(await stored(js)) == 5


@asynccontextmanager
async def replica(nats_url: str, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    values: dict[str, object] = {"nats_url": nats_url, "public_base_url": PUBLIC,
                                 "ip_rate_limit": "100000/second", **overrides}
    async with build(GatewaySettings(**values)).running() as service:
        transport = httpx.ASGITransport(app=service.app, client=("203.0.113.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw:8080") as http:
            yield http


async def test_two_replicas_together_hold_the_senders_limit(nats_url, tenants, js) -> None:
    async with replica(nats_url, **FIVE_PER_MINUTE) as a, \
            replica(nats_url, **FIVE_PER_MINUTE) as b:
        codes = []
        for i in range(10):  # a balancer alternating between them
            params = inbound_params()
            codes.append((await post((a, b)[i % 2], params, signed(params))).status_code)
    # Within the documented bound: 5 + replicas x burst (1 for 5/minute at 0.2 s syncs).
    # Per replica, as before, it was 5 each: 10 accepted.
    assert 5 <= codes.count(200) <= 7, codes
    assert set(codes) == {200, 429}


async def sent_by(js: JetStreamContext, message_sid: str, tenant_id: str) -> None:
    """As the sender records an outbound message (sender.store.ReplyStore.remember_sid)."""
    bucket = await js.create_key_value(KeyValueConfig(bucket=SENT_BUCKET, history=1))
    await bucket.put(message_sid, json.dumps(
        {"reply_id": "r1", "part": 1, "tenant_id": tenant_id}).encode())


def callback(message_sid: str, account: str, number: str) -> dict[str, str]:
    return {"MessageSid": message_sid, "AccountSid": account, "From": number, "To": USER,
            "MessageStatus": "delivered"}


async def test_a_status_callback_of_another_tenant_naming_our_message_changes_nothing(
        client, js) -> None:
    ours = sid()
    await sent_by(js, ours, "clinic")
    path = f"{STATUS_PATH}?correlation_id=SMturn1"
    # The bakery signs, correctly, with its own token and number, but names the clinic's sid.
    forged = callback(ours, OTHER_ACCOUNT, OTHER_NUMBER)
    response = await post(client, forged, signed(forged, OTHER_TOKEN, PUBLIC + path), path=path)
    assert response.status_code == 403
    assert await stored(js) == []
    own = callback(ours, ACCOUNT, NUMBER)
    assert (await post(client, own, signed(own, url=PUBLIC + path), path=path)).status_code == 200
    [event] = await stored(js)
    assert (event.tenant_id, event.data["message_sid"]) == ("clinic", ours)


async def test_a_callback_for_a_sid_not_recorded_yet_carries_the_signers_tenant(
        client, js) -> None:
    theirs = sid()
    params = callback(theirs, OTHER_ACCOUNT, OTHER_NUMBER)
    response = await post(client, params, signed(params, OTHER_TOKEN, PUBLIC + STATUS_PATH),
                          path=STATUS_PATH)
    assert response.status_code == 200
    [event] = await stored(js)
    assert event.tenant_id == "bakery"


@pytest.mark.parametrize("settings_overrides", [FIVE_PER_MINUTE])
async def test_webhooks_are_taken_while_the_limits_cannot_sync(client, js, settings_overrides
                                                               ) -> None:
    """Limits fail open (ADR 0015): with their counter stream gone every sync is answered "no
    responders", and a bursting sender's decision goes local instead of refusing or hanging
    (reliability finding 6 suspected it)."""
    await js.delete_stream("LIMITS_GATEWAY")
    for _ in range(4):  # burst 1: from the second on, each decision first tries a sync
        params = inbound_params()
        async with asyncio.timeout(2):
            assert (await post(client, params, signed(params))).status_code == 200
