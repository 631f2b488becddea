"""What the read API accepts in a path, a query or a cursor, checked before any query runs.

Postgres refuses some values that HTTP carries without complaint: a NUL character in text,
an integer past its column's range, a time that overflows when converted to UTC. Each is
refused here with a short reason instead of failing in the database (the API's error
handlers turn what might still get through into a 400: ``errors.py``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator

# Every id the services make: Twilio sids, UUIDs, `cv` + hex; nothing that needs escaping.
ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
ID_MAX = 128
# Free text (a search, part of an address): anything but control characters, NUL included.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"
TEXT_MAX = 200
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"  # base64url without padding
CURSOR_MAX = 512
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1


def utc(value: datetime) -> datetime:
    """``value`` in UTC (a time without an offset is taken as UTC); ValueError when the
    conversion overflows (year 1 at +05:00 is in year 0)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None


def text(value: str, max_length: int = TEXT_MAX) -> str:
    """Text Postgres can store and compare; ValueError otherwise."""
    if len(value) > max_length or _CONTROL.search(value):
        raise ValueError("invalid text")
    return value


def int8(value: int) -> int:
    if isinstance(value, bool) or not INT8_MIN <= value <= INT8_MAX:
        raise ValueError("integer out of range")
    return value


def id_path(what: str) -> object:
    return Path(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN, description=what)


def text_query(what: str) -> object:
    return Query(min_length=1, max_length=TEXT_MAX, pattern=TEXT_PATTERN, description=what)


Time = Annotated[datetime, AfterValidator(utc)]
Cursor = Annotated[str | None, Query(
    min_length=1, max_length=CURSOR_MAX, pattern=CURSOR_PATTERN,
    description="`next_cursor` of the previous page")]
