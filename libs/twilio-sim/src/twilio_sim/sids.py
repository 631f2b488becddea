"""Twilio-shaped identifiers and timestamps."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from email.utils import format_datetime


def new_sid(prefix: str) -> str:
    """A 34-character sid: two letters (``SM``, ``MM``, ``ME``, ``AC``...) and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's date format, e.g. ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return format_datetime(moment) if moment is not None else None
