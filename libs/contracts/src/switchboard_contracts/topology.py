"""Which stream each service owns and the subjects its events go to.

Each service publishes only to its own stream (subjects prefixed by its name); others read it.
The runtime creates these streams idempotently at start-up and applies the SRE's overrides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    description: str
    # Event logs keep everything for every consumer (limits retention); the defaults are
    # what a production deployment starts from, overridable per stream by environment.
    max_age_days: float = 30.0
    duplicate_window_s: float = 120.0
    # Durable timers (scheduled messages, server 2.12+). Once on, the server refuses to turn
    # it off, so it is part of the stream's definition wherever the stream is created.
    allow_msg_schedules: bool = False
    # Atomic batch publish (ADR-50, server 2.12+): one decision's events stored whole or not.
    allow_atomic: bool = False


GATEWAY = StreamSpec("GATEWAY", ("gateway.>",), "Facts accepted at the Twilio edge")
DEADLETTER = StreamSpec(
    "DEADLETTER",
    ("deadletter.>",),
    "Events a consumer gave up on, with the consumer, delivery count and last error",
    max_age_days=90.0,
)
ADVISORIES = StreamSpec(
    "ADVISORIES",
    ("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",),
    "Server advisories for messages that ran out of deliveries without an answer",
    max_age_days=7.0,
)

CONVERSATION = StreamSpec(
    "CONVERSATION", ("conversation.>",),
    "Conversation aggregates, one subject tree per conversation",
    max_age_days=365.0, allow_msg_schedules=True, allow_atomic=True,
)
TRANSCRIPTION = StreamSpec("TRANSCRIPTION", ("transcription.>",), "Transcripts of voice notes")
AGENT = StreamSpec("AGENT", ("agent.>",), "Replies the agent generated or failed to generate")
SENDER = StreamSpec("SENDER", ("sender.>",), "Outbound messages: attempts, sends, statuses",
                    allow_msg_schedules=True)

ALL_STREAMS: tuple[StreamSpec, ...] = (
    GATEWAY, CONVERSATION, TRANSCRIPTION, AGENT, SENDER, DEADLETTER, ADVISORIES,
)


def event_subject(service: str, event_type: str, key: str | None = None) -> str:
    """``<service>.<EventType>`` or, for per-aggregate subjects, ``<service>.<key>.<EventType>``."""
    return f"{service}.{key}.{event_type}" if key else f"{service}.{event_type}"


def deadletter_subject(stream: str, consumer: str) -> str:
    return f"deadletter.{stream}.{consumer}"


def conversation_id_for(tenant_id: str, user_address: str) -> str:
    """A conversation's id: stable per tenant and user, and free of the phone number (it
    appears in subjects)."""
    digest = hashlib.sha256(f"{tenant_id}|{user_address}".encode()).hexdigest()
    return "cv" + digest[:32]


# Arrival order across replicas (invariant 12, ADR 0017). The gateway publishes each user
# message on its conversation's partition, ``gateway.<partition>.InboundMessageReceived``
# (the type stays the last token, as for every event); the conversation service reads each
# partition with its own durable consumer allowing one unacknowledged message, so whatever
# the number of replicas, one conversation's messages are handled one at a time, in the
# order the gateway stored them. Changing the count moves conversations between partitions:
# drain the inbound consumers first.
INBOUND_PARTITIONS = 16
INBOUND_TYPE = "InboundMessageReceived"


def inbound_partition(conversation_id: str) -> int:
    """A stable hash (the same in every process and release), modulo the partition count."""
    digest = hashlib.sha256(conversation_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % INBOUND_PARTITIONS


def inbound_subject(tenant_id: str, user_address: str) -> str:
    """Where the gateway stores a user's message: its conversation's partition."""
    partition = inbound_partition(conversation_id_for(tenant_id, user_address))
    return event_subject("gateway", INBOUND_TYPE, key=str(partition))
