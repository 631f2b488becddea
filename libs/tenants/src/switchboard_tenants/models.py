"""What a tenant is: its Twilio identity, its numbers and its agent settings.

``TenantRecord`` is the public record (the KV directory carries it as JSON, with the auth
token only in encrypted form); ``NewTenant`` and ``TenantUpdate`` validate what callers write.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant answering on WhatsApp. Be brief."
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_LANGUAGE = "en"
DEFAULT_HANDOFF_DEADLINE_S = 900

HandoffUnclaimed = Literal["bot", "wait"]
ApiKeyRole = Literal["reader", "operator"]

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


Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# The tenant's own keywords, added to the language defaults by the conversation (which
# normalizes case, accents and punctuation when it matches).
Keywords = Annotated[tuple[Keyword, ...], Field(max_length=50)]
TemplateName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")]
ContentSid = Annotated[str, StringConstraints(pattern=r"^HX[0-9a-f]{32}$")]
# Twilio's ContentVariables keys: "1", "2", ... or named placeholders.
VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")]
OperatorLabel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                 max_length=100)]
HandoffDeadline = Annotated[int, Field(ge=0, le=7 * 24 * 3600)]

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Not an address ipaddress accepts, but a number in the last label: no DNS name ends so.
_NUMERIC_HOST = re.compile(r"^(?!(?:\d{1,3}\.){3}\d{1,3}$)(?:.*\.)?(?:0x[0-9a-f]*|\d+)$")


def _check_webhook_url(value: str) -> str:
    """https only (plain http for a local receiver in development and tests), and never an
    address inside a private network: the sender calls this URL from inside the cluster.

    A host name that resolves to an internal address cannot be caught here (DNS may change
    after the check); the URL is set by the platform's admin with ``switchboard-tenants``, and
    deployments also deny the sender's egress to internal ranges (README: Tenant webhooks).
    """
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if not host or parts.username or parts.password:
        raise ValueError("the URL needs a host and no user:password")
    local = host in _LOCAL_HOSTS
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ValueError("the webhook URL must use https (http only for localhost)")
    if _NUMERIC_HOST.match(host):  # 2130706433, 0x7f.1, 127.1: resolvers read them as IPs
        raise ValueError("write an IP address in its usual dotted form")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return value  # a host name
    if not local and not ip.is_global:
        raise ValueError("the webhook URL must not point to a private or reserved address")
    return value


WebhookUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000),
    AfterValidator(_check_webhook_url),
]


def _check_secret(min_length: int) -> AfterValidator:
    def check(secret: SecretStr) -> SecretStr:
        value = secret.get_secret_value()
        if value.strip() != value or len(value) < min_length:
            raise ValueError(
                f"the secret must be at least {min_length} characters, without surrounding "
                "whitespace"
            )
        return secret

    return AfterValidator(check)


LlmApiKey = Annotated[SecretStr, _check_secret(1)]
# Signs the tenant's webhooks: long enough not to be guessed (e.g. `openssl rand -hex 32`).
WebhookSecret = Annotated[SecretStr, _check_secret(16)]


class Template(BaseModel):
    """An approved WhatsApp template (a Twilio Content template) the tenant may send."""

    model_config = ConfigDict(frozen=True)

    name: TemplateName
    content_sid: ContentSid
    language: Language
    variables: tuple[VariableName, ...] = ()

    @field_validator("variables")
    @classmethod
    def _distinct(cls, variables: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(variables)) != len(variables):
            raise ValueError("variable names must be distinct")
        return variables


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
    # People in the loop (ADR 0022). Secrets only encrypted; the directory decrypts them.
    llm_api_key_encrypted: str | None = Field(default=None, repr=False)
    handoff_keywords: tuple[str, ...] = ()
    opt_out_keywords: tuple[str, ...] = ()
    opt_in_keywords: tuple[str, ...] = ()
    handoff_deadline_s: int = DEFAULT_HANDOFF_DEADLINE_S  # 0: a handoff never expires
    handoff_unclaimed: HandoffUnclaimed = "bot"  # what an expired handoff returns to
    webhook_url: str | None = None
    webhook_secret_encrypted: str | None = Field(default=None, repr=False)
    templates: tuple[Template, ...] = ()

    def template(self, name: str) -> Template | None:
        return next((t for t in self.templates if t.name == name), None)


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
    llm_api_key: LlmApiKey | None = None
    handoff_keywords: Keywords = ()
    opt_out_keywords: Keywords = ()
    opt_in_keywords: Keywords = ()
    handoff_deadline_s: HandoffDeadline = DEFAULT_HANDOFF_DEADLINE_S
    handoff_unclaimed: HandoffUnclaimed = "bot"
    webhook_url: WebhookUrl | None = None
    webhook_secret: WebhookSecret | None = None

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> NewTenant:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("a webhook URL needs a webhook secret")
        return self


class TenantUpdate(BaseModel):
    """None leaves a field as it is, except for the fields in ``CLEARABLE`` given explicitly
    as None: they are cleared (clearing the webhook URL also drops its secret)."""

    CLEARABLE: ClassVar[frozenset[str]] = frozenset({"llm_base_url", "llm_api_key",
                                                     "webhook_url"})

    name: Name | None = None
    account_sid: AccountSid | None = None
    auth_token: AuthToken | None = None
    system_prompt: Text | None = None
    model: Text | None = None
    language: Language | None = None
    llm_base_url: BaseUrl | None = None
    llm_api_key: LlmApiKey | None = None
    handoff_keywords: Keywords | None = None
    opt_out_keywords: Keywords | None = None
    opt_in_keywords: Keywords | None = None
    handoff_deadline_s: HandoffDeadline | None = None
    handoff_unclaimed: HandoffUnclaimed | None = None
    webhook_url: WebhookUrl | None = None
    webhook_secret: WebhookSecret | None = None

    def changed(self) -> dict[str, object]:
        """The fields to write: those given, with None only where it clears."""
        return {
            name: getattr(self, name) for name in sorted(self.model_fields_set)
            if getattr(self, name) is not None or name in self.CLEARABLE
        }


@dataclass(frozen=True, slots=True)
class TenantRoute:
    """Where an inbound webhook belongs, with what the gateway needs to check its signature."""

    tenant_id: str
    account_sid: str
    auth_token: str = field(repr=False)
    tenant: TenantRecord
    llm_api_key: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
