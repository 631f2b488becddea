"""How long handoffs wait for a person, and the queue waiting now (issue 12's gap): the wait
histogram observed once per handoff however often its events are applied, and the queue gauges
read from the read model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from nats.js import JetStreamContext
from projection import metrics
from projection.rebuild import reset
from projection_helpers import START, rows, wait_caught_up
from projection_scripts import ConversationScript, Published, publish
from prometheus_client import REGISTRY
from switchboard_runtime import Service

ServiceFactory = Callable[..., AbstractAsyncContextManager[Service]]
ADA, BOB, CY = "whatsapp:+447700900001", "whatsapp:+447700900002", "whatsapp:+447700900003"


def wait_sample(name: str, source: str, outcome: str) -> float:
    return REGISTRY.get_sample_value(name, {"source": source, "outcome": outcome}) or 0.0


def value(gauge: str) -> float | None:
    return REGISTRY.get_sample_value(gauge)


def the(events: list[Published], event_type: str) -> Published:
    return next(e for e in events if e.envelope.type == event_type)


async def poll(condition: Callable[[], object], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_claimed_handoff_is_observed_once_though_its_events_are_applied_again(
        projection: Service, js: JetStreamContext, pool: asyncpg.Pool) -> None:
    count, total = "switchboard_handoff_wait_seconds_count", "switchboard_handoff_wait_seconds_sum"
    before = (wait_sample(count, "user", "claimed"), wait_sample(total, "user", "claimed"))
    ada = ConversationScript("clinic", ADA, start=START)
    ada.text_message("Hello", reply="Hi!")
    ada.ask_for_person("Human please")
    ada.claim("ann")
    await publish(js, ada.events)
    await wait_caught_up(js)

    requested, claimed = the(ada.events, "HandoffRequested"), the(ada.events, "HandoffClaimed")
    waited = (claimed.envelope.occurred_at - requested.envelope.occurred_at).total_seconds()

    def observed() -> tuple[float, float]:
        return (wait_sample(count, "user", "claimed") - before[0],
                wait_sample(total, "user", "claimed") - before[1])

    assert observed() == (1, pytest.approx(waited))

    # The same events stored again under other message ids (a republish after the duplicate
    # window): new stream sequences, the same event ids.
    for event in (requested, claimed):
        await event.publish(js, f"again:{event.envelope.event_id}")
    await wait_caught_up(js)
    assert observed() == (1, pytest.approx(waited))

    # A rebuild: the read models emptied, every event applied again from the streams' start.
    await reset(pool, js)
    await wait_caught_up(js)
    [row] = await rows(pool, "SELECT mode, operator_id FROM conversations")
    assert row == {"mode": "human", "operator_id": "ann"}  # applied again indeed
    assert observed() == (1, pytest.approx(waited))


async def test_each_wait_ends_once_with_what_ended_it(
        projection: Service, js: JetStreamContext) -> None:
    count = "switchboard_handoff_wait_seconds_count"
    cases = (("agent", "expired"), ("user", "released"), ("operator", "claimed"),
             ("user", "claimed"))
    before = {case: wait_sample(count, *case) for case in cases}
    ada = ConversationScript("clinic", ADA, start=START)  # nobody came; back to the bot
    ada.text_message("My crown fell out", reply="Oh no.")
    ada.handoff("agent", reason="dental emergency")
    ada.expire("bot")
    bob = ConversationScript("clinic", BOB, start=START)  # closed while waiting
    bob.ask_for_person()
    bob.close()
    cy = ConversationScript("clinic", CY, start=START)  # an operator takes over; a later
    cy.text_message("Hi", reply="Hello!")                # handoff, nobody came, then one did
    cy.take_over("ann")
    cy.release(operator_id="ann")
    cy.ask_for_person()
    cy.expire("wait")  # keeps waiting: ends nothing
    cy.claim("bea")
    await publish(js, ada.events + bob.events + cy.events)
    await wait_caught_up(js)
    assert {case: wait_sample(count, *case) - before[case] for case in cases} == {
        ("agent", "expired"): 1, ("user", "released"): 1, ("operator", "claimed"): 1,
        ("user", "claimed"): 1}


async def test_the_queue_gauges_count_the_waiting_and_drop_when_one_is_claimed(
        start_projection: ServiceFactory, js: JetStreamContext) -> None:
    waiting, oldest = "switchboard_handoffs_waiting", "switchboard_handoff_oldest_waiting_seconds"
    metrics.HANDOFFS_WAITING.set(-1)  # only a read of the queue sets it again
    ada = ConversationScript("clinic", ADA, start=START)
    ada.text_message("Hello", reply="Hi!")
    ada.ask_for_person()
    bob = ConversationScript("clinic", BOB, start=START + timedelta(hours=1))
    bob.ask_for_person()
    cy = ConversationScript("clinic", CY, start=START)  # in human mode: not waiting
    cy.text_message("Hi", reply="Hello!")
    cy.take_over("ann")

    def age(script: ConversationScript) -> float:
        since = the(script.events, "HandoffRequested").envelope.occurred_at
        return (datetime.now(UTC) - since).total_seconds()

    async with start_projection(handoff_queue_interval_s=0.05):
        await publish(js, ada.events + bob.events + cy.events)
        await wait_caught_up(js)
        await poll(lambda: value(waiting) == 2, "two waiting")
        assert abs((value(oldest) or 0) - age(ada)) < 30

        ada.claim("ann")
        await publish(js, ada.events[-1:])
        await wait_caught_up(js)
        await poll(lambda: value(waiting) == 1, "one waiting once Ada's is claimed")
        assert abs((value(oldest) or 0) - age(bob)) < 30

        bob.claim("bea")
        await publish(js, bob.events[-1:])
        await wait_caught_up(js)
        await poll(lambda: value(waiting) == 0, "none waiting")
        assert value(oldest) == 0
