"""Parsing Twilio's form bodies, treating every byte as hostile.

Errors carry a short public reason (never the input, never an exception's text). Twilio adds
parameters without notice, so unknown ones are kept (the signature covers them) but bounded.

A media URL is the one field that never refuses a webhook: a refusal (4xx) is not retried by
Twilio, so one bad URL would silently lose the whole message. An unusable one is stored as ""
and the transcription refuses it, so the user gets the fallback text instead of silence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from switchboard_contracts.events.gateway import Media

MAX_FIELDS = 100
MAX_FIELD = 256
MAX_URL = 2048
MAX_BODY_TEXT = 4096  # Twilio truncates inbound at 1600; leave room, refuse the absurd
MAX_MEDIA = 10
UNUSABLE_MEDIA_URL = ""  # what an unusable MediaUrl is stored as (never its raw value)

SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
WHATSAPP_NUMBER = re.compile(r"^whatsapp:\+[1-9]\d{6,14}$")
# WhatsApp may identify a user by a non-phone id; still "whatsapp:" and a plain token.
WHATSAPP_ID = re.compile(r"^whatsapp:[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MEDIA_URL = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_BUT_NUL = re.compile(r"[\x01-\x1f\x7f]")
SEPARATOR = "\x00"  # between fields while decoding a body at once: refused inside a field
STATUSES = frozenset(
    {"queued", "accepted", "scheduled", "sending", "sent", "delivered", "read", "undelivered",
     "failed", "canceled", "receiving", "received"}
)


class BadForm(ValueError):
    """The request is malformed; ``str(self)`` is safe to return to the caller."""


@dataclass(frozen=True, slots=True)
class Inbound:
    params: dict[str, str]
    message_sid: str
    account_sid: str
    messaging_service_sid: str | None
    from_address: str
    to_address: str
    body: str
    message_type: str | None
    profile_name: str | None
    wa_id: str | None
    media: tuple[Media, ...]


@dataclass(frozen=True, slots=True)
class StatusCallback:
    params: dict[str, str]
    message_sid: str
    account_sid: str
    messaging_service_sid: str | None
    from_address: str
    to_address: str
    status: str
    error_code: str | None
    error_message: str | None


def parse_form(raw: bytes) -> dict[str, str]:
    """Decode a urlencoded body into a dict; refuse duplicates, controls and oversize fields.

    What ``parse_qsl(strict_parsing=True, errors="strict")`` decodes, in one ``unquote`` of the
    whole body rather than one per name and value (27 us to ~10 us for a Twilio webhook): the
    fields are joined by NUL, which no field can hold once decoded unless the body has a NUL or
    a %00, and those bodies (refused anyway) take the per-field path."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadForm("malformed form body") from None
    if not text:
        return {}
    pairs = text.split("&")
    if len(pairs) > MAX_FIELDS:
        raise BadForm("malformed form body")
    raw_fields: list[str] = []
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals:
            raise BadForm("malformed form body")
        raw_fields += (name, value)
    try:
        if "\x00" in text or "%00" in text:  # a field holds a NUL (refused below): one by one
            fields = [unquote(field.replace("+", " "), errors="strict") for field in raw_fields]
            controls = True
        else:
            decoded = unquote(SEPARATOR.join(raw_fields).replace("+", " "), errors="strict")
            fields = decoded.split(SEPARATOR)
            controls = CONTROL_BUT_NUL.search(decoded) is not None
    except UnicodeDecodeError:
        raise BadForm("malformed form body") from None
    return _checked(zip(fields[::2], fields[1::2], strict=True), controls=controls)


def _checked(pairs: Iterable[tuple[str, str]], *, controls: bool) -> dict[str, str]:
    """The decoded fields as a dict, each checked; ``controls=False`` when none of them holds
    a control character (then the per-field searches are skipped)."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise BadForm("repeated parameter")
        if not name or len(name) > 64 or (controls and ANY_CONTROL.search(name)):
            raise BadForm("invalid parameter name")
        params[name] = value
        if name.startswith("MediaUrl"):
            continue  # kept whole for the signature; judged alone by _media_url
        if len(value) > (MAX_BODY_TEXT if name == "Body" else MAX_FIELD):
            raise BadForm(f"parameter {name} too long")
        pattern = CONTROL if name in ("Body", "ErrorMessage") else ANY_CONTROL
        if controls and pattern.search(value):
            raise BadForm(f"control characters in {name}")
    return params


def _required(params: dict[str, str], name: str, pattern: re.Pattern[str]) -> str:
    value = params.get(name)
    if not value:
        raise BadForm(f"missing {name}")
    if not pattern.match(value):
        raise BadForm(f"invalid {name}")
    return value


def _optional(params: dict[str, str], name: str, pattern: re.Pattern[str]) -> str | None:
    value = params.get(name) or None
    if value is not None and not pattern.match(value):
        raise BadForm(f"invalid {name}")
    return value


def _sender(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise BadForm(f"missing {name}")
    if not (WHATSAPP_NUMBER.match(value) or WHATSAPP_ID.match(value)):
        raise BadForm(f"invalid {name}")
    return value


def _media(params: dict[str, str]) -> tuple[Media, ...]:
    raw = params.get("NumMedia", "0") or "0"
    if not raw.isdigit() or int(raw) > MAX_MEDIA:
        raise BadForm("invalid NumMedia")
    items = []
    for i in range(int(raw)):
        content_type = params.get(f"MediaContentType{i}", "")
        if not re.match(r"^[\w.+-]+/[\w.+-]+(?:;.*)?$", content_type):
            raise BadForm(f"invalid MediaContentType{i}")
        items.append(Media(url=_media_url(params.get(f"MediaUrl{i}", "")),
                           content_type=content_type))
    return tuple(items)


def _media_url(raw: str) -> str:
    """An http(s) URL of bounded length without spaces or control characters, as sent; any
    other value (ftp:, file:, javascript:, empty, garbage, over-long, controls) is unusable."""
    if len(raw) <= MAX_URL and MEDIA_URL.match(raw):
        return raw
    return UNUSABLE_MEDIA_URL


def inbound(params: dict[str, str]) -> Inbound:
    return Inbound(
        params=params,
        message_sid=_required(params, "MessageSid", SID),
        account_sid=_required(params, "AccountSid", ACCOUNT_SID),
        messaging_service_sid=_optional(params, "MessagingServiceSid", SERVICE_SID),
        from_address=_sender(params, "From"),
        to_address=_required(params, "To", WHATSAPP_NUMBER),
        body=params.get("Body", ""),
        message_type=params.get("MessageType") or None,
        profile_name=params.get("ProfileName") or None,
        wa_id=params.get("WaId") or None,
        media=_media(params),
    )


def status_callback(params: dict[str, str]) -> StatusCallback:
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if status not in STATUSES:
        raise BadForm("invalid MessageStatus")
    error_code = params.get("ErrorCode") or None
    if error_code is not None and not error_code.isdigit():
        raise BadForm("invalid ErrorCode")
    return StatusCallback(
        params=params,
        message_sid=_required(params, "MessageSid", SID),
        account_sid=_required(params, "AccountSid", ACCOUNT_SID),
        messaging_service_sid=_optional(params, "MessagingServiceSid", SERVICE_SID),
        from_address=_required(params, "From", WHATSAPP_NUMBER),
        to_address=_sender(params, "To"),
        status=status,
        error_code=error_code,
        error_message=params.get("ErrorMessage") or None,
    )
