"""Where a message is in its journey: statuses by rank, so the furthest one wins whatever
order the facts were projected in.

An outbound part goes accepted (the sender split the reply) -> attempted (the Messages API is
being called) -> queued (Twilio accepted it) -> sending -> sent -> delivered -> read, or ends
failed / undelivered / canceled. Twilio's callbacks arrive in no guaranteed order; a failure
after ``delivered`` cannot be true, so delivered and read outrank the failures (the sender's
rule, ADR 0008).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# The sender's own record of a part (message_parts.send_status), by rank.
SEND_RANK: dict[str, int] = {"accepted": 1, "attempted": 2, "sent": 3, "failed": 4}
# A voice note's transcription (messages.transcription_status), by rank.
TRANSCRIPTION_RANK: dict[str, int] = {"requested": 1, "failed": 2, "completed": 3}

PART_RANK: dict[str, int] = {
    "accepted": 1, "attempted": 2, "queued": 3, "scheduled": 3, "sending": 4, "sent": 5,
    "canceled": 6, "failed": 7, "undelivered": 8, "delivered": 9, "read": 10,
}
FAILURES = frozenset({"failed", "undelivered", "canceled"})
# The sender's "sent" means Twilio accepted the request: the message is queued at Twilio.
_FROM_SEND_STATUS = {"accepted": "accepted", "attempted": "attempted", "sent": "queued",
                     "failed": "failed"}

GENERATED = "generated"  # a reply the sender has not taken yet
RECEIVED = "received"  # an inbound message
NOT_SENT = "not_sent"  # a reply withheld: the LLM handed the turn to a person


def part_status(send_status: str | None, reported: Iterable[str]) -> str:
    """The furthest of the sender's record and Twilio's reported statuses."""
    candidates = [_FROM_SEND_STATUS.get(send_status or "", ""), *reported]
    known = [s for s in candidates if s in PART_RANK]
    return max(known, key=PART_RANK.__getitem__) if known else GENERATED


def message_status(direction: str, part_statuses: Sequence[str], withheld: bool = False) -> str:
    """A reply is as far as its least advanced part; any failed part fails it."""
    if direction == "inbound":
        return RECEIVED
    if not part_statuses:
        return NOT_SENT if withheld else GENERATED
    failed = [s for s in part_statuses if s in FAILURES]
    if failed:
        return failed[0]
    return min(part_statuses, key=lambda s: PART_RANK.get(s, 0))
