"""The sender's domain rules as plain functions: statuses by rank, error classes, checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from switchboard_contracts.conversation_view import ConversationView

# Twilio's statuses for an outbound message, by rank. No callback comes for queued/accepted;
# the others arrive in no guaranteed order, so they are applied only upwards.
RANK: dict[str, int] = {
    "accepted": 0, "scheduled": 0, "queued": 0, "sending": 1, "sent": 2, "delivered": 3,
    "read": 4,
}
FAILED_STATUSES = frozenset({"failed", "undelivered", "canceled"})
# Once the message is on the phone, a later "failed" cannot be true: delivered and read stay.
_ON_THE_PHONE = frozenset({"delivered", "read"})


def status_applies(current: str | None, new: str) -> bool:
    """Whether a callback's status moves a part forward (never backwards, terminal stays)."""
    if current in FAILED_STATUSES:
        return False
    if new in FAILED_STATUSES:
        return current not in _ON_THE_PHONE
    if new not in RANK:
        return False
    return current is None or RANK[new] > RANK.get(current, -1)


def releases_next_part(status: str | None) -> bool:
    """Part n+1 may go once part n is at least ``sent``."""
    return status is not None and status not in FAILED_STATUSES and RANK.get(status, 0) >= 2


class ErrorClass(StrEnum):
    TRANSIENT = "transient"  # retry with backoff (5xx, 429, timeouts, connection errors)
    PERMANENT = "permanent"  # never retry (invalid number, outside the window, too long, 4xx)
    AUTH = "auth"  # our credentials are wrong: fail loudly


def classify(status: int | None, code: int | None) -> ErrorClass:
    """What a failed Messages API call means; ``status`` None is a transport failure."""
    if status is None or status >= 500 or status == 429 or code == 20429:
        return ErrorClass.TRANSIENT
    if status in (401, 403):
        return ErrorClass.AUTH
    return ErrorClass.PERMANENT


def ambiguous(status: int | None) -> bool:
    """The request may have reached Twilio and created the message (timeout, 5xx)."""
    return status is None or status >= 500


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class Needs:
    """What the view must say before a part of one kind of outbound message goes out."""

    acceptance: bool  # the conversation accepted the turn's reply (the agent's reply only)
    bot_mode: bool  # no person asked for or answering (``bot_answers``)
    window: bool  # WhatsApp's 24-hour window is open (templates may go outside it)


REPLY = "reply"  # the agent's reply: an acceptance without a kind
NEEDS: dict[str, Needs] = {
    REPLY: Needs(acceptance=True, bot_mode=True, window=True),
    "notice": Needs(acceptance=False, bot_mode=False, window=True),
    "operator": Needs(acceptance=False, bot_mode=False, window=True),
    "template": Needs(acceptance=False, bot_mode=False, window=False),
}
# Every kind needs a user who has not opted out, except the one message an opted-out user
# still gets: the confirmation of the opt-out itself.
SENT_WHEN_OPTED_OUT = frozenset({("notice", "opted_out")})


def refusal(view: ConversationView, turn: int, now: datetime, *, accepted: bool = False,
            kind: str | None = None, purpose: str | None = None) -> Refusal | None:
    """Why a part of an outbound message must not be sent now, or None.

    Asked before every part, from the conversation's public view; ``kind`` None is the agent's
    reply for ``turn``, else what the conversation asked for (``NEEDS``). A reply's first part
    needs the conversation's acceptance of its turn (the handler waits while the view says the
    turn is pending, so a reply not accepted here is stale). Once ``accepted`` is known
    otherwise (its first part went out, so it was accepted, for good; or the view names it in
    ``accepted_replies``, once a later accepted turn hides it from ``answered_turn``) it goes
    on, also when a newer turn has begun: that turn's reply waits for it (``after``, and the
    lease between parts). The agent's reply needs the bot's
    mode (a person asked for, ``waiting``, or answering, ``human``, silences it). An opted-out
    user gets nothing but the opt-out's confirmation; only a template goes outside the window.
    """
    needs = NEEDS[kind or REPLY]
    if needs.acceptance and not accepted and not view.reply_accepted(turn):
        return Refusal("stale")
    if view.opted_out and (kind, purpose) not in SENT_WHEN_OPTED_OUT:
        return Refusal("opted_out")
    if needs.bot_mode and not view.bot_answers:
        return Refusal("human_mode")
    if needs.window and not view.window_open(now):
        return Refusal("outside_24h_window", "63016")
    return None
