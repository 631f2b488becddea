"""End to end: a signed WhatsApp webhook through gateway, conversation, agent and sender to
the Twilio Messages API (simulated), on real NATS with the real twilio and openai SDKs."""

from __future__ import annotations

import asyncio
from datetime import datetime

from e2e_helpers import ACCOUNT, NUMBER, USER, drained, eventually, stream_events
from llm_sim import MARKER
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sender.main import build as build_sender
from sender.twilio_api import Credentials, MessagesApi, TwilioMessages
from switchboard_runtime.telemetry import configure_tracing


async def sent_messages(sim, to: str = USER) -> list[dict]:
    attempts = (await sim.messages())["attempts"]
    return [a for a in attempts if a["form"].get("To") == to and a["status_code"] == 201]


async def test_one_webhook_gets_exactly_one_reply_from_the_llm(stack, sim, llm, js) -> None:
    llm.reply("Yes, we open at nine tomorrow.")
    inbound = await sim.inbound(USER, NUMBER, body="Are you open tomorrow?")
    assert inbound["status_code"] == 200

    [call] = await eventually(lambda: sent_messages(sim))
    assert call["form"]["Body"] == "Yes, we open at nine tomorrow."
    assert call["form"]["From"] == NUMBER and call["account_sid"] == ACCOUNT
    await drained(js)  # redeliveries included: nothing else can happen now
    assert len(await sent_messages(sim)) == 1
    prompt = llm.requests()[-1]["messages"]
    assert prompt[0]["role"] == "system" and "clinic" in prompt[0]["content"]
    assert prompt[-1] == {"role": "user", "content": "Are you open tomorrow?"}


async def test_a_long_reply_goes_out_as_ordered_parts_never_cut_mid_word(stack, sim, llm
                                                                        ) -> None:
    words = [f"word{i:04d}" for i in range(445)]  # 445 x 9 chars ~ 4000 characters
    text = " ".join(words)
    llm.reply(text)
    await sim.inbound(USER, NUMBER, body="Tell me everything.")
    calls = await eventually(lambda: _at_least(sim, 3), timeout_s=30)
    bodies = [c["form"]["Body"] for c in calls]
    assert len(bodies) == 3 and all(len(b) <= 1600 for b in bodies)
    assert " ".join(bodies).split() == words  # in order, no word cut or lost


async def _at_least(sim, count: int) -> list[dict] | None:
    calls = await sent_messages(sim)
    return calls if len(calls) >= count else None


async def test_the_same_webhook_three_times_gets_one_reply(stack, sim, llm, js) -> None:
    inbound = await sim.inbound(USER, NUMBER, body="Hello?")
    await sim.redeliver(inbound["message_sid"])
    await sim.redeliver(inbound["message_sid"])
    await eventually(lambda: sent_messages(sim))
    await drained(js)
    assert len(await sent_messages(sim)) == 1
    assert len(llm.requests()) == 1


async def test_a_burst_while_the_llm_is_slow_is_answered_in_one_coalesced_turn(stack, sim,
                                                                              llm, js) -> None:
    llm.delay(2.0, count=1)
    await sim.inbound(USER, NUMBER, body="Hi")

    async def asked() -> bool:
        return bool(llm.requests())

    await eventually(asked)  # the first turn is with the (slow) LLM now
    await sim.inbound(USER, NUMBER, body="I need an appointment")
    await sim.inbound(USER, NUMBER, body="on Friday, please")
    [call] = await eventually(lambda: sent_messages(sim), timeout_s=30)
    await drained(js)
    assert len(await sent_messages(sim)) == 1  # the first turn's reply was stale: dropped
    last_prompt = llm.requests()[-1]["messages"]
    user_lines = [m["content"] for m in last_prompt if m["role"] == "user"]
    assert user_lines[-3:] == ["Hi", "I need an appointment", "on Friday, please"]
    assert call["form"]["Body"].startswith(MARKER)  # the LLM answered, not a fallback


async def test_llm_500_twice_then_ok_gives_one_reply(stack, sim, llm) -> None:
    llm.fail("500", count=2)
    llm.reply("Recovered answer.")
    await sim.inbound(USER, NUMBER, body="Hello")
    [call] = await eventually(lambda: sent_messages(sim))
    assert call["form"]["Body"] == "Recovered answer."


async def test_a_dead_llm_still_answers_with_the_fallback_and_records_the_failure(
    stack, sim, llm, js
) -> None:
    llm.fail("500", count=100)
    await sim.inbound(USER, NUMBER, body="Hello")
    [call] = await eventually(lambda: sent_messages(sim), timeout_s=30)
    assert "sorry" in call["form"]["Body"].lower()
    types = [e.type for e in await stream_events(js, "AGENT")]
    assert types == ["ReplyFailed", "ReplyGenerated"]


async def test_twilio_503_then_201_sends_once(stack, sim, llm, js) -> None:
    await sim.queue_failure("503", count=1)
    await sim.inbound(USER, NUMBER, body="Hello")
    await eventually(lambda: sent_messages(sim))
    await drained(js)
    attempts = [a for a in (await sim.messages())["attempts"] if a["form"].get("To") == USER]
    assert [a["status_code"] for a in attempts] == [503, 201]


