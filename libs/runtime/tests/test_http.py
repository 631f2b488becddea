from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from switchboard_runtime.http import retry_after


def test_retry_after_headers():
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "2"}) == 2.0
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 < (retry_after({"retry-after": format_datetime(later, usegmt=True)}) or 0) <= 30
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None
