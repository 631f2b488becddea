"""Commands to the Conversation aggregate from people (operators, a tenant's own system).

Operators act on a conversation through the operator API; each action is a command that the
conversation service decides like any fact (the same rules, the same version check on the
append), over NATS request-reply on ``commands.conversation.<tenant_id>`` (ADR 0022). The
reply says whether it was accepted and, if not, why, so a person sees at once that another
operator claimed the conversation first or that the 24-hour window is closed.

A command is idempotent by its ``command_id``: sent again (a timeout, a double click) it is
accepted once and answers the same.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

COMMAND_SUBJECT_PREFIX = "commands.conversation"
COMMAND_QUEUE = "conversation-commands"  # the conversation replicas' queue group


def command_subject(tenant_id: str) -> str:
    """Where a tenant's commands go: the subject carries the tenant, so a NATS permission
    can scope a caller to its tenant and the conversation checks the command against it."""
    return f"{COMMAND_SUBJECT_PREFIX}.{tenant_id}"


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Field(min_length=8, max_length=128)
    tenant_id: str
    operator_id: str | None = Field(default=None, max_length=128)
    """Who acts (an operator's name); None for a tenant's own system."""


class _OnConversation(_Command):
    conversation_id: str = Field(pattern=r"^cv[0-9a-f]{32}$")


class TakeOver(_OnConversation):
    """An operator takes a conversation from the bot (requested and claimed at once)."""

    command: Literal["take_over"] = "take_over"
    operator_id: str = Field(min_length=1, max_length=128)


class Claim(_OnConversation):
    """An operator claims a conversation waiting for a person; refused if another has."""

    command: Literal["claim"] = "claim"
    operator_id: str = Field(min_length=1, max_length=128)


class Release(_OnConversation):
    """Hand the conversation back to the bot."""

    command: Literal["release"] = "release"


class Close(_OnConversation):
    """Close the conversation (its session ends; a next message starts a new one)."""

    command: Literal["close"] = "close"


class Reply(_OnConversation):
    """An operator's message to the user (inside the 24-hour window only)."""

    command: Literal["reply"] = "reply"
    operator_id: str = Field(min_length=1, max_length=128)
    text: str = Field(default="", max_length=4096)
    media_url: str | None = Field(default=None, max_length=2048, pattern=r"^https://")


class SendTemplate(_Command):
    """Send one of the tenant's approved templates, inside or outside the window.

    To an existing conversation (``conversation_id``) or, business-initiated, to a user by
    address (``user_address``, from ``business_address`` or the tenant's first number)."""

    command: Literal["send_template"] = "send_template"
    conversation_id: str | None = Field(default=None, pattern=r"^cv[0-9a-f]{32}$")
    user_address: str | None = Field(default=None, pattern=r"^whatsapp:\+[1-9][0-9]{6,14}$")
    business_address: str | None = Field(default=None,
                                         pattern=r"^whatsapp:\+[1-9][0-9]{6,14}$")
    template: str = Field(min_length=1, max_length=128)
    """The template's name as registered with ``switchboard-tenants add-template``."""
    variables: dict[str, str] = Field(default_factory=dict)


Command = Annotated[TakeOver | Claim | Release | Close | Reply | SendTemplate,
                    Field(discriminator="command")]
COMMAND: TypeAdapter[Command] = TypeAdapter(Command)


class CommandResult(BaseModel):
    """The conversation's answer to a command."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    accepted: bool
    reason: str | None = None
    """Why it was refused, a stable token: ``claimed_by_another``, ``not_waiting``,
    ``not_claimed``, ``not_your_conversation``, ``outside_24h_window``, ``opted_out``,
    ``unknown_template``, ``missing_variables``, ``unknown_conversation``, ``closed``,
    ``empty_reply``, ``invalid_command``, ``wrong_tenant``."""
    conversation_id: str | None = None
    version: int = 0
    """The conversation's version after the command (the view's ``version``)."""
    mode: str | None = None
    operator_id: str | None = None
