"""End to end (issue 10): a turn whose reply does not come in time ends with the fallback
text, sent to the user through the agent's path without the LLM (ADR 0016); the late reply is
never sent, and the next message is answered. The gateway stores user messages on their
conversation's partition (ADR 0017)."""

from __future__ import annotations

import pytest
from agent.fallbacks import unavailable_text
from e2e_helpers import NUMBER, USER, drained, eventually
from switchboard_contracts import Envelope
from switchboard_contracts.topology import inbound_subject
from test_conversation_loop import sent_messages

DEADLINE_S = 1.5


@pytest.fixture(autouse=True)
def short_turn_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVERSATION_TURN_DEADLINE_S", str(DEADLINE_S))


async def test_a_reply_past_its_deadline_is_replaced_by_the_fallback(stack, sim, llm, js):
    llm.delay(DEADLINE_S + 3.0, count=1)  # turn 1's answer comes, but too late
    llm.reply("This answer is too late.", count=1)
    await sim.inbound(USER, NUMBER, body="Hello?")
    # The gateway stored it on its conversation's partition (arrival order, ADR 0017).
    stored = await js.get_last_msg("GATEWAY", "gateway.*.InboundMessageReceived")
    tenant_id = Envelope.from_bytes(stored.data or b"").tenant_id
    assert tenant_id and stored.subject == inbound_subject(tenant_id, USER)
    [fallback] = await eventually(lambda: sent_messages(sim), timeout_s=20)
    assert fallback["form"]["Body"] == unavailable_text("en")
    await drained(js)  # the late answer has come and gone by now
    assert len(llm.requests()) == 1 and len(await sent_messages(sim)) == 1

    llm.reply("Yes, I am here.")
    await sim.inbound(USER, NUMBER, body="Are you there?")

    async def two():
        calls = await sent_messages(sim)
        return calls if len(calls) == 2 else None

    calls = await eventually(two, timeout_s=20)
    assert calls[1]["form"]["Body"] == "Yes, I am here."
