"""A publish that rides out a JetStream leader election within one deadline.

While an R3 stream elects a new leader (its node killed) the server answers "no responders"
at once, for 4-7 s on a loaded machine, and a publish written to a dying connection gets no
answer (reliability finding 6). So each attempt waits at most ``attempt_timeout_s`` and is
retried, with a doubling pause, until ``timeout_s`` has passed; the same ``Nats-Msg-Id``
stores the event once however many attempts reach the stream.

A duplicate PubAck after an attempt of ours went unanswered may be that attempt's own
write: it is reported as stored (new), not as a duplicate. A plain loop, not tenacity: this
is a hot path (every webhook) and the first attempt almost always succeeds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError
from switchboard_contracts import Envelope

from .publisher import Publisher

FIRST_PAUSE_S = 0.05
MAX_PAUSE_S = 0.5


@dataclass(frozen=True, slots=True)
class Stored:
    ack: PubAck  # the last attempt's
    duplicate: bool  # already stored by someone else (not by an unanswered attempt of ours)


class RetryingPublisher:
    """``Publisher.publish`` retried through "no responders" and unanswered attempts."""

    def __init__(self, js: JetStreamContext, stream: str, *, timeout_s: float,
                 attempt_timeout_s: float, first_pause_s: float = FIRST_PAUSE_S,
                 max_pause_s: float = MAX_PAUSE_S) -> None:
        self._attempt_timeout_s = min(attempt_timeout_s, timeout_s)
        self._publisher = Publisher(js, stream, self._attempt_timeout_s)
        self._timeout_s = timeout_s
        self._first_pause_s = first_pause_s
        self._max_pause_s = max_pause_s

    async def publish(self, subject: str, envelope: Envelope, *, msg_id: str) -> Stored:
        """Stored, or raises (the last attempt's error) once ``timeout_s`` has passed.

        Only "no responders" and unanswered attempts are retried: any other error (a
        refusal by the stream) is raised at once."""
        deadline = time.monotonic() + self._timeout_s
        pause, unanswered = self._first_pause_s, False
        while True:
            try:
                ack = await self._attempt(subject, envelope, msg_id, deadline)
                return Stored(ack, bool(ack.duplicate) and not unanswered)
            except (NoStreamResponseError, nats.errors.TimeoutError) as exc:
                unanswered |= isinstance(exc, nats.errors.TimeoutError)
                if time.monotonic() + pause >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(2 * pause, self._max_pause_s)

    async def _attempt(self, subject: str, envelope: Envelope, msg_id: str,
                       deadline: float) -> PubAck:
        left = deadline - time.monotonic()
        if left >= self._attempt_timeout_s:  # the usual case: the publisher's own timeout
            return await self._publisher.publish(subject, envelope, msg_id=msg_id)
        try:  # the last attempt ends with the deadline, not a whole attempt later
            async with asyncio.timeout(max(left, 0.0)):
                return await self._publisher.publish(subject, envelope, msg_id=msg_id)
        except TimeoutError:
            raise nats.errors.TimeoutError from None
