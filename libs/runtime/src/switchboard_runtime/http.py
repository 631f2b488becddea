"""Small HTTP rules the services share when they call out (LLM endpoints, media hosts)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState


def retry_after(headers: Mapping[str, str] | object) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    millis: str | None = get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value: str | None = get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def backoff_or_retry_after(
    base_s: float, max_s: float, retry_after_max_s: float,
    retry_after_of: Callable[[BaseException], float | None],
) -> Callable[[RetryCallState], float]:
    """A tenacity ``wait``: exponential back-off with full jitter (``base_s`` doubling, at most
    ``max_s``), but never sooner than what the endpoint asked for (``retry_after_of`` the
    failure, capped at ``retry_after_max_s`` so a wild header cannot park a handler), plus a
    little jitter so the callers it told to wait do not all come back at once."""

    def wait(state: RetryCallState) -> float:
        ceiling = min(max_s, base_s * 2 ** (state.attempt_number - 1))
        delay = random.uniform(0, ceiling)  # noqa: S311 (jitter, not crypto)
        error = state.outcome.exception() if state.outcome is not None else None
        asked = retry_after_of(error) if error is not None else None
        if asked is not None:
            delay = max(delay, min(asked, retry_after_max_s) + random.uniform(0, base_s))  # noqa: S311
        return delay

    return wait
