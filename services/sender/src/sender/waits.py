"""Not yet: a durable timer, and a look again later.

A part that cannot go yet, for a reason that time will settle (the conversation has not
decided on the reply's turn; the message it comes after has not gone out; the view is older
than the request; an earlier reply of the conversation holds the lease), is not retried by
redelivery: a ``PartTimeoutDue`` timer brings the reply back every ``REPLY_WAIT_POLL_S``.
Some reasons have a limit, counted from the reply's arrival: past it the caller stops waiting
(and fails the part, or goes on without what it waited for)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from switchboard_contracts import Envelope
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .state import ReplyState
from .store import ReplyStore

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NotYet:
    """One reason a part waits: what the log says and the counter of such waits."""

    message: str
    waits: Counter


UNDECIDED = NotYet("the conversation has not decided on the reply's turn yet; waiting",
                   metrics.ACCEPTANCE_WAITS)
AFTER = NotYet("waiting for the message this one comes after", metrics.AFTER_WAITS)
VIEW_BEHIND = NotYet("the conversation's view is older than the request; waiting",
                     metrics.VIEW_BEHIND_WAITS)
LEASE_HELD = NotYet("an earlier reply of the conversation is going out; waiting",
                    metrics.REPLY_WAITS)


class Waits:
    def __init__(self, store: ReplyStore, clock: Callable[[], datetime], poll: timedelta
                 ) -> None:
        self._store = store
        self._clock = clock
        self._poll = poll

    async def look_again(self, state: ReplyState, cause: Envelope, after_part: int,
                         why: NotYet, limit: timedelta | None = None, **log_fields: Any
                         ) -> bool:
        """Set the timer that brings the reply back (the one after ``after_part``: 0 before
        its first part) and answer True; False, with no timer, once ``limit`` has passed since
        the reply arrived: the caller stops waiting."""
        assert state.accepted is not None
        now = self._clock()
        if limit is not None and now - state.accepted.occurred_at > limit:
            return False
        why.waits.inc()
        log.info(why.message, **log_fields)
        await self._store.schedule_timeout(state, cause, after_part, now + self._poll)
        return True
