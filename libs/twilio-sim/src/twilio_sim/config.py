"""What the simulator knows: accounts, WhatsApp numbers and timing, from a JSON/TOML file.

Example (TOML)::

    public_url = "http://127.0.0.1:8090"

    [[accounts]]
    sid = "AC00000000000000000000000000000001"
    auth_token = "0123456789abcdef0123456789abcdef"

    [[numbers]]
    address = "whatsapp:+14155238886"
    account_sid = "AC00000000000000000000000000000001"
    webhook_url = "http://127.0.0.1:8080/twilio/whatsapp#rc=3&rp=5xx,ct"
    messaging_service_sid = "MG00000000000000000000000000000001"
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
WHATSAPP_ADDRESS = re.compile(r"^whatsapp:\+[1-9]\d{6,14}$")


class Account(BaseModel):
    sid: str
    auth_token: str = Field(min_length=1)
    # API key sid (SK...) -> secret: the SDK may authenticate with a key instead of the token.
    api_keys: dict[str, str] = Field(default_factory=dict)

    @field_validator("sid")
    @classmethod
    def _account_sid(cls, value: str) -> str:
        if not ACCOUNT_SID.match(value):
            raise ValueError("an AccountSid is 'AC' followed by 32 lowercase hex digits")
        return value


class Number(BaseModel):
    """A WhatsApp sender, configured like a Twilio number: where its inbound messages go."""

    address: str
    account_sid: str
    webhook_url: str | None = None
    messaging_service_sid: str | None = None

    @field_validator("address")
    @classmethod
    def _whatsapp_address(cls, value: str) -> str:
        if not WHATSAPP_ADDRESS.match(value):
            raise ValueError("a number is 'whatsapp:+' followed by an E.164 number")
        return value

    @field_validator("messaging_service_sid")
    @classmethod
    def _service_sid(cls, value: str | None) -> str | None:
        if value is not None and not SERVICE_SID.match(value):
            raise ValueError("a MessagingServiceSid is 'MG' followed by 32 lowercase hex digits")
        return value


class Template(BaseModel):
    """An approved WhatsApp template (a Content API resource with a ``twilio/text`` type) of
    one account: its body has ``{{1}}``-style placeholders, filled from ``ContentVariables``
    (or ``variables``, the defaults) when a message is sent with its ``ContentSid``."""

    sid: str
    account_sid: str
    friendly_name: str = ""
    language: str = "en"
    body: str
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("sid")
    @classmethod
    def _content_sid(cls, value: str) -> str:
        if not CONTENT_SID.match(value):
            raise ValueError("a ContentSid is 'HX' followed by 32 hex digits")
        return value

    def render(self, variables: dict[str, str]) -> str:
        """The body with each ``{{key}}`` replaced (a given value, else the default)."""
        values = {**self.variables, **variables}
        return re.sub(r"\{\{\s*(\w+)\s*\}\}",
                      lambda m: values.get(m.group(1), m.group(0)), self.body)


class StatusDelays(BaseModel):
    """Seconds between a create and each status callback (sent, then delivered, then read)."""

    sent: float = 0.05
    delivered: float = 0.05
    read: float = 0.2


class SimConfig(BaseModel):
    accounts: list[Account] = Field(default_factory=list)
    numbers: list[Number] = Field(default_factory=list)
    # Approved templates (ContentSids) per account; more through the Content API.
    templates: list[Template] = Field(default_factory=list)
    # Base of media URLs; None means the URL the admin call came in on.
    public_url: str | None = None
    status_delays: StatusDelays = Field(default_factory=StatusDelays)
    read_receipts: bool = True
    # Fail free-form sends (no ContentSid) with 63016 when the user wrote nothing to that
    # number in the last window_s: the message is created, then fails, as Twilio does.
    enforce_window: bool = False
    window_s: float = 24 * 3600
    # Fresh media answers 404 this many times first, as Twilio's media store sometimes does.
    media_not_found_times: int = 0
    cdn_url_ttl_s: float = 300.0
    # Base of the redirected media URLs, e.g. another host name for this server, so that a
    # client that leaks credentials across hosts is caught; None means the public URL.
    cdn_base_url: str | None = None
    webhook_retry_delay_s: float = 0.5


def load_config(path: Path) -> SimConfig:
    """Read a ``.toml`` or ``.json`` file."""
    text = path.read_text()
    raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    return SimConfig.model_validate(raw)
