"""Rebuild: drop the read models' content and replay the streams, to the same content."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from projection import admin
from projection_helpers import START, snapshot, wait_caught_up
from projection_scripts import ACCOUNT, ConversationScript, orphaned_message, publish
from switchboard_runtime import Service
from typer.testing import CliRunner


async def test_rebuild_while_running_yields_identical_content(
        projection: Service, js: JetStreamContext, nats_url: str, migrated_url: str) -> None:
    ada = ConversationScript("clinic", "whatsapp:+447700900001", start=START)
    ada.text_message("Can I book a cleaning?", reply="Sure, which day suits you?", parts=2)
    ada.voice_note("Thursday please", reply="Booked for Thursday.")
    # People in the loop: a handoff by the LLM, claimed, answered, a template, released; an
    # opt-out and back in (ADR 0022).
    ada.agent_hands_off("Can I speak to the dentist?", reason="asks for the dentist")
    ada.claim("ann")
    ada.outbound("operator", "operator_reply", text="Hi, this is Ann.", operator_id="ann")
    ada.outbound("template", "template", template=("reminder", "HX" + "b" * 32),
                 variables={"1": "Thursday"}, operator_id="ann")
    ada.release(operator_id="ann")
    ada.opt_out()
    ada.opt_in()
    ada.close_idle()
    await publish(js, [*ada.events, orphaned_message(ACCOUNT, "whatsapp:+14155550999", START)])
    await js.publish("gateway.InboundMessageReceived", b"not an envelope", stream="GATEWAY")
    await wait_caught_up(js)
    assert projection.db is not None
    before = await snapshot(projection.db)
    assert before["dead_letters"] and before["orphaned_messages"] and before["message_parts"]
    [conversation] = before["conversations"]
    assert conversation["mode_seq"] and conversation["handoff_seq"] and conversation["opt_seq"]
    assert {m["kind"] for m in before["messages"]} == {None, "notice", "operator", "template"}

    # Damage the read models, as a bug or a bad manual fix would: a rebuild repairs them.
    await projection.db.execute("DELETE FROM messages WHERE direction = 'inbound'")
    await projection.db.execute("UPDATE conversations SET user_messages = 42, mode = 'human'")
    await projection.db.execute(
        "INSERT INTO conversations (conversation_id, tenant_id, created_at, updated_at) "
        "VALUES ('cv-no-event-made-this', 'clinic', now(), now())")

    result = await asyncio.to_thread(CliRunner().invoke, admin.app, [
        "rebuild", "--database-url", migrated_url, "--nats-url", nats_url, "--timeout-s", "30"])
    assert result.exit_code == 0, result.output
    assert "rebuilt (epoch 1)" in result.output
    await wait_caught_up(js)  # the running service replays too, under the same writer lock

    assert await snapshot(projection.db) == before
    assert await projection.db.fetchval("SELECT epoch FROM projection_state") == 1
