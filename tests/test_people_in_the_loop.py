"""End to end, people in the loop (issue 12, ADR 0022): a user asks for a person, the tenant's
system hears of it, an operator answers through the operator API and gives the conversation
back to the bot; STOP silences everything until START; templates outside the window.

The whole path runs: the Twilio simulator signs webhooks to the gateway, the conversation,
agent and sender services, the projection with its operator API on a real port, the real
twilio and openai SDKs, a tenant added through the tenants repository (Postgres and the
directory), and a local receiver standing in for the tenant's own system.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from e2e_helpers import ACCOUNT, NUMBER, TOKEN, USER, Stack, drained, eventually, running_stack
from llm_sim.testing import RunningLLMSim
from nats.js import JetStreamContext
from projection.main import build as build_projection
from projection.schema import apply_migrations
from projection.settings import ProjectionSettings
from pydantic import SecretStr
from switchboard_devstack.receiver import Receiver, receiving
from switchboard_devstack.serving import serve_here
from switchboard_tenants import (
    DirectoryPublisher,
    NewTenant,
    TenantRepository,
    TokenCipher,
    open_bucket,
)
from switchboard_tenants.models import Template
from switchboard_tenants.webhook_signature import verify
from twilio_sim.client import SimClient
from twilio_sim.testing import RunningSimulator

SECRET = "whsec-e2e-people-in-the-loop"
OTHER_USER = "whatsapp:+447700900077"


def tenant_events(system: Receiver) -> list[dict[str, Any]]:
    """The tenant's notifications whose signature verifies, one per event id (they come at
    least once)."""
    unique: dict[str, dict[str, Any]] = {}
    for headers, body in system.requests:
        assert verify(SECRET, headers["X-Switchboard-Timestamp"],
                      headers["X-Switchboard-Signature"], body)
        unique[headers["X-Switchboard-Event-Id"]] = json.loads(body)
    return list(unique.values())


def tenant_types(system: Receiver) -> list[str]:
    return [event["type"] for event in tenant_events(system)]


@dataclass
class Loop:
    stack: Stack
    sim: SimClient
    llm: RunningLLMSim
    js: JetStreamContext
    api: httpx.AsyncClient  # the operator API, as operator "ann"
    other_operator: httpx.AsyncClient  # as operator "bob"
    tenant: Receiver  # the tenant's own system
    content_sid: str

    async def received(self, count: int, to: str = USER) -> list[dict[str, Any]]:
        """Until ``to`` has received ``count`` messages (Messages API calls that created one)."""
        async def created() -> list[dict[str, Any]] | None:
            attempts = (await self.sim.messages())["attempts"]
            sent = [a["form"] for a in attempts
                    if a["form"].get("To") == to and a["status_code"] == 201]
            return sent if len(sent) >= count else None
        return await eventually(created, timeout_s=30, what=f"{count} messages to the user")

    async def sent_to(self, to: str = USER) -> list[dict[str, Any]]:
        attempts = (await self.sim.messages())["attempts"]
        return [a["form"] for a in attempts if a["form"].get("To") == to
                and a["status_code"] == 201]

    async def say(self, text: str, user: str = USER) -> None:
        answer = await self.sim.inbound(user, NUMBER, body=text)
        assert answer["status_code"] == 200

    async def queued(self, mode: str) -> dict[str, Any]:
        """The conversation once the operator queue shows it in ``mode``."""
        async def listed() -> dict[str, Any] | None:
            response = await self.api.get("/v1/operator/queue")
            response.raise_for_status()
            found = [item for item in response.json()["items"] if item["mode"] == mode]
            return found[0] if found else None
        return await eventually(listed, timeout_s=30, what=f"a conversation {mode} in the queue")


@pytest.fixture
async def loop(nats_url: str, js: JetStreamContext, database_url: str, cipher: TokenCipher,
               simulator: RunningSimulator, llm: RunningLLMSim) -> AsyncIterator[Loop]:
    await asyncio.to_thread(apply_migrations, database_url)
    async with receiving() as system, simulator.client() as sim:
        content_sid = await sim.create_template(ACCOUNT, TOKEN, "appointment_reminder",
                                                "Reminder: your appointment is on {{1}}.")
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            repo = TenantRepository(pool, cipher, DirectoryPublisher(await open_bucket(js)))
            await repo.add(NewTenant(
                tenant_id="clinic", name="clinic", account_sid=ACCOUNT,
                auth_token=SecretStr(TOKEN), numbers=(NUMBER,),
                system_prompt="You answer for a clinic.", webhook_url=system.url,
                webhook_secret=SecretStr(SECRET),
            ))
            await repo.add_template("clinic", Template(
                name="appointment_reminder", content_sid=content_sid, language="en",
                variables=("1",)))
            ann = await repo.add_api_key("clinic", "ann", role="operator")
            bob = await repo.add_api_key("clinic", "bob", role="operator")
        finally:
            await pool.close()
        projection = build_projection(ProjectionSettings(
            nats_url=nats_url, database_url=database_url, http_port=0, poll_interval_s=0.05))
        async with (running_stack(nats_url, simulator.url, llm) as stack,
                    projection.running(), serve_here(projection.app) as api_url,
                    httpx.AsyncClient(base_url=api_url, headers={"X-API-Key": ann},
                                      timeout=15) as api,
                    httpx.AsyncClient(base_url=api_url, headers={"X-API-Key": bob},
                                      timeout=15) as other):
            await sim.add_number(NUMBER, ACCOUNT,
                                 webhook_url=f"{stack.gateway_url}/twilio/whatsapp/inbound")
            yield Loop(stack, sim, llm, js, api, other, system, content_sid)


async def test_a_user_asks_for_a_person_an_operator_answers_then_the_bot_again(
        loop: Loop) -> None:
    loop.llm.reply("The bot answers.", count=1)
    await loop.say("Hello")
    [bot] = await loop.received(1)
    assert bot["Body"] == "The bot answers."
    calls = len(loop.llm.requests())

    await loop.say("Human")  # a handoff keyword, whatever the case
    notice = (await loop.received(2))[1]
    assert notice["Body"] != "The bot answers."  # the localized notice, not an LLM answer
    waiting = await loop.queued("waiting")
    conversation = waiting["conversation_id"]

    await loop.say("Is anyone there?")  # the bot stays silent while a person is awaited
    await drained(loop.js)
    assert len(await loop.sent_to()) == 2
    assert len(loop.llm.requests()) == calls

    # Two operators claim at once: one wins, the other is told who has it.
    first, second = await asyncio.gather(
        loop.api.post(f"/v1/operator/conversations/{conversation}/claim"),
        loop.other_operator.post(f"/v1/operator/conversations/{conversation}/claim"))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner = loop.api if first.status_code == 200 else loop.other_operator
    refused = second if first.status_code == 200 else first
    assert refused.json()["reason"] == "claimed_by_another"

    answer = await winner.post(f"/v1/operator/conversations/{conversation}/reply",
                               json={"text": "Hi, this is a person. How can I help?"})
    assert answer.status_code == 200, answer.text
    assert (await loop.received(3))[2]["Body"] == "Hi, this is a person. How can I help?"

    assert (await winner.post(f"/v1/operator/conversations/{conversation}/release")
            ).status_code == 200
    loop.llm.reply("The bot is back.")
    await loop.say("Thanks!")
    assert (await loop.received(4))[3]["Body"] == "The bot is back."

    # The tenant's system heard of each step once, signed, without the user's number.
    await eventually(lambda: {"HandoffRequested", "HandoffClaimed", "HandoffReleased"}
                     <= set(tenant_types(loop.tenant)), what="the tenant's notifications")
    await drained(loop.js)
    assert sorted(tenant_types(loop.tenant)) == ["HandoffClaimed", "HandoffReleased",
                                           "HandoffRequested"]
    assert all(USER not in body.decode() and "+447700900001" not in body.decode()
               for _, body in loop.tenant.requests)

    async def back_with_the_bot() -> bool:
        shown = await loop.api.get(f"/v1/operator/conversations/{conversation}")
        return shown.json()["conversation"]["mode"] == "bot"
    await eventually(back_with_the_bot, what="the read model back in bot mode")


async def test_the_llm_hands_off_through_its_tool(loop: Loop) -> None:
    loop.llm.call_tool("handoff", {"reason": "asks about a refund"})
    await loop.say("I want my money back")
    [notice] = await loop.received(1)
    assert notice["Body"]  # the notice, not the model's empty text
    await loop.queued("waiting")
    await eventually(lambda: "HandoffRequested" in tenant_types(loop.tenant),
                     what="the tenant's notification")
    [requested] = tenant_events(loop.tenant)
    assert requested["data"]["source"] == "agent"


async def test_stop_silences_everything_until_start(loop: Loop) -> None:
    loop.llm.reply("The bot answers.")
    await loop.say("Hello")
    await loop.received(1)
    await loop.say("STOP")
    confirmation = (await loop.received(2))[1]
    assert confirmation["Body"] != "The bot answers."

    await loop.say("hello again?")  # no bot reply
    conversation = (await loop.api.get("/v1/operator/queue")).json()
    notified = await loop.api.post("/v1/templates/send", json={
        "user_address": USER, "template": "appointment_reminder",
        "variables": {"1": "Monday"}})
    assert notified.status_code == 409 and notified.json()["reason"] == "opted_out"
    await drained(loop.js)
    assert len(await loop.sent_to()) == 2, conversation

    await loop.say("START")
    assert len(await loop.received(3)) == 3  # the opt-in confirmation
    await loop.say("Are you back?")
    assert (await loop.received(4))[3]["Body"] == "The bot answers."


async def test_outside_the_window_only_a_template_goes_out(loop: Loop) -> None:
    # A user who never wrote: no 24-hour window, so a business-initiated message is a template.
    notified = await loop.api.post("/v1/templates/send", json={
        "user_address": OTHER_USER, "template": "appointment_reminder",
        "variables": {"1": "Monday 9:00"}})
    assert notified.status_code == 200, notified.text
    [template] = await loop.received(1, to=OTHER_USER)
    assert template["ContentSid"] == loop.content_sid
    assert json.loads(template["ContentVariables"]) == {"1": "Monday 9:00"}
    assert "Body" not in template

    conversation = notified.json()["conversation_id"]

    async def in_the_read_models() -> bool:  # an operator acts on what the API shows
        shown = await loop.api.get(f"/v1/operator/conversations/{conversation}")
        return shown.status_code == 200
    await eventually(in_the_read_models, what="the new conversation in the read models")
    taken = await loop.api.post(f"/v1/operator/conversations/{conversation}/take-over")
    assert taken.status_code == 200, taken.text
    refused = await loop.api.post(f"/v1/operator/conversations/{conversation}/reply",
                                  json={"text": "Free text outside the window"})
    assert refused.status_code == 409 and refused.json()["reason"] == "outside_24h_window"
    await drained(loop.js)
    assert len(await loop.sent_to(OTHER_USER)) == 1


async def test_operator_replies_keep_their_order_during_a_user_burst(loop: Loop) -> None:
    await loop.say("Hello")
    await loop.received(1)
    conversation = await eventually(lambda: _conversation_of(loop),
                                    what="the conversation in the read models")
    taken = await loop.api.post(f"/v1/operator/conversations/{conversation}/take-over")
    assert taken.status_code == 200, taken.text

    texts = [f"Operator message {n}" for n in range(1, 5)]
    burst = [f"user burst {n}" for n in range(1, 6)]

    async def operator() -> None:
        for text in texts:  # each accepted before the next is sent, as a person types
            answer = await loop.api.post(f"/v1/operator/conversations/{conversation}/reply",
                                         json={"text": text})
            assert answer.status_code == 200, answer.text

    async def user() -> None:
        for text in burst:
            await loop.say(text)

    await asyncio.gather(operator(), user())
    sent = await loop.received(1 + len(texts))
    assert [m["Body"] for m in sent[1:]] == texts  # in the order the operator wrote them
    await drained(loop.js)
    assert len(await loop.sent_to()) == 1 + len(texts)  # the bot said nothing to the burst


async def _conversation_of(loop: Loop) -> str | None:
    response = await loop.api.get("/v1/conversations")
    items = response.json()["items"]
    return items[0]["conversation_id"] if items else None
