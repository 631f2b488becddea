"""The public view of a conversation: what other services may know of it, and nothing more.

The conversation service alone writes it, to a JetStream KV bucket (one key per
conversation), after each append; the agent and the sender read it just before acting (is this
turn still current? is the 24-hour window open? is a person or an opt-out in the way?). The
conversation's own event stream stays private to its service.

``version`` is the stream sequence of the last conversation event the view reflects: a writer
never replaces a view with an older one, and a reader can tell how fresh it is.

A turn's reply is decided once, by the conversation (ADR 0006): accepted
(``AssistantMessageAppended``) or dropped (``ReplySuperseded``, newer messages came meanwhile).
The agent and the sender consume the reply in parallel with that decision, so for a given turn
the view says one of three things: ``reply_accepted``, ``reply_is_stale`` or, not decided yet,
``reply_pending``. An acceptance is final: the conversation never drops an accepted reply.
Once a later turn's reply is accepted, the turn numbers no longer tell an earlier accepted
reply from a superseded one: ``accepted_replies`` names the replies accepted last.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

VIEW_BUCKET = "conversation-view"
WHATSAPP_WINDOW = timedelta(hours=24)
# How many accepted replies the view names (``accepted_replies``): enough for any reply
# delayed behind a few later turns, few enough that the entry stays small (~0.6 kB).
ACCEPTED_REPLIES_KEPT = 16


class Mode(StrEnum):
    BOT = "bot"  # the agent answers
    WAITING = "waiting"  # a handoff was requested, no operator claimed it yet: nobody answers
    HUMAN = "human"  # an operator answers; the agent stays silent


class ConversationView(BaseModel):
    """One conversation as the agent and the sender see it (schema version 1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    conversation_id: str
    tenant_id: str
    version: int
    # The latest turn a reply was requested for, and whether that reply was superseded by
    # newer messages (the next turn answers them) or ended (answered, fallback or deadline).
    turn: int = 0
    turn_superseded: bool = False
    # The latest turn whose reply the conversation accepted (0: none yet). Views written
    # before this field existed read 0: their replies stay pending until the next write.
    answered_turn: int = 0
    open: bool = False
    # WhatsApp's customer-service window: 24 h from the user's last message.
    window_ends_at: datetime | None = None
    mode: Mode = Mode.BOT
    opted_out: bool = False
    # The operator who claimed the conversation (mode human), else None.
    operator_id: str | None = None
    # The replies (ReplyGenerated event ids, ``AssistantMessageAppended.reply_event_id``)
    # the conversation accepted for its most recent ACCEPTED_REPLIES_KEPT turns, oldest first.
    # A reply older than these whose first part never went out reads as not accepted
    # (stale); views written before this field existed read (): the same.
    accepted_replies: tuple[str, ...] = ()

    @property
    def bot_answers(self) -> bool:
        """The agent may answer: no person is asked for or answering."""
        return self.mode is Mode.BOT

    def window_open(self, now: datetime) -> bool:
        return self.window_ends_at is not None and now < self.window_ends_at

    def reply_accepted(self, turn: int) -> bool:
        """The conversation accepted this turn's reply, and no later turn's reply yet."""
        return turn > 0 and turn == self.answered_turn

    def reply_accepted_id(self, reply_id: str) -> bool:
        """The conversation accepted this reply (by its ReplyGenerated event id), also when a
        later turn's reply was accepted since; False past the last ACCEPTED_REPLIES_KEPT."""
        return reply_id in self.accepted_replies

    def reply_is_stale(self, turn: int) -> bool:
        """This turn's reply must not go out: it was superseded by messages that came
        meanwhile, or a later turn's reply was accepted, or a later turn was requested and
        this one was not accepted (so it was superseded or ended by its deadline)."""
        if turn == self.turn and self.turn_superseded:
            return True
        return turn < self.answered_turn or (turn < self.turn and turn != self.answered_turn)

    def reply_pending(self, turn: int) -> bool:
        """The conversation has not decided on this turn's reply yet (or the view lags)."""
        return not self.reply_accepted(turn) and not self.reply_is_stale(turn)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ConversationView:
        return cls.model_validate_json(raw)


def view_key(conversation_id: str) -> str:
    """The KV key of a conversation's view (conversation ids are already subject-safe)."""
    return conversation_id
