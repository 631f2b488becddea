"""``Facts`` from the real sources: the streams (read whole, oldest first) and the Twilio
simulator's record of Messages API calls; and the lag of every durable consumer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from switchboard_contracts import Envelope
from switchboard_contracts.deadletter import DeadLetter
from switchboard_contracts.topology import (
    ALL_STREAMS,
    CONVERSATION,
    DEADLETTER,
    SENDER,
    conversation_id_for,
)
from twilio_sim.client import SimClient

from .facts import (
    Answer,
    ApiSend,
    DeadLetterRecord,
    Facts,
    OperatorAction,
    OutboundRequest,
    PartOutcome,
    PeopleEvent,
    Poison,
    ReplyPlan,
    Sent,
    Supersession,
    TurnRequest,
    UserMessage,
)

PEOPLE_EVENTS = frozenset({"HandoffRequested", "HandoffClaimed", "HandoffReleased",
                           "UserOptedOut", "UserOptedIn"})


@dataclass(frozen=True, slots=True)
class Stored:
    subject: str
    seq: int
    data: bytes


async def read_stream(js: JetStreamContext, stream: str) -> list[Stored]:
    """Every message of ``stream`` but the durable timers' schedules, through an ephemeral
    consumer deleted at the end."""
    sub = await js.pull_subscribe(">", stream=stream, config=ConsumerConfig(
        deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=30.0,
        mem_storage=True))
    stored: list[Stored] = []
    consumer: str | None = None
    try:
        info = await sub.consumer_info()
        consumer, remaining = info.name, info.num_pending or 0
        while remaining > 0:
            for msg in await sub.fetch(min(remaining, 512), timeout=10.0):
                remaining = msg.metadata.num_pending
                if not (msg.headers and "Nats-Schedule" in msg.headers):
                    stored.append(Stored(msg.subject, msg.metadata.sequence.stream, msg.data))
        return stored
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        if consumer is not None:
            with contextlib.suppress(Exception):  # else its inactivity threshold removes it
                await js.delete_consumer(stream, consumer)


def _envelopes(stored: Iterable[Stored]) -> Iterable[tuple[Stored, Envelope]]:
    for message in stored:
        with contextlib.suppress(ValueError):  # poison, or a malformed event: not ours to read
            yield message, Envelope.from_bytes(message.data)


def conversation_facts(facts: Facts, stored: list[Stored]) -> None:
    for message, event in _envelopes(stored):
        conversation, data = event.conversation_id or message.subject.split(".")[1], event.data
        if event.type == "UserMessageAppended":
            facts.user_messages.append(UserMessage(conversation, data["message_sid"],
                                                   data["turn"], message.seq))
        elif event.type == "AssistantMessageAppended":
            facts.answers.append(Answer(conversation, data["turn"], data.get("fallback", False),
                                        str(data["reply_event_id"]), message.seq))
        elif event.type == "ReplySuperseded":
            facts.supersessions.append(Supersession(conversation, data["turn"],
                                                    data["next_turn"], message.seq))
        elif event.type == "ReplyRequested":
            facts.requests.append(TurnRequest(conversation, data["turn"], message.seq,
                                              tuple(data["message_sids"])))
        elif event.type in PEOPLE_EVENTS:
            facts.people.append(PeopleEvent(conversation, message.seq, event.type,
                                            data.get("source")))
        elif event.type == "OutboundMessageRequested":
            facts.outbound.append(OutboundRequest(
                conversation, str(event.event_id), message.seq, data["kind"], data["purpose"],
                data["turn"], data.get("command_id")))


def sender_facts(facts: Facts, stored: list[Stored]) -> None:
    for message, event in _envelopes(stored):
        reply_id, data = message.subject.split(".")[1], event.data
        if event.type == "OutboundReplyAccepted":
            facts.plans.append(ReplyPlan(reply_id, event.correlation_id, data["to_address"],
                                         data["turn"], tuple(data["texts"]),
                                         data.get("kind"), data.get("purpose")))
        elif event.type == "OutboundPartAttempted":
            facts.attempts.append((reply_id, data["part"]))
        elif event.type == "OutboundMessageSent":
            facts.outcomes.append(PartOutcome(reply_id, data["part"], data["message_sid"]))
        elif event.type == "OutboundMessageFailed":
            facts.outcomes.append(PartOutcome(reply_id, data["part"], reason=data["reason"]))


def dead_letter_facts(facts: Facts, stored: list[Stored]) -> None:
    for message in stored:
        record = DeadLetter.model_validate_json(message.data)
        facts.dead_letters.append(DeadLetterRecord(record.stream, record.consumer,
                                                   record.subject, record.payload))


def api_sends(messages: dict[str, object]) -> list[ApiSend]:
    """The create calls that made a message, in the order the simulator took them."""
    sends = []
    for attempt in messages["attempts"]:  # type: ignore[attr-defined]
        if not attempt.get("message_sid"):
            continue
        form = attempt["form"]
        callback = form.get("StatusCallback") or ""
        correlation = parse_qs(urlsplit(callback).query).get("correlation_id", [None])[0]
        sends.append(ApiSend(attempt["message_sid"], form.get("To", ""), form.get("Body", ""),
                             correlation))
    return sends


async def durable_consumers(js: JetStreamContext, stream: str) -> dict[str, tuple[str, ...]]:
    """The stream's durable consumers and their filter subjects."""
    found = {}
    for info in await js.consumers_info(stream):
        config = info.config
        if config.durable_name:
            filters = tuple(config.filter_subjects or ()) or (
                (config.filter_subject,) if config.filter_subject else ())
            found[config.durable_name] = filters
    return found


async def lag(js: JetStreamContext) -> dict[str, int]:
    """Per durable consumer, messages not yet delivered plus those not yet acknowledged."""
    behind = {}
    for spec in ALL_STREAMS:
        with contextlib.suppress(Exception):  # a stream no service created in this run
            for info in await js.consumers_info(spec.name):
                if info.config.durable_name:
                    behind[f"{spec.name}/{info.name}"] = ((info.num_pending or 0)
                                                          + (info.num_ack_pending or 0))
    return behind


async def collect(js: JetStreamContext, sim: SimClient, sent: list[Sent],
                  poisons: list[Poison], tenant_id: str,
                  operator_actions: Iterable[OperatorAction] = ()) -> Facts:
    facts = Facts(sent=list(sent), poisons=list(poisons),
                  operator_actions=list(operator_actions))
    conversation_facts(facts, await read_stream(js, CONVERSATION.name))
    sender_facts(facts, await read_stream(js, SENDER.name))
    dead_letter_facts(facts, await read_stream(js, DEADLETTER.name))
    facts.api_sends = api_sends(await sim.messages())
    for stream in {p.stream for p in poisons}:
        facts.consumers[stream] = await durable_consumers(js, stream)
    facts.conversation_of = {s.user: conversation_id_for(tenant_id, s.user) for s in sent}
    return facts
