"""People in the loop in the read models (ADR 0022): each conversation's mode, operator and
opt-out from its handoff and opt-out events; notices, operators' messages and templates beside
the bot's replies, each with its delivery state from the sender's events."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from nats.js import JetStreamContext
from projection_helpers import START, rows, wait_caught_up
from projection_scripts import ConversationScript, Published, publish
from switchboard_runtime import Service

ADA, BOB = "whatsapp:+447700900001", "whatsapp:+447700900002"
TEMPLATE = ("appointment_reminder", "HX" + "a" * 32)
MODE = ("mode", "operator_id", "handoff_source", "handoff_reason", "opted_out")


class Stages:
    """Publishes a script's events up to now, each call, and waits for the projection."""

    def __init__(self, js: JetStreamContext, pool: asyncpg.Pool) -> None:
        self._js, self._pool, self._published = js, pool, 0

    async def publish(self, events: list[Published]) -> None:
        await publish(self._js, events[self._published:])
        self._published = len(events)
        await wait_caught_up(self._js)

    async def conversation(self, script: ConversationScript) -> dict[str, Any]:
        [row] = await rows(self._pool, "SELECT * FROM conversations WHERE conversation_id = $1",
                           script.conversation_id)
        return row


def mode_of(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in MODE)


async def test_a_handoff_claimed_answered_and_released(projection: Service, js: JetStreamContext,
                                                       pool: asyncpg.Pool) -> None:
    ada = ConversationScript("clinic", ADA, start=START)
    ada.text_message("Can I book a cleaning?", reply="Sure, which day?")
    stages = Stages(js, pool)
    await stages.publish(ada.events)
    assert mode_of(await stages.conversation(ada)) == (None, None, None, None, None)

    ada.ask_for_person("Human please")
    await stages.publish(ada.events)
    waiting = await stages.conversation(ada)
    requested = next(p.envelope for p in ada.events if p.envelope.type == "HandoffRequested")
    assert mode_of(waiting) == ("waiting", None, "user", "human please", None)
    assert waiting["waiting_since"] == requested.occurred_at

    ada.claim("ann")
    reply_id = ada.outbound("operator", "operator_reply", text="Hi, Ann here.",
                            operator_id="ann", media_url="https://example.com/map.png",
                            statuses=("sent", "delivered", "read"))
    template_id = ada.outbound("template", "template", template=TEMPLATE,
                               variables={"1": "Thursday"}, operator_id="ann")
    await stages.publish(ada.events)
    human = await stages.conversation(ada)
    assert mode_of(human) == ("human", "ann", "user", "human please", None)
    assert human["waiting_since"] == requested.occurred_at  # the handoff's, kept while claimed

    outbound = await rows(pool, "SELECT * FROM messages WHERE kind IS NOT NULL "
                                "ORDER BY created_at")
    assert [(m["kind"], m["purpose"], m["operator_id"], m["text"]) for m in outbound] == [
        ("notice", "handoff_requested", None, "A person will answer you shortly."),
        ("operator", "operator_reply", "ann", "Hi, Ann here."),
        ("template", "template", "ann", None),
    ]
    notice, operator, template = outbound
    assert operator["message_id"] == reply_id and template["message_id"] == template_id
    assert json.loads(operator["media"]) == [{"url": "https://example.com/map.png"}]
    assert (template["template_name"], template["content_sid"]) == TEMPLATE
    assert json.loads(template["content_variables"]) == {"1": "Thursday"}
    assert {m["turn"] for m in outbound} == {2} and {m["parts"] for m in outbound} == {1}
    # Each one's part, from the sender's tree under the request's id, with Twilio's statuses.
    parts = await rows(pool, "SELECT p.message_id, p.send_status, array_agg(s.status "
                             "ORDER BY s.status) AS statuses FROM message_parts p "
                             "JOIN delivery_statuses s ON s.message_sid = p.twilio_sid "
                             "GROUP BY p.message_id, p.send_status")
    assert {(p["message_id"], p["send_status"], tuple(p["statuses"])) for p in parts} >= {
        (notice["message_id"], "sent", ("delivered", "sent")),
        (reply_id, "sent", ("delivered", "read", "sent")),
        (template_id, "sent", ("delivered", "sent")),
    }

    ada.release(operator_id="ann")
    await stages.publish(ada.events)
    back = await stages.conversation(ada)
    assert mode_of(back) == ("bot", None, None, None, None)
    assert back["waiting_since"] is None


async def test_an_operator_take_over_and_a_close(projection: Service, js: JetStreamContext,
                                                 pool: asyncpg.Pool) -> None:
    ada = ConversationScript("clinic", ADA, start=START)
    ada.text_message("Hello", reply="Hi!")
    ada.handoff("operator", operator_id="ann")  # a take-over: requested, then claimed
    stages = Stages(js, pool)
    await stages.publish(ada.events)
    assert mode_of(await stages.conversation(ada)) == ("waiting", None, "operator", None, None)
    ada.claim("ann")
    await stages.publish(ada.events)
    assert mode_of(await stages.conversation(ada)) == ("human", "ann", "operator", None, None)

    ada.close()  # closed while an operator had it: released first, the next session the bot's
    await stages.publish(ada.events)
    closed = await stages.conversation(ada)
    assert (closed["status"], *mode_of(closed)) == ("closed", "bot", None, None, None, None)


async def test_an_unclaimed_handoff_expires_to_the_tenants_outcome(
        projection: Service, js: JetStreamContext, pool: asyncpg.Pool) -> None:
    ada = ConversationScript("clinic", ADA, start=START)  # the tenant waits
    ada.text_message("My crown fell out", reply="Oh no.")
    ada.handoff("agent", reason="dental emergency")
    ada.expire("wait")
    bob = ConversationScript("clinic", BOB, start=START)  # the tenant gives it to the bot
    bob.text_message("Hi", reply="Hello!")
    bob.handoff("agent", reason="billing question")
    bob.expire("bot")
    stages = Stages(js, pool)
    await stages.publish(ada.events + bob.events)

    waited = await stages.conversation(ada)
    assert mode_of(waited) == ("waiting", None, "agent", "dental emergency", None)
    assert waited["handoff_expired_at"] == ada.events[-1].envelope.occurred_at
    assert mode_of(await stages.conversation(bob)) == ("bot", None, None, None, None)


async def test_an_opt_out_and_back_in(projection: Service, js: JetStreamContext,
                                      pool: asyncpg.Pool) -> None:
    ada = ConversationScript("clinic", ADA, start=START)
    ada.text_message("Hello", reply="Hi!")
    ada.opt_out()
    stages = Stages(js, pool)
    await stages.publish(ada.events)
    out = await stages.conversation(ada)
    opted = next(p.envelope for p in ada.events if p.envelope.type == "UserOptedOut")
    assert (out["opted_out"], out["opted_out_at"]) == (True, opted.occurred_at)
    [confirmation] = await rows(pool, "SELECT kind, purpose FROM messages WHERE kind IS NOT NULL")
    assert confirmation == {"kind": "notice", "purpose": "opted_out"}

    ada.opt_in()
    await stages.publish(ada.events)
    back = await stages.conversation(ada)
    assert (back["opted_out"], back["opted_out_at"]) == (False, None)
