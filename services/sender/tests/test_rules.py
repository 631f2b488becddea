"""Domain rules as plain functions: splitting, status ranks, error classes, decisions."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sender.rules import ErrorClass, classify, refusal, status_applies
from sender.splitting import BODY_LIMIT, split_message
from sender.state import Done, FailRest, InFlight, Send, Wait, fold, gone_out, next_action
from switchboard_contracts import Envelope
from switchboard_contracts.conversation_view import ConversationView, Mode
from switchboard_contracts.events.sender import (
    DeliveryStatusApplied,
    OutboundMessageFailed,
    OutboundMessageSent,
    OutboundPartAttempted,
    OutboundReplyAccepted,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _prose(chars: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < chars:
        word = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 11)))
        if rng.random() < 0.1:
            word += "."
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars].rstrip() + "."


def test_4000_characters_make_3_ordered_parts_none_cut_mid_word() -> None:
    text = _prose(4000)
    parts = split_message(text)
    assert len(parts) == 3
    assert all(0 < len(p) <= BODY_LIMIT for p in parts)
    assert " ".join(parts).split() == text.split()  # in order, nothing lost, no word split
    words = set(text.split())
    for part in parts:
        assert part.split()[0] in words and part.split()[-1] in words


def test_paragraph_breaks_are_preferred_then_sentences() -> None:
    first = "A" * 900 + " one. " + "b" * 500 + " two."
    second = "c" * 800 + "."
    parts = split_message(first + "\n\n" + second)
    assert parts == [first, second]
    sentences = ("word " * 200).strip() + ". " + ("more " * 200).strip() + "."
    cut = split_message(sentences)
    assert cut[0].endswith(".") and len(cut) == 2


def test_only_a_single_word_longer_than_the_limit_is_cut() -> None:
    parts = split_message("hi " + "x" * 3500 + " bye")
    assert parts[0] == "hi"
    assert all(len(p) <= BODY_LIMIT for p in parts)
    assert "".join(p.replace(" ", "") for p in parts) == "hi" + "x" * 3500 + "bye"


def test_short_and_empty_texts() -> None:
    assert split_message("  hello  ") == ["hello"]
    assert split_message("") == []
    assert split_message("x" * BODY_LIMIT) == ["x" * BODY_LIMIT]


@pytest.mark.parametrize(("current", "new", "applies"), [
    (None, "sent", True), ("sent", "delivered", True), ("delivered", "read", True),
    ("read", "sent", False), ("read", "delivered", False), ("delivered", "sent", False),
    ("sent", "sent", False), ("sent", "failed", True), ("failed", "delivered", False),
    ("read", "failed", False), ("undelivered", "read", False), (None, "queued", True),
])
def test_statuses_apply_by_rank_never_backwards(current, new, applies) -> None:
    assert status_applies(current, new) is applies


def test_out_of_order_callbacks_end_at_read() -> None:
    current = None
    for status in ("delivered", "read", "sent"):
        if status_applies(current, status):
            current = status
    assert current == "read"


@pytest.mark.parametrize(("status", "code", "kind"), [
    (None, None, ErrorClass.TRANSIENT), (503, 20503, ErrorClass.TRANSIENT),
    (500, 20500, ErrorClass.TRANSIENT), (429, 20429, ErrorClass.TRANSIENT),
    (400, 21211, ErrorClass.PERMANENT), (400, 21614, ErrorClass.PERMANENT),
    (400, 63016, ErrorClass.PERMANENT), (400, 21617, ErrorClass.PERMANENT),
    (404, 20404, ErrorClass.PERMANENT), (401, 20003, ErrorClass.AUTH),
    (403, 20003, ErrorClass.AUTH),
])
def test_twilio_errors_are_classified(status, code, kind) -> None:
    assert classify(status, code) is kind


def _view(turn: int, last_message: datetime = NOW - timedelta(minutes=1), **fields: object
          ) -> ConversationView:
    """Turn ``turn`` requested and, unless said otherwise, its reply accepted."""
    values = {"window_ends_at": last_message + timedelta(hours=24), "answered_turn": turn,
              **fields}
    return ConversationView(conversation_id="c", tenant_id="t", version=9, turn=turn,
                            **values)  # type: ignore[arg-type]


# (view, the reply's turn, whether it is known accepted (its first part went out already, or
# the conversation's stream says so), the refusal)
@pytest.mark.parametrize(("view", "turn", "accepted", "refused"), [
    (_view(1), 1, False, None),
    (_view(2), 1, False, ("stale", None)),  # a newer turn's reply accepted: turn 1 is done
    (_view(1, turn_superseded=True, answered_turn=0), 1, False, ("stale", None)),
    (_view(2, answered_turn=0), 1, False, ("stale", None)),  # superseded, turn 2 requested
    # Turn 1 accepted and going out when turn 2 begins, is answered even: its parts go on.
    (_view(2, answered_turn=1), 1, False, None),
    (_view(2, answered_turn=1), 1, True, None),
    (_view(3), 1, True, None),
    (_view(1, opted_out=True), 1, False, ("opted_out", None)),
    (_view(1, mode=Mode.HUMAN), 1, True, ("human_mode", None)),
    (_view(1, NOW - timedelta(hours=25)), 1, False, ("outside_24h_window", "63016")),
    (_view(1, window_ends_at=None), 1, True, ("outside_24h_window", "63016")),
    (_view(2, opted_out=True), 1, False, ("stale", None)),
    (_view(2, opted_out=True), 1, True, ("opted_out", None)),
])
def test_refusals(view, turn, accepted, refused) -> None:
    found = refusal(view, turn, NOW, accepted=accepted)
    assert (found and (found.reason, found.error_code)) == refused


CLOSED = NOW - timedelta(hours=25)  # the user's last message: the window is closed


# What the conversation asks for, by kind and purpose, against the view; and the agent's reply
# (kind None) in each mode. A request is never stale: the conversation asked for it.
@pytest.mark.parametrize(("kind", "purpose", "view", "refused"), [
    (None, None, _view(1, mode=Mode.WAITING), ("human_mode", None)),
    (None, None, _view(1, mode=Mode.HUMAN, operator_id="ann"), ("human_mode", None)),
    (None, None, _view(1, mode=Mode.BOT), None),
    ("notice", "handoff_requested", _view(1, mode=Mode.WAITING), None),
    ("notice", "handoff_requested", _view(3, answered_turn=1), None),
    ("notice", "handoff_requested", _view(1, CLOSED), ("outside_24h_window", "63016")),
    ("notice", "handoff_expired", _view(1, opted_out=True), ("opted_out", None)),
    ("notice", "opted_out", _view(1, opted_out=True), None),  # the confirmation itself
    ("notice", "opted_out", _view(1, CLOSED, opted_out=True),
     ("outside_24h_window", "63016")),
    ("notice", "opted_in", _view(1), None),
    ("operator", "operator_reply", _view(1, mode=Mode.HUMAN, operator_id="ann"), None),
    ("operator", "operator_reply", _view(1, CLOSED, mode=Mode.HUMAN),
     ("outside_24h_window", "63016")),
    ("operator", "operator_reply", _view(1, window_ends_at=None),
     ("outside_24h_window", "63016")),
    ("operator", "operator_reply", _view(1, opted_out=True), ("opted_out", None)),
    ("operator", "opted_out", _view(1, opted_out=True), ("opted_out", None)),
    ("template", "template", _view(1, CLOSED), None),  # outside the window: what templates are for
    ("template", "template", _view(1, window_ends_at=None), None),
    ("template", "template", _view(1, mode=Mode.HUMAN), None),
    ("template", "template", _view(1, CLOSED, opted_out=True), ("opted_out", None)),
    ("template", "opted_out", _view(1, opted_out=True), ("opted_out", None)),
])
def test_refusals_by_kind(kind, purpose, view, refused) -> None:
    for accepted in (False, True):  # checked before every part alike
        found = refusal(view, 1, NOW, accepted=accepted, kind=kind, purpose=purpose)
        assert (found and (found.reason, found.error_code)) == refused


# -- decisions ---------------------------------------------------------------------------------
TRIGGER = uuid.uuid4()
TIMEOUT = timedelta(seconds=5)
GUARD = timedelta(seconds=120)


def _state(*events: tuple[object, uuid.UUID | None, datetime]) -> object:
    envelopes = []
    for seq, (data, cause, at) in enumerate(events, start=1):
        env = Envelope.wrap(data, correlation_id="c", causation_id=cause)  # type: ignore[arg-type]
        envelopes.append((env.model_copy(update={"occurred_at": at}), seq))
    return fold("r", envelopes)


ACCEPTED = (OutboundReplyAccepted(turn=1, texts=["a", "b"], to_address="u", from_address="b",
                                  account_sid="AC"), None, NOW)


def _attempted(part: int, cause: uuid.UUID, at: datetime) -> tuple[object, uuid.UUID, datetime]:
    return (OutboundPartAttempted(turn=1, part=part, parts=2, attempt=1, attempted_at=at),
            cause, at)


def _sent(part: int, at: datetime) -> tuple[object, None, datetime]:
    return (OutboundMessageSent(turn=1, part=part, parts=2, message_sid=f"SM{part}", text="x",
                                to_address="u", from_address="b"), None, at)


def _decide(state: object, now: datetime = NOW, fired: int | None = None) -> object:
    return next_action(state, now=now, trigger=TRIGGER, part_timeout=TIMEOUT,  # type: ignore[arg-type]
                       in_flight_guard=GUARD, timer_fired_after=fired)


def test_decisions_for_a_two_part_reply() -> None:
    assert _decide(_state(ACCEPTED)) == Send(1, recover=False)
    # Our own earlier delivery attempted and vanished: look it up, then send.
    assert _decide(_state(ACCEPTED, _attempted(1, TRIGGER, NOW))) == Send(1, recover=True)
    # Someone else is calling right now: leave it to them.
    assert _decide(_state(ACCEPTED, _attempted(1, uuid.uuid4(), NOW))) == InFlight(1)
    # ... unless that was long ago.
    old = _state(ACCEPTED, _attempted(1, uuid.uuid4(), NOW - timedelta(minutes=5)))
    assert _decide(old) == Send(1, recover=True)
    sent = _state(ACCEPTED, _attempted(1, TRIGGER, NOW), _sent(1, NOW))
    assert _decide(sent) == Wait(1, NOW + TIMEOUT)
    assert _decide(sent, fired=1) == Send(2, recover=False)
    assert _decide(sent, now=NOW + TIMEOUT) == Send(2, recover=False)
    released = _state(ACCEPTED, _attempted(1, TRIGGER, NOW), _sent(1, NOW),
                      (DeliveryStatusApplied(message_sid="SM1", status="sent"), None, NOW))
    assert _decide(released) == Send(2, recover=False)
    failed = _state(ACCEPTED, _attempted(1, TRIGGER, NOW), _sent(1, NOW),
                    (DeliveryStatusApplied(message_sid="SM1", status="failed",
                                           error_code="63016"), None, NOW))
    assert _decide(failed) == FailRest(2, "previous_part_failed", "63016")
    done = _state(ACCEPTED, _sent(1, NOW), _sent(2, NOW))
    assert _decide(done) == Done()


@pytest.mark.parametrize(("events", "now", "out"), [
    ((), NOW, False),  # unknown reply: only its lease can expire
    ((ACCEPTED,), NOW, False),
    ((ACCEPTED, _sent(1, NOW)), NOW + TIMEOUT, False),  # part 2 still to go
    ((ACCEPTED, _sent(1, NOW), _sent(2, NOW)), NOW, False),  # the last part not released yet
    ((ACCEPTED, _sent(1, NOW), _sent(2, NOW)), NOW + TIMEOUT, True),  # ... by its timeout
    ((ACCEPTED, _sent(1, NOW), _sent(2, NOW),
      (DeliveryStatusApplied(message_sid="SM2", status="sent"), None, NOW)), NOW, True),
    ((ACCEPTED, _sent(1, NOW), (OutboundMessageFailed(turn=1, part=2, parts=2, reason="stale"),
                                None, NOW)), NOW, True),
])
def test_a_reply_has_gone_out_when_nothing_more_of_it_will_go(events, now, out) -> None:
    assert gone_out(_state(*events), now, TIMEOUT) is out  # type: ignore[arg-type]


def test_a_request_folds_with_what_it_needs_to_be_sent() -> None:
    state = _state((OutboundReplyAccepted(
        turn=3, texts=[""], to_address="u", from_address="b", account_sid="AC",
        kind="template", purpose="template", after="previous", content_sid="HX1",
        content_variables={"1": "Ana"}, media_url="https://m"), None, NOW))
    assert (state.kind, state.purpose, state.after) == (  # type: ignore[attr-defined]
        "template", "template", "previous")
    assert (state.content_sid, state.content_variables, state.media_url) == (  # type: ignore[attr-defined]
        "HX1", {"1": "Ana"}, "https://m")
    reply = _state(ACCEPTED)
    assert (reply.kind, reply.after, reply.content_sid) == (None, None, None)  # type: ignore[attr-defined]
