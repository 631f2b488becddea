"""The view's rules for a turn's reply: accepted, stale or pending (no NATS)."""

from __future__ import annotations

import pytest
from switchboard_contracts.conversation_view import ConversationView


def _view(turn: int, answered_turn: int = 0, superseded: bool = False) -> ConversationView:
    return ConversationView(conversation_id="c", tenant_id="t", version=9, turn=turn,
                            turn_superseded=superseded, answered_turn=answered_turn)


# (view, the reply's turn, what the view says of it)
@pytest.mark.parametrize(("view", "turn", "expected"), [
    # Turn 1 requested, the conversation has not decided yet (the race of ADR 0006).
    (_view(1), 1, "pending"),
    (_view(1, answered_turn=1), 1, "accepted"),
    (_view(1, superseded=True), 1, "stale"),
    # The view lags behind the reply's turn: nothing decided yet.
    (_view(1, answered_turn=1), 2, "pending"),
    # Turn 1 answered, turn 2 requested: turn 1's reply stays accepted (its later parts go).
    (_view(2, answered_turn=1), 1, "accepted"),
    (_view(2, answered_turn=1), 2, "pending"),
    # Turn 1 superseded, turn 2 requested: turn 1 never answered.
    (_view(2), 1, "stale"),
    (_view(2, answered_turn=1, superseded=True), 2, "stale"),
    (_view(2, answered_turn=1, superseded=True), 1, "accepted"),
    # A later turn's reply accepted: older turns are done, answered or not.
    (_view(3, answered_turn=2), 1, "stale"),
    (_view(3, answered_turn=2), 2, "accepted"),
    (_view(3, answered_turn=2), 3, "pending"),
    (_view(3, answered_turn=3), 2, "stale"),
    (_view(3, answered_turn=3), 3, "accepted"),
    # Turn 2 ended without an answer (superseded, deadline) and turn 3 requested.
    (_view(3, answered_turn=1), 2, "stale"),
])
def test_a_turns_reply_is_accepted_stale_or_pending(view, turn, expected) -> None:
    said = {"accepted": view.reply_accepted(turn), "stale": view.reply_is_stale(turn),
            "pending": view.reply_pending(turn)}
    assert [name for name, yes in said.items() if yes] == [expected]


def test_a_view_written_before_answered_turn_existed_still_reads() -> None:
    old = (b'{"conversation_id": "c", "tenant_id": "t", "version": 4, "turn": 2,'
           b' "turn_superseded": false, "open": true}')
    view = ConversationView.from_bytes(old)
    assert view.answered_turn == 0
    assert view.reply_pending(2) and view.reply_is_stale(1)
    assert view.accepted_replies == () and not view.reply_accepted_id("r1")


def test_an_accepted_reply_is_known_by_id_once_the_view_moved_past_its_turn() -> None:
    view = _view(3, answered_turn=3).model_copy(update={"accepted_replies": ("r1", "r3")})
    assert view.reply_is_stale(1)  # by turn numbers alone, turn 1's reply looks superseded
    assert view.reply_accepted_id("r1") and not view.reply_accepted_id("r2")
