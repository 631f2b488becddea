"""Masks personal data and secrets before anything is logged or returned in an error.

Two passes: values under sensitive keys are dropped whole; every other string is scanned for
phone numbers and secret-shaped tokens, as written and URL- or JSON-decoded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

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

# E.164 numbers (with or without "+" or "whatsapp:"), long digit runs, 32-hex Twilio auth
# tokens, bearer and basic credentials, OpenAI-style keys, Fernet keys and Fernet tokens.
_PATTERNS = (
    re.compile(r"(?:whatsapp:)?\+\d[\d\s().-]{6,18}\d"),
    re.compile(r"(?<![\w-])\d{9,15}(?![\w-])"),
    re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z])"),
    re.compile(r"(?i)\b(?:bearer|basic)\s+[\w.~+/=-]{8,}"),
    re.compile(r"\bsk-[\w-]{16,}"),
    re.compile(r"(?<![\w-])[\w-]{43}=(?![\w=-])"),
    re.compile(r"\bgAAAAA[\w-]{20,}={0,2}"),
)

# What hides a number from the patterns: URL encoding (once or more: %2B, %252B, %3A) and
# JSON string escapes (\u002b; "\n" glued to the digits). Text with either is also scanned
# decoded.
_URL_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_JSON_ESCAPE = re.compile(r'\\(?:u[0-9A-Fa-f]{4}|[nrtbf"/\\])')
_MAX_DECODINGS = 3


def _unescape_json(match: re.Match[str]) -> str:
    return str(json.loads(f'"{match.group(0)}"'))


def _decoded(value: str) -> str:
    for _ in range(_MAX_DECODINGS):
        unescaped = _JSON_ESCAPE.sub(_unescape_json, value)
        unquoted = unquote(unescaped)
        if unquoted == value:
            break
        value = unquoted
    return value


def _scan(value: str) -> str:
    for pattern in _PATTERNS:
        value = pattern.sub(REDACTED, value)
    return value


def redact_text(value: str) -> str:
    """Mask what the patterns find. Encoded text with a finding is given back decoded and
    masked, so no encoding of a number or a key gets through."""
    if _URL_ESCAPE.search(value) or _JSON_ESCAPE.search(value):
        decoded = _decoded(value)
        masked = _scan(decoded)
        if masked != decoded:
            return masked
    return _scan(value)


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
