from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from switchboard_runtime.http import backoff_or_retry_after, retry_after
from tenacity import RetryCallState

pytestmark = pytest.mark.unit


def test_retry_after_headers():
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "2"}) == 2.0
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 < (retry_after({"retry-after": format_datetime(later, usegmt=True)}) or 0) <= 30
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


class Throttled(Exception):
    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds


def _after(attempt: int, error: BaseException) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


def _retry_after(error: BaseException) -> float | None:
    return error.seconds if isinstance(error, Throttled) else None


@pytest.mark.parametrize(("attempt", "asked", "low", "high"), [
    (1, None, 0.0, 1.0),      # full jitter below the first ceiling
    (3, None, 0.0, 4.0),      # doubling
    (9, None, 0.0, 10.0),     # capped at max_s
    (1, 5.0, 5.0, 6.0),       # never sooner than Retry-After, plus up to base_s of jitter
    (9, 0.5, 0.5, 10.0),      # a short Retry-After does not cut the back-off below it
    (1, 3600.0, 30.0, 31.0),  # a wild Retry-After is capped
])
def test_backoff_never_sooner_than_retry_after(attempt, asked, low, high):
    wait = backoff_or_retry_after(1.0, 10.0, 30.0, _retry_after)
    for _ in range(200):
        assert low <= wait(_after(attempt, Throttled(asked))) <= high
