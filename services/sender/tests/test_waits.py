"""The one "not yet" shape (no NATS): a timer that brings the reply back, until the limit
counted from the reply's arrival has passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sender.state import ReplyState
from sender.waits import AFTER, LEASE_HELD, Waits
from switchboard_contracts import Envelope
from switchboard_contracts.events.sender import OutboundReplyAccepted

ARRIVED = datetime(2026, 1, 1, tzinfo=UTC)
POLL = timedelta(seconds=1)


class Timers:
    def __init__(self) -> None:
        self.set: list[tuple[int, datetime]] = []

    async def schedule_timeout(self, state: Any, cause: Any, part: int, due_at: datetime
                               ) -> None:
        self.set.append((part, due_at))


def _reply() -> ReplyState:
    accepted = Envelope.wrap(
        OutboundReplyAccepted(turn=1, texts=["hi"], to_address="u", from_address="b",
                              account_sid="AC"), correlation_id="c")
    return ReplyState("r1", accepted=accepted.model_copy(update={"occurred_at": ARRIVED}))


@pytest.mark.parametrize(("waited", "limit", "looks_again"), [
    (timedelta(seconds=10), timedelta(seconds=300), True),
    (timedelta(seconds=300), timedelta(seconds=300), True),  # at the limit: still waits
    (timedelta(seconds=301), timedelta(seconds=300), False),
    (timedelta(days=3), None, True),  # no limit: waits as long as it takes
])
async def test_a_timer_until_the_limit(waited, limit, looks_again) -> None:
    timers = Timers()
    now = ARRIVED + waited
    waits = Waits(timers, lambda: now, POLL)  # type: ignore[arg-type]
    why = AFTER if limit is not None else LEASE_HELD
    assert await waits.look_again(_reply(), _reply().accepted, 2, why, limit) is looks_again
    assert timers.set == ([(2, now + POLL)] if looks_again else [])
