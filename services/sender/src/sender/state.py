"""An outbound message's durable state, folded from its subject tree ``sender.<id>.>``, and
the decision of what to do next (pure).

The tree is the agent's reply (keyed by its ReplyGenerated event id) or a message the
conversation asked for (keyed by its OutboundMessageRequested event id, ``kind`` set); both
are called a reply here, and both go out the same way."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from switchboard_contracts import Envelope, EventData, registry
from switchboard_contracts.events.sender import (
    DeliveryStatusApplied,
    OutboundMessageFailed,
    OutboundMessageSent,
    OutboundPartAttempted,
    OutboundReplyAccepted,
)

from .rules import FAILED_STATUSES, releases_next_part


def reply_tree(reply_id: str) -> str:
    return f"sender.{reply_id}.>"


def reply_subject(reply_id: str, event_type: str) -> str:
    return f"sender.{reply_id}.{event_type}"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempt: int
    at: datetime
    caused_by: uuid.UUID | None  # the event whose handling made the call


@dataclass
class PartState:
    number: int
    attempts: list[AttemptRecord] = field(default_factory=list)
    message_sid: str | None = None
    sent_at: datetime | None = None
    status: str | None = None
    status_error: str | None = None
    failed: str | None = None  # reason

    @property
    def done(self) -> bool:
        return self.message_sid is not None or self.failed is not None

    @property
    def unresolved_attempt(self) -> AttemptRecord | None:
        """The last attempt, when nothing says whether it created a message."""
        return self.attempts[-1] if self.attempts and not self.done else None


@dataclass
class ReplyState:
    reply_id: str
    accepted: Envelope | None = None  # the first event: what later events are caused by
    acceptance: OutboundReplyAccepted | None = None  # its typed payload
    turn: int = 0
    texts: list[str] = field(default_factory=list)
    to_address: str = ""
    from_address: str = ""
    account_sid: str = ""
    kind: str | None = None  # None: the agent's reply; else notice, operator or template
    purpose: str | None = None
    after: str | None = None  # the outbound message that goes out before this one
    media_url: str | None = None  # with part 1
    content_sid: str | None = None  # a template: sent with its variables instead of a body
    content_variables: dict[str, str] = field(default_factory=dict)
    request_seq: int = 0  # a request's stream sequence: checked against a view this new
    parts: dict[int, PartState] = field(default_factory=dict)
    version: int = 0

    @property
    def count(self) -> int:
        return len(self.texts)

    def part(self, number: int) -> PartState:
        return self.parts.setdefault(number, PartState(number))

    def by_sid(self, message_sid: str) -> PartState | None:
        return next((p for p in self.parts.values() if p.message_sid == message_sid), None)

    def sids(self) -> set[str]:
        return {p.message_sid for p in self.parts.values() if p.message_sid}

    @property
    def finished(self) -> bool:
        if any(p.failed for p in self.parts.values()):
            return True
        return all(self.part(n).message_sid for n in range(1, self.count + 1))


def apply(state: ReplyState, envelope: Envelope, data: EventData, seq: int) -> ReplyState:
    """Fold one event in (``data``: its typed payload, decoded by the registry); other types
    (a fired timer) only move the version."""
    state.version = max(state.version, seq)
    match data:
        case OutboundReplyAccepted():
            state.accepted, state.acceptance = envelope, data
            state.turn, state.texts = data.turn, list(data.texts)
            state.to_address, state.from_address = data.to_address, data.from_address
            state.account_sid = data.account_sid
            state.kind, state.purpose, state.after = data.kind, data.purpose, data.after
            state.media_url, state.content_sid = data.media_url, data.content_sid
            state.content_variables = dict(data.content_variables)
            state.request_seq = data.request_seq or 0
        case OutboundPartAttempted():
            state.part(data.part).attempts.append(AttemptRecord(
                data.attempt, data.attempted_at or envelope.occurred_at, envelope.causation_id))
        case OutboundMessageSent():
            part = state.part(data.part)
            if part.message_sid is None:
                part.message_sid = data.message_sid
                part.sent_at = envelope.occurred_at
        case OutboundMessageFailed():
            part = state.part(data.part)
            part.failed = part.failed or data.reason
        case DeliveryStatusApplied():
            found = state.by_sid(data.message_sid)
            if found is not None:
                found.status, found.status_error = data.status, data.error_code
    return state


def fold(reply_id: str, events: Iterable[tuple[Envelope, int]]) -> ReplyState:
    """State from ``(envelope, stream sequence)`` pairs in stream order, each typed by the
    registry (as the conversation folds its own: ``registry.decode``)."""
    state = ReplyState(reply_id)
    for envelope, seq in events:
        if envelope.type in registry:
            apply(state, envelope, registry.decode(envelope).data, seq)
        else:
            state.version = max(state.version, seq)
    return state


# -- what to do next --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Done:
    pass


@dataclass(frozen=True, slots=True)
class Wait:
    """Part ``after`` is out; the next one waits for its callback or ``due_at``."""

    after: int
    due_at: datetime


@dataclass(frozen=True, slots=True)
class InFlight:
    """Another handler's call for this part is under way: it owns the outcome."""

    part: int


@dataclass(frozen=True, slots=True)
class FailRest:
    part: int
    reason: str
    error_code: str | None


@dataclass(frozen=True, slots=True)
class Send:
    part: int
    # An earlier attempt may have created the message: look it up before calling again.
    recover: bool


Action = Done | Wait | InFlight | FailRest | Send


def next_action(
    state: ReplyState, *, now: datetime, trigger: uuid.UUID, part_timeout: timedelta,
    in_flight_guard: timedelta, timer_fired_after: int | None = None,
) -> Action:
    if state.accepted is None or state.finished:
        return Done()
    number = next(n for n in range(1, state.count + 1) if not state.part(n).done)
    if number > 1:
        previous = state.part(number - 1)
        if previous.status in FAILED_STATUSES:
            return FailRest(number, "previous_part_failed", previous.status_error)
        assert previous.sent_at is not None
        due = previous.sent_at + part_timeout
        if not (_out(previous, now, part_timeout) or timer_fired_after == number - 1):
            return Wait(number - 1, due)
    attempt = state.part(number).unresolved_attempt
    if attempt is None:
        return Send(number, recover=False)
    # Our own earlier delivery (it crashed or gave up), or one nobody finished: recover it.
    if attempt.caused_by == trigger or now - attempt.at > in_flight_guard:
        return Send(number, recover=True)
    return InFlight(number)


def _out(part: PartState, now: datetime, part_timeout: timedelta) -> bool:
    """Whatever follows a sent part may go: its ``sent`` callback came, or the timeout passed."""
    assert part.sent_at is not None
    return releases_next_part(part.status) or now >= part.sent_at + part_timeout


def gone_out(state: ReplyState, now: datetime, part_timeout: timedelta) -> bool:
    """Nothing more of this reply will go out, and what did is out as far as part order
    requires (``_out``): the next reply of its conversation may start."""
    if state.accepted is None or not state.finished:
        return False  # (an unknown reply: the holder's lease decides)
    if state.count == 0 or any(p.failed for p in state.parts.values()):
        return True
    return _out(state.part(state.count), now, part_timeout)
