"""Scripted failures for the next Messages API creates, queued by tests through ``/sim/failures``.

Kinds, named after what Twilio answers:

- ``429`` (code 20429, with ``Retry-After``), ``500`` (20500), ``503`` (20503), ``401`` (20003)
  and ``21211`` (invalid To, 400): the create fails synchronously.
- ``63016``: the create succeeds (201 ``queued``) and the message then fails asynchronously
  with ErrorCode 63016, as Twilio reports a free-form send outside the 24-hour window.
- ``timeout``: the create hangs for ``hang_s`` seconds, to exercise ambiguous failures.
- ``reordered_callbacks``: status callbacks arrive as delivered, read, sent (Twilio does not
  guarantee their order).

``created`` makes a synchronous failure ambiguous: the message is created and delivered even
though the caller got an error (or nothing, for ``timeout``, where it defaults to true).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

FailureKind = Literal[
    "429", "500", "503", "401", "21211", "63016", "timeout", "reordered_callbacks"
]

ERROR_CODES: dict[str, tuple[int, int]] = {
    "429": (429, 20429),
    "500": (500, 20500),
    "503": (503, 20503),
    "401": (401, 20003),
    "21211": (400, 21211),
}


class FailureSpec(BaseModel):
    kind: FailureKind
    count: int = Field(default=1, ge=1)
    to: str | None = None
    retry_after_s: int = 1
    hang_s: float = 30.0
    created: bool | None = None

    @property
    def creates_message(self) -> bool:
        if self.kind in ("63016", "reordered_callbacks"):
            return True
        if self.kind in ("401", "21211"):
            return False
        return self.created if self.created is not None else self.kind == "timeout"


@dataclass
class QueuedFailure:
    spec: FailureSpec
    remaining: int


class FailureQueue:
    """First in, first out; a failure scoped to a To applies only to creates for that To."""

    def __init__(self) -> None:
        self._queue: list[QueuedFailure] = []

    def add(self, spec: FailureSpec) -> None:
        self._queue.append(QueuedFailure(spec, spec.count))

    def take(self, to: str) -> FailureSpec | None:
        for queued in self._queue:
            if queued.spec.to in (None, to):
                queued.remaining -= 1
                if queued.remaining == 0:
                    self._queue.remove(queued)
                return queued.spec
        return None

    def pending(self) -> list[dict[str, object]]:
        return [{**q.spec.model_dump(), "remaining": q.remaining} for q in self._queue]

    def clear(self) -> None:
        self._queue.clear()
