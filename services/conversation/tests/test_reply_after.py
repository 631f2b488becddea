"""ADR 0014's update: a reply is requested ``after`` the conversation's last outbound message,
so the sender sends an accepted reply after the one accepted before it."""

from __future__ import annotations

from switchboard_contracts import EventData
from switchboard_contracts.events.conversation import ReplyRequested
from test_people_rules import RELEASE, Conversation, claimed, reply


def requested(events: list[EventData]) -> ReplyRequested:
    [found] = [e for e in events if isinstance(e, ReplyRequested)]
    return found


def test_a_reply_is_requested_after_the_last_accepted_reply():
    conversation = Conversation()
    assert requested(conversation.says("hola")).after is None  # nothing went out yet
    conversation.agent("¡Hola!")  # accepted: its ReplyGenerated is "reply-1"
    assert requested(conversation.says("¿y mañana?")).after == "reply-1"


def test_a_reply_after_a_handoff_follows_the_operators_last_message():
    conversation = claimed()
    conversation.command(reply(text="Hola, soy Ann"))
    [operators] = [e for e in conversation.envelopes
                   if e.data.get("purpose") == "operator_reply"]
    conversation.command(RELEASE)
    assert requested(conversation.says("gracias")).after == str(operators.event_id)
