"""The simulator's memory: accounts, numbers, templates, messages, create attempts, media,
inbound webhooks.

Everything runs on the server's event loop, so plain dicts need no locks. Each change to a
message takes the next value of one counter (``seq``), which is the inbox cursor.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .config import Account, Number, SimConfig, Template
from .failures import FailureQueue
from .sids import rfc2822, utcnow

API_VERSION = "2010-04-01"


@dataclass
class Message:
    sid: str
    account_sid: str
    direction: str  # "outbound-api" or "inbound"
    from_: str
    to: str
    body: str
    status: str
    messaging_service_sid: str | None = None
    media_urls: list[str] = field(default_factory=list)
    status_callback: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] = field(default_factory=dict)
    template_name: str | None = None
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    seq: int = 0

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The Message resource as Twilio's REST API returns it."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri.removesuffix(".json") + "/Media.json"},
            "to": self.to,
            "uri": self.uri,
        }

    def inbox_entry(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "from": self.from_,
            "to": self.to,
            "body": self.body,
            "media_urls": self.media_urls,
            "status": self.status,
            "error_code": self.error_code,
            "date_created": rfc2822(self.date_created),
            "seq": self.seq,
            "content_sid": self.content_sid,
            "template": self.template_name,
        }

    def sim_entry(self) -> dict[str, Any]:
        """The resource plus what Twilio does not show on it: the template it was sent with."""
        return {**self.resource(), "content_sid": self.content_sid,
                "content_variables": self.content_variables, "template": self.template_name}


@dataclass
class Attempt:
    """One call to the create endpoint, whatever came of it."""

    number: int
    at: datetime
    account_sid: str
    form: dict[str, Any]
    status_code: int | None = None
    error_code: int | None = None
    message_sid: str | None = None
    scripted: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number, "at": self.at.isoformat(), "account_sid": self.account_sid,
            "form": self.form, "status_code": self.status_code, "error_code": self.error_code,
            "message_sid": self.message_sid, "scripted": self.scripted,
        }


@dataclass
class Media:
    sid: str
    message_sid: str
    account_sid: str
    content_type: str
    data: bytes
    not_found_remaining: int = 0


@dataclass
class CdnLink:
    media_sid: str
    expires_at: float


@dataclass
class InboundDelivery:
    """An inbound webhook as sent, kept so it can be delivered again byte for byte."""

    message_sid: str
    account_sid: str
    url: str
    params: dict[str, str]
    idempotency_token: str
    status_codes: list[int | None] = field(default_factory=list)


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.accounts: dict[str, Account] = {}
        self.numbers: dict[str, Number] = {}
        self.templates: dict[str, Template] = {}
        self.messages: dict[str, Message] = {}
        self.attempts: list[Attempt] = []
        self.media: dict[str, Media] = {}
        self.cdn: dict[str, CdnLink] = {}
        self.inbound: dict[str, InboundDelivery] = {}
        self.failures = FailureQueue()
        self.last_inbound: dict[tuple[str, str], datetime] = {}
        self._seq = 0
        self._changed = asyncio.Event()
        for account in config.accounts:
            self.add_account(account)
        for number in config.numbers:
            self.add_number(number)
        for template in config.templates:
            self.add_template(template)

    def add_account(self, account: Account) -> None:
        self.accounts[account.sid] = account

    def add_number(self, number: Number) -> None:
        if number.account_sid not in self.accounts:
            raise ValueError(f"unknown account {number.account_sid}")
        self.numbers[number.address] = number

    def add_template(self, template: Template) -> None:
        if template.account_sid not in self.accounts:
            raise ValueError(f"unknown account {template.account_sid}")
        self.templates[template.sid] = template

    def template_of(self, account_sid: str, content_sid: str) -> Template | None:
        """The account's template with this sid; None for another account's (Twilio: 21655)."""
        found = self.templates.get(content_sid)
        return found if found is not None and found.account_sid == account_sid else None

    def reset(self) -> None:
        """Forget traffic (messages, attempts, media, failures), keep accounts, numbers and
        templates."""
        self.messages.clear()
        self.attempts.clear()
        self.media.clear()
        self.cdn.clear()
        self.inbound.clear()
        self.failures.clear()
        self.last_inbound.clear()

    def authenticates(self, account_sid: str, authorization: str | None) -> bool:
        """HTTP basic auth as AccountSid:AuthToken, or as an API key sid:secret of the account."""
        account = self.accounts.get(account_sid)
        if account is None:
            return False
        user, password = _basic_credentials(authorization)
        expected = account.auth_token if user == account_sid else account.api_keys.get(user)
        return expected is not None and hmac.compare_digest(password, expected)

    def account_of(self, authorization: str | None) -> str | None:
        """The account that basic credentials authenticate (APIs without the AccountSid in
        their path, like the Content API): by its sid and token, or one of its API keys."""
        user, _ = _basic_credentials(authorization)
        for account in self.accounts.values():
            if (user == account.sid or user in account.api_keys) and self.authenticates(
                    account.sid, authorization):
                return account.sid
        return None

    def add_message(self, message: Message) -> None:
        self.messages[message.sid] = message
        self.touch(message)

    def touch(self, message: Message) -> None:
        """Record a change to a message and wake the inbox long-polls."""
        self._seq += 1
        message.seq = self._seq
        message.date_updated = utcnow()
        self._changed.set()
        self._changed = asyncio.Event()

    def inbox(self, address: str, after: int) -> list[Message]:
        changed = [
            m for m in self.messages.values()
            if m.direction != "inbound" and m.to == address and m.seq > after
        ]
        return sorted(changed, key=lambda m: m.seq)

    async def wait_inbox(self, address: str, after: int, wait_s: float) -> list[Message]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            changed_event = self._changed
            found = self.inbox(address, after)
            remaining = deadline - loop.time()
            if found or remaining <= 0:
                return found
            try:
                await asyncio.wait_for(changed_event.wait(), remaining)
            except TimeoutError:
                return self.inbox(address, after)

    @property
    def cursor(self) -> int:
        return self._seq

    def record_attempt(self, account_sid: str, form: dict[str, Any]) -> Attempt:
        attempt = Attempt(len(self.attempts) + 1, utcnow(), account_sid, form)
        self.attempts.append(attempt)
        return attempt

    def set_last_inbound(self, user: str, number: str, age_s: float) -> None:
        """Pretend the user last wrote to the number ``age_s`` seconds ago (tests move it into
        the past to close the 24-hour window)."""
        self.last_inbound[(user, number)] = utcnow() - timedelta(seconds=age_s)

    def window_open(self, user: str, number: str) -> bool:
        last = self.last_inbound.get((user, number))
        return last is not None and (utcnow() - last).total_seconds() < self.config.window_s


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    """(user, password) of a basic Authorization header; empty strings when there is none."""
    if not authorization or not authorization.startswith("Basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password