async def test_an_invalid_number_fails_without_retrying(stack, sim, llm, js) -> None:
    await sim.queue_failure("21211", count=1)
    await sim.inbound(USER, NUMBER, body="Hello")

    async def failed():
        return [e for e in await stream_events(js, "SENDER")
                if e.type == "OutboundMessageFailed"]

    [event] = await eventually(failed)
    assert event.data["error_code"] == "21211" and not event.data["retryable"]
    await drained(js)
    attempts = [a for a in (await sim.messages())["attempts"] if a["form"].get("To") == USER]
    assert len(attempts) == 1


class DiesOnceTwilioTookIt:
    """The Messages API, except that the first send's handler dies the moment Twilio answered
    201: before the sender records the MessageSid or acks its ``ReplyGenerated``, the window a
    killed sender leaves behind (docs/adr/0008)."""

    def __init__(self, api: MessagesApi) -> None:
        self._api = api
        self.died = asyncio.Event()

    async def create(self, credentials: Credentials, *, to: str, from_: str, body: str,
                     status_callback: str | None) -> str:
        sid = await self._api.create(credentials, to=to, from_=from_, body=body,
                                     status_callback=status_callback)
        if not self.died.is_set():
            self.died.set()
            # Ends the handler's task like a kill would: no record, no ack, no nak (the
            # consumer only catches Exception).
            raise asyncio.CancelledError
        return sid

    async def find(self, credentials: Credentials, *, to: str, from_: str, body: str,
                   since: datetime, exclude: set[str]) -> list[str]:
        return await self._api.find(credentials, to=to, from_=from_, body=body, since=since,
                                    exclude=exclude)

    async def aclose(self) -> None:
        await self._api.aclose()


async def test_a_sender_killed_after_twilio_took_a_part_does_not_send_it_again(
        stack, sim, llm, js, monkeypatch) -> None:
    # A dead handler's event comes back after ack_wait (60 s in production): shorter here.
    monkeypatch.setenv("SB_CONSUMER_SENDER_REPLIES_ACK_WAIT_S", "2")
    words = [f"word{i:04d}" for i in range(200)]  # ~1800 characters: two parts
    llm.reply(" ".join(words))
    assert stack.sender is not None
    await stack.sender.stop()  # replaced by one that dies in the middle of part 1
    settings = stack.sender_settings()
    api = DiesOnceTwilioTookIt(TwilioMessages(settings.twilio_api_base_url,
                                              settings.twilio_timeout_s))
    async with build_sender(settings, api=api).running():
        await sim.inbound(USER, NUMBER, body="Tell me everything.")
        await eventually(api.died.is_set, what="the sender died after Twilio took part 1")
    assert len(await sent_messages(sim)) == 1  # Twilio has part 1; the sender recorded nothing

    async with build_sender(stack.sender_settings()).running():  # the restart
        await eventually(lambda: _at_least(sim, 2), timeout_s=30)
        await drained(js)  # the redelivered ReplyGenerated included

    calls = await sent_messages(sim)
    assert len(calls) == 2  # one Messages API call per part: part 1 was found, not resent
    assert " ".join(c["form"]["Body"] for c in calls).split() == words
    sent = [e for e in await stream_events(js, "SENDER") if e.type == "OutboundMessageSent"]
    assert sorted(e.data["part"] for e in sent) == [1, 2]
    assert {e.data["message_sid"] for e in sent} == {c["message_sid"] for c in calls}


async def test_one_trace_and_one_correlation_id_from_webhook_to_delivery(stack, sim, llm,
                                                                          js) -> None:
    provider = configure_tracing("e2e", None)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inbound = await sim.inbound(USER, NUMBER, body="Trace me")
    await eventually(lambda: sent_messages(sim))

    async def delivered():
        return [e for e in await stream_events(js, "GATEWAY")
                if e.type == "DeliveryStatusReported" and e.data["status"] == "delivered"]

    await eventually(delivered)
    sid = inbound["message_sid"]
    events = [e for stream in ("GATEWAY", "CONVERSATION", "AGENT", "SENDER")
              for e in await stream_events(js, stream)]
    assert {e.correlation_id for e in events} == {sid}
    kinds = {e.type for e in events}
    assert {"InboundMessageReceived", "ReplyRequested", "ReplyGenerated", "OutboundMessageSent",
            "DeliveryStatusReported"} <= kinds

    spans = exporter.get_finished_spans()
    webhook = [s for s in spans if s.attributes.get("switchboard.correlation_id") == sid
               and s.name == "publish InboundMessageReceived"]
    trace_id = webhook[0].context.trace_id
    in_trace = {s.name for s in spans if s.context.trace_id == trace_id}
    for hop in ("process InboundMessageReceived", "process ReplyRequested",
                "process ReplyGenerated", "publish ReplyGenerated"):
        assert hop in in_trace, (hop, sorted(in_trace))
