"""The view names the replies the conversation accepted last (``accepted_replies``), so the
sender tells an earlier accepted reply from a superseded one once the view moved past its
turn, without reading the conversation's stream (issue 13)."""

from __future__ import annotations

import uuid

from conversation.state import ConversationState, apply
from conversation.view import view_of
from switchboard_contracts import Envelope
from switchboard_contracts.conversation_view import ACCEPTED_REPLIES_KEPT, ConversationView
from switchboard_contracts.events.conversation import AssistantMessageAppended, ReplySuperseded


def _event(data: AssistantMessageAppended | ReplySuperseded) -> Envelope:
    return Envelope.wrap(data, correlation_id="c", tenant_id="t", conversation_id="c1")


def _state(*outcomes: tuple[int, str | None]) -> ConversationState:
    """Turns in order, each accepted (its reply's id) or superseded (None)."""
    state = ConversationState(conversation_id="c1", tenant_id="t")
    for seq, (turn, reply_id) in enumerate(outcomes, start=1):
        data = (ReplySuperseded(turn=turn, next_turn=turn + 1) if reply_id is None else
                AssistantMessageAppended(turn=turn, text="hi", reply_event_id=reply_id))
        apply(state, _event(data), data, seq)
    return state


def _view(state: ConversationState) -> ConversationView:
    view = view_of(state)
    assert view is not None
    return view


def test_an_earlier_accepted_reply_stays_known_after_a_later_one_is_accepted() -> None:
    first, superseded, third = (str(uuid.uuid4()) for _ in range(3))
    view = _view(_state((1, first), (2, None), (3, third)))
    assert view.answered_turn == 3
    assert view.reply_accepted_id(first) and view.reply_accepted_id(third)
    assert not view.reply_accepted_id(superseded)


def test_only_the_last_accepted_replies_are_named() -> None:
    replies = [str(uuid.uuid4()) for _ in range(ACCEPTED_REPLIES_KEPT + 3)]
    view = _view(_state(*((turn, r) for turn, r in enumerate(replies, start=1))))
    assert view.accepted_replies == tuple(replies[-ACCEPTED_REPLIES_KEPT:])
    # Older than the last ACCEPTED_REPLIES_KEPT: no longer known accepted (stale if unsent).
    assert not any(view.reply_accepted_id(r) for r in replies[:3])
