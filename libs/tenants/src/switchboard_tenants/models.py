"""What a tenant is: its Twilio identity, its numbers and its agent settings.

``TenantRecord`` is the public record (the KV directory carries it as JSON, with the auth
token only in encrypted form); ``NewTenant`` and ``TenantUpdate`` validate what callers write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant answering on WhatsApp. Be brief."
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_LANGUAGE = "en"

_WHATSAPP = re.compile(r"^whatsapp:\+([1-9]\d{6,14})$")


def _as_whatsapp(value: object) -> object:
    # Operators type "+E164"; Twilio always says "whatsapp:+E164".
    if isinstance(value, str) and value.strip().startswith("+"):
        return f"whatsapp:{value.strip()}"
    return value


TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
AccountSid = Annotated[str, StringConstraints(pattern=r"^AC[0-9a-f]{32}$")]
MessagingServiceSid = Annotated[str, StringConstraints(pattern=r"^MG[0-9a-f]{32}$")]
WhatsAppAddress = Annotated[
    str, BeforeValidator(_as_whatsapp), StringConstraints(pattern=_WHATSAPP.pattern)
]
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")]
BaseUrl = Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


_ADDRESS: TypeAdapter[str] = TypeAdapter(WhatsAppAddress)
_MSVC: TypeAdapter[str] = TypeAdapter(MessagingServiceSid)


def parse_address(value: str) -> str:
    """A ``whatsapp:+E164`` address (``+E164`` accepted); raises pydantic's ValidationError."""
    return _ADDRESS.validate_python(value)


def parse_messaging_service(value: str) -> str:
    return _MSVC.validate_python(value)


def number_digits(address: str) -> str | None:
    """The E.164 digits of a ``whatsapp:+E164`` address, None for anything else."""
    match = _WHATSAPP.match(address)
    return match.group(1) if match else None


def slugify(name: str) -> str:
    """A tenant id made from a display name (``"Acme Dental"`` -> ``"acme-dental"``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")


def _check_token(token: SecretStr) -> SecretStr:
    value = token.get_secret_value()
    if not value or value.strip() != value:
        raise ValueError("the auth token is empty or has surrounding whitespace")
    return token


AuthToken = Annotated[SecretStr, AfterValidator(_check_token)]


class TenantRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    name: str
    account_sid: str
    auth_token_encrypted: str = Field(repr=False)
    system_prompt: str
    model: str
    language: str
    llm_base_url: str | None = None
    numbers: tuple[str, ...] = ()
    messaging_services: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime


class NewTenant(BaseModel):
    tenant_id: TenantId
    name: Name
    account_sid: AccountSid
    auth_token: AuthToken
    numbers: tuple[WhatsAppAddress, ...] = ()
    messaging_services: tuple[MessagingServiceSid, ...] = ()
    system_prompt: Text = DEFAULT_SYSTEM_PROMPT
    model: Text = DEFAULT_MODEL
    language: Language = DEFAULT_LANGUAGE
    llm_base_url: BaseUrl | None = None


class TenantUpdate(BaseModel):
    """None leaves a field as it is, except ``llm_base_url=None`` given explicitly: it clears."""

    name: Name | None = None
    account_sid: AccountSid | None = None
    auth_token: AuthToken | None = None
    system_prompt: Text | None = None
    model: Text | None = None
    language: Language | None = None
    llm_base_url: BaseUrl | None = None


@dataclass(frozen=True, slots=True)
class TenantRoute:
    """Where an inbound webhook belongs, with what the gateway needs to check its signature."""

    tenant_id: str
    account_sid: str
    auth_token: str = field(repr=False)
    tenant: TenantRecord
