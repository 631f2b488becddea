"""Masks personal data and secrets before anything is logged or returned in an error.

Two passes: values under sensitive keys are dropped whole; every other string is scanned for
phone numbers and secret-shaped tokens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

SENSITIVE_KEYS = frozenset(
    {
        "body",
        "text",
        "transcript",
        "content",
        "prompt",
        "from",
        "to",
        "from_address",
        "to_address",
        "phone",
        "wa_id",
        "profile_name",
        "auth_token",
        "token",
        "password",
        "secret",
        "api_key",
        "authorization",
        "x-twilio-signature",
    }
)

# E.164 numbers (with or without "whatsapp:"), long digit runs, 32-hex Twilio auth tokens,
# bearer tokens and OpenAI-style keys.
_PATTERNS = (
    re.compile(r"(?:whatsapp:)?\+\d[\d\s().-]{6,18}\d"),
    re.compile(r"(?<![\w-])\d{9,15}(?![\w-])"),
    re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z])"),
    re.compile(r"(?i)bearer\s+[\w.~+/=-]+"),
    re.compile(r"\bsk-[\w-]{16,}"),
)


def redact_text(value: str) -> str:
    for pattern in _PATTERNS:
        value = pattern.sub(REDACTED, value)
    return value


def is_sensitive_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in SENSITIVE_KEYS or lowered.endswith(("_token", "_secret", "_password"))


def redact(value: Any, key: str | None = None) -> Any:
    """Redact a value found under ``key`` (recursively for mappings and lists)."""
    if key is not None and is_sensitive_key(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
