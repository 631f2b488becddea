"""The turn's start on ReplyRequested: when the gateway accepted its earliest user message.

In-process (no NATS): the domain decides, the state folds what it decided."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from conversation.policy import policy_of
from conversation.rules import Step, decide_inbound, decide_reply, decide_turn_deadline
from conversation.state import ConversationState, apply
from switchboard_contracts import Envelope
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import ReplyRequested, TurnDeadlineDue
from switchboard_contracts.events.gateway import InboundMessageReceived

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = policy_of(None)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _drive(state: ConversationState, decide: Callable[[], Step | None]) -> list[ReplyRequested]:
    """Fold every step the input leads to (each decision sees the last one folded); return the
    reply requests among them."""
    requests = []
    for _ in range(5):
        step = decide()
        if step is None:
            break
        apply(state, Envelope.wrap(step.data, correlation_id="c"), step.data)
        if isinstance(step.data, ReplyRequested):
            requests.append(step.data)
    return requests


def _arrive(state: ConversationState, sid: str, received_at: datetime) -> list[ReplyRequested]:
    msg = InboundMessageReceived(message_sid=sid, account_sid="AC1", from_address="whatsapp:+1",
                                 to_address="whatsapp:+2", body="hola")
    return _drive(state, lambda: decide_inbound(state, msg, received_at, policy=POLICY,
                                                context_size=10))


def _reply(state: ConversationState, turn: int) -> list[ReplyRequested]:
    reply = ReplyGenerated(turn=turn, text="ok", model="m", user_address="u",
                           business_address="b", account_sid="AC1")
    return _drive(state, lambda: decide_reply(state, reply, "r", policy=POLICY, now=T0,
                                                  context_size=10))


def _deadline(state: ConversationState, turn: int) -> list[ReplyRequested]:
    due = TurnDeadlineDue(turn=turn)
    return _drive(state, lambda: decide_turn_deadline(state, due, context_size=10))


# Each case: the inputs in order, then (turn, expected turn_started_at) of the requests made.
CASES = {
    "one message: its own arrival": (
        [("msg", "SM1", at(0))], [(1, at(0))]),
    "a burst while a reply is in flight: the earliest waiting message": (
        [("msg", "SM1", at(0)), ("msg", "SM2", at(5)), ("msg", "SM3", at(3)), ("reply", 1)],
        [(1, at(0)), (2, at(3))]),
    "an overdue turn with messages waiting: the next turn starts at the earliest of them": (
        [("msg", "SM1", at(0)), ("msg", "SM2", at(4)), ("deadline", 1)],
        [(1, at(0)), (2, at(4))]),
    "the deadline's fallback turn: the overdue turn's start": (
        [("msg", "SM1", at(7)), ("deadline", 1)], [(1, at(7)), (2, at(7))]),
}


@pytest.mark.parametrize("inputs, expected", CASES.values(), ids=CASES.keys())
def test_turn_started_at_is_the_earliest_message_the_turn_answers(
    inputs: list[tuple], expected: list[tuple[int, datetime]]
) -> None:
    state = ConversationState()
    requests: list[ReplyRequested] = []
    for kind, *args in inputs:
        if kind == "msg":
            requests += _arrive(state, *args)
        elif kind == "reply":
            requests += _reply(state, *args)
        else:
            requests += _deadline(state, *args)
    assert [(r.turn, r.turn_started_at) for r in requests] == expected
