"""Who produces and who consumes each event, and which events are contracts between teams.

A *public* event is read by another team's service: its schema is a contract, documented in
``docs/events.md`` and ``docs/asyncapi.yaml`` and checked against its last released schema
(``libs/contracts/schemas/released``) by ``make lint``. A *private* event is read only by the
service that produces it (an aggregate's internal fact, a timer): it may change freely.

Every registered event must have an entry in ``USAGE``: adding an event means deciding who
reads it and whether it is public, and the generator refuses an event without that decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from . import events  # noqa: F401  (importing it registers every event)
from .envelope import EventData
from .registry import Registry, registry
from .topology import ALL_STREAMS, StreamSpec


@dataclass(frozen=True, slots=True)
class Usage:
    # Services that read the payload (the projection's timeline, which keeps only the
    # envelope of every event, does not count).
    consumers: tuple[str, ...]
    public: bool = True


# The subject each producer publishes an event on (``<Type>`` is the event's type name).
SUBJECTS: dict[str, str] = {
    "gateway": "gateway.<Type>",
    "conversation": "conversation.<conversation_id>.<Type>",
    "transcription": "transcription.<Type>",
    "agent": "agent.<Type>",
    "sender": "sender.<reply_event_id>.<Type>",
}

# Events published on another subject than their producer's rule.
EVENT_SUBJECTS: dict[str, str] = {
    # partitioned by conversation, for arrival order across replicas (topology, ADR 0017)
    "InboundMessageReceived": "gateway.<partition>.<Type>",
}

USAGE: dict[str, Usage] = {
    # gateway
    "InboundMessageReceived": Usage(("conversation", "projection")),
    "DeliveryStatusReported": Usage(("sender", "projection")),
    "OrphanedMessageReceived": Usage(("projection",)),
    # conversation: its stream is private, except what the others are asked to do
    # (ReplyRequested, TranscriptionRequested) and what the projection's read models read.
    "ConversationStarted": Usage(("projection",)),
    "UserMessageAppended": Usage(("projection",)),
    "TranscriptionRequested": Usage(("transcription", "projection")),
    "TranscriptAppended": Usage(("projection",)),
    "ReplyRequested": Usage(("agent",)),
    # (the sender learns of accepted replies from the view's accepted_replies: ADR 0014)
    "AssistantMessageAppended": Usage(("conversation",), public=False),
    "ReplySuperseded": Usage(("conversation",), public=False),
    "ConversationClosed": Usage(("projection",)),
    "IdleCheckDue": Usage(("conversation",), public=False),
    "TurnDeadlineDue": Usage(("conversation",), public=False),
    "TranscriptDeadlineDue": Usage(("conversation",), public=False),
    # people in the loop (ADR 0022): the sender sends what the conversation asks; the
    # projection shows the mode and the opt-out; the sender tells the tenant of handoffs.
    "HandoffRequested": Usage(("sender", "projection")),
    "HandoffClaimed": Usage(("sender", "projection")),
    "HandoffReleased": Usage(("sender", "projection")),
    "HandoffExpired": Usage(("sender", "projection")),
    "HandoffDeadlineDue": Usage(("conversation",), public=False),
    "UserOptedOut": Usage(("projection",)),
    "UserOptedIn": Usage(("projection",)),
    "OutboundMessageRequested": Usage(("sender", "projection")),
    # transcription
    "TranscriptionCompleted": Usage(("conversation", "projection")),
    "TranscriptionFailed": Usage(("conversation", "projection")),
    # agent (a ReplyFailed is always followed by a ReplyGenerated with the fallback text;
    # it is public for operators' tools and dashboards even though no service reads it yet)
    "ReplyGenerated": Usage(("conversation", "sender", "projection")),
    "ReplyFailed": Usage(()),
    # sender (it rebuilds a reply's state from the reply's own subject tree)
    "OutboundReplyAccepted": Usage(("sender", "projection")),
    "OutboundPartAttempted": Usage(("sender", "projection")),
    "OutboundMessageSent": Usage(("sender", "projection")),
    "OutboundMessageFailed": Usage(("sender", "projection")),
    "DeliveryStatusApplied": Usage(("sender", "projection")),
    "PartTimeoutDue": Usage(("sender",), public=False),
}

# The order services and their streams appear in the generated documents.
PRODUCERS: tuple[str, ...] = tuple(SUBJECTS)


class Undeclared(LookupError):
    """A registered event has no entry in ``USAGE`` (or a producer no entry in ``SUBJECTS``)."""


@dataclass(frozen=True, slots=True)
class Contract:
    """One event as the catalogue documents it."""

    model: type[EventData]
    producer: str
    stream: StreamSpec
    subject: str
    usage: Usage

    @property
    def name(self) -> str:
        return self.model.TYPE

    @property
    def public(self) -> bool:
        return self.usage.public


def producer_of(model: type[EventData]) -> str:
    """Each service's events live in ``events/<service>.py``."""
    return model.__module__.rsplit(".", 1)[-1]


def _stream_of(producer: str) -> StreamSpec:
    for spec in ALL_STREAMS:
        if spec.name == producer.upper():
            return spec
    raise Undeclared(f"no stream for producer {producer!r}")


def contracts(source: Registry = registry) -> Iterator[Contract]:
    """Every registered event, grouped by producer in ``PRODUCERS`` order."""
    # A stable sort: within a producer, events keep their order of definition.
    for model in sorted(source, key=lambda m: _producer_rank(producer_of(m))):
        producer = producer_of(model)
        usage = USAGE.get(model.TYPE)
        if usage is None:
            raise Undeclared(
                f"{model.TYPE} is not in switchboard_contracts.catalogue.USAGE: declare which "
                "services read it and whether it is public"
            )
        subject = EVENT_SUBJECTS.get(model.TYPE, SUBJECTS[producer]).replace("<Type>", model.TYPE)
        yield Contract(model, producer, _stream_of(producer), subject, usage)


def _producer_rank(producer: str) -> int:
    if producer not in SUBJECTS:
        raise Undeclared(f"producer {producer!r} has no subject in catalogue.SUBJECTS")
    return PRODUCERS.index(producer)
