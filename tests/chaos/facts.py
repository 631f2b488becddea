"""What the checks look at, as plain data: what the load sent, what the streams hold, what the
Twilio simulator saw. Built from the real sources by ``collect.py``; built by hand in the
checks' unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Sent:
    """One webhook the load generator had the simulator deliver (a redelivery reuses the sid)."""

    sid: str
    user: str
    kind: str  # text, voice, burst, redelivery; stop, start, handoff (the keywords)
    status: int | None  # the gateway's final answer (None: no answer)
    at_s: float  # seconds since the load started


@dataclass(frozen=True, slots=True)
class UserMessage:
    """``UserMessageAppended``: a message the conversation took in, at stream sequence ``seq``."""

    conversation_id: str
    message_sid: str
    turn: int
    seq: int


@dataclass(frozen=True, slots=True)
class Answer:
    """``AssistantMessageAppended``: the reply (or fallback) a turn ended with."""

    conversation_id: str
    turn: int
    fallback: bool
    reply_event_id: str
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Supersession:
    """``ReplySuperseded``: the turn's messages are answered by ``next_turn``."""

    conversation_id: str
    turn: int
    next_turn: int
    seq: int = 0


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """``ReplyRequested``: the conversation asks the agent to answer ``message_sids``."""

    conversation_id: str
    turn: int
    seq: int
    message_sids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PeopleEvent:
    """A change of who answers or whether anything may be sent (ADR 0022):
    ``HandoffRequested``, ``HandoffClaimed``, ``HandoffReleased``, ``UserOptedOut``,
    ``UserOptedIn``."""

    conversation_id: str
    seq: int
    type: str
    source: str | None = None  # HandoffRequested: user, agent or operator


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """``OutboundMessageRequested``: something the conversation itself asks the sender for (a
    notice, an operator's message, a template); its event id is the sender's subject key."""

    conversation_id: str
    event_id: str
    seq: int
    kind: str  # notice, operator, template
    purpose: str  # handoff_requested, opted_out, opted_in, operator_reply, ...
    turn: int
    command_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """``OutboundReplyAccepted``: the sender's parts for one reply, or for one
    ``OutboundRequest`` (``kind`` set)."""

    reply_id: str  # the ReplyGenerated or OutboundMessageRequested event id (subject key)
    correlation_id: str
    to: str
    turn: int
    texts: tuple[str, ...]
    kind: str | None = None  # None: the agent's reply
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class PartOutcome:
    """``OutboundMessageSent`` (``message_sid`` set) or ``OutboundMessageFailed`` (``reason``)."""

    reply_id: str
    part: int  # 1-based
    message_sid: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ApiSend:
    """A Messages API call that created a message, in the order the simulator took them."""

    message_sid: str
    to: str
    body: str
    correlation_id: str | None  # from the StatusCallback URL's query


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    stream: str
    consumer: str
    subject: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Poison:
    """An event injected on purpose: its bytes, and where it went."""

    stream: str
    subject: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """A command the load gave as an operator (through the operator API or straight over NATS
    request-reply), in the order it gave them. ``accepted`` None: no answer came."""

    user: str
    command: str  # claim, take_over, reply, release
    command_id: str
    accepted: bool | None
    reason: str | None = None
    text: str = ""  # a reply's text (unique)
    via: str = "api"  # api or nats


@dataclass
class Facts:
    sent: list[Sent] = field(default_factory=list)
    user_messages: list[UserMessage] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    supersessions: list[Supersession] = field(default_factory=list)
    requests: list[TurnRequest] = field(default_factory=list)
    people: list[PeopleEvent] = field(default_factory=list)
    outbound: list[OutboundRequest] = field(default_factory=list)
    operator_actions: list[OperatorAction] = field(default_factory=list)
    plans: list[ReplyPlan] = field(default_factory=list)
    outcomes: list[PartOutcome] = field(default_factory=list)
    attempts: list[tuple[str, int]] = field(default_factory=list)  # (reply id, part) per call
    api_sends: list[ApiSend] = field(default_factory=list)
    dead_letters: list[DeadLetterRecord] = field(default_factory=list)
    poisons: list[Poison] = field(default_factory=list)
    # Durable consumers of each stream a poison went to, with their filter subjects.
    consumers: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    conversation_of: dict[str, str] = field(default_factory=dict)  # user address -> id
