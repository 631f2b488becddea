"""Keyset pagination: the cursor is the sort key of the last row returned, opaque to callers.

Keyset (not offset) pages stay correct while new rows arrive and cost the same on page 1000.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import HTTPException

from . import params


def encode(*values: datetime | str | int) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode(cursor: str | None, kinds: Sequence[type]) -> tuple[Any, ...] | None:
    """The sort key in ``cursor``, typed as ``kinds``; 400 if it was not made by ``encode``."""
    if cursor is None:
        return None
    try:
        if len(cursor) > params.CURSOR_MAX:  # also bounds the JSON's nesting
            raise ValueError("too long")
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("wrong shape")
        return tuple(_typed(value, kind) for value, kind in zip(raw, kinds, strict=True))
    except (ValueError, TypeError, binascii.Error):
        raise HTTPException(400, "invalid cursor") from None


def _typed(value: Any, kind: type) -> Any:
    """A cursor travels through the client's hands: each value is checked as strictly as a
    query parameter (a tampered one is a 400, never a database error)."""
    if kind is datetime:
        if not isinstance(value, str):
            raise TypeError("expected a time")
        return params.utc(datetime.fromisoformat(value))
    if kind is str:
        if not isinstance(value, str):
            raise TypeError("expected a string")
        return params.text(value, params.CURSOR_MAX)
    if kind is int:
        if not isinstance(value, int):
            raise TypeError("expected an integer")
        return params.int8(value)
    raise TypeError(f"no cursor values of type {kind.__name__}")


def page(rows: Sequence[Any], limit: int) -> tuple[Sequence[Any], bool]:
    """Queries fetch ``limit + 1`` rows: the extra one says whether a next page exists."""
    return rows[:limit], len(rows) > limit
