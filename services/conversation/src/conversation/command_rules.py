"""Operator commands (ADR 0022) decided like any fact: plain functions over the state.

``decide_command`` returns the command's next event (a ``Step``), a ``Refused`` with the
reason the person sees, or None when the command is done (applied earlier: a retry with the
same ``command_id`` is accepted again; or nothing to do: a conversation released twice). The
handler folds each step and asks again, as for events, and appends all steps in one batch with
the version check: of two operators claiming at once, one append wins and the other command is
decided again on the new version, and refused.

A command's last event carries its ``command_id`` (the state records it), and every event's
key derives from it, so a retry within the duplicate window is also dropped by Nats-Msg-Id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from switchboard_contracts.commands import (
    Claim,
    Close,
    Command,
    Release,
    Reply,
    SendTemplate,
    TakeOver,
)
from switchboard_contracts.conversation_view import Mode
from switchboard_contracts.events.conversation import (
    ConversationClosed,
    ConversationStarted,
    HandoffClaimed,
    HandoffReleased,
    HandoffRequested,
)

from .policy import TenantPolicy
from .rules import Step, outbound
from .state import ConversationState

# CommandResult.reason tokens.
CLAIMED_BY_ANOTHER = "claimed_by_another"
NOT_WAITING = "not_waiting"
NOT_CLAIMED = "not_claimed"
NOT_YOUR_CONVERSATION = "not_your_conversation"
OUTSIDE_WINDOW = "outside_24h_window"
OPTED_OUT = "opted_out"
UNKNOWN_TEMPLATE = "unknown_template"
MISSING_VARIABLES = "missing_variables"
UNKNOWN_CONVERSATION = "unknown_conversation"
CLOSED = "closed"
EMPTY_REPLY = "empty_reply"
INVALID_COMMAND = "invalid_command"
WRONG_TENANT = "wrong_tenant"


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


Outcome = Step | Refused | None


def decide_command(state: ConversationState, command: Command, policy: TenantPolicy,
                   now: datetime) -> Outcome:
    if command.command_id in state.applied_commands:
        return None
    if isinstance(command, SendTemplate):
        return _send_template(state, command, policy)
    # Another tenant's conversation answers exactly like one that does not exist.
    if not _exists_for(state, command.tenant_id):
        return Refused(UNKNOWN_CONVERSATION)
    match command:
        case TakeOver():
            return _take(state, command, from_bot=True)
        case Claim():
            return _take(state, command, from_bot=False)
        case Release():
            if state.mode is Mode.BOT:
                return None  # already the bot's
            return Step(HandoffReleased(reason="operator", operator_id=command.operator_id,
                                        command_id=command.command_id),
                        f"HandoffReleased:{command.command_id}")
        case Close():
            return _close(state, command)
        case Reply():
            return _reply(state, command, now)
    raise AssertionError(f"unhandled command {command.command}")


def _exists_for(state: ConversationState, tenant_id: str) -> bool:
    return state.session > 0 and state.tenant_id == tenant_id


def _take(state: ConversationState, command: TakeOver | Claim, *, from_bot: bool) -> Outcome:
    """Claim (a conversation waiting for a person) or take over (also from the bot)."""
    if not state.open:
        return Refused(CLOSED)
    if state.mode is Mode.HUMAN:
        return None if state.operator_id == command.operator_id else Refused(CLAIMED_BY_ANOTHER)
    if state.mode is Mode.BOT:
        if not from_bot:
            return Refused(NOT_WAITING)
        return Step(HandoffRequested(source="operator", operator_id=command.operator_id,
                                     turn=state.turn), f"HandoffRequested:{command.command_id}")
    return Step(HandoffClaimed(operator_id=command.operator_id, command_id=command.command_id),
                f"HandoffClaimed:{command.command_id}")


def _close(state: ConversationState, command: Close) -> Outcome:
    if not state.open:
        return None  # closed already
    if state.mode is not Mode.BOT:
        return Step(HandoffReleased(reason="closed", operator_id=command.operator_id),
                    f"HandoffReleased:{command.command_id}")
    return Step(ConversationClosed(reason="operator", session=state.session,
                                   command_id=command.command_id),
                f"ConversationClosed:{command.command_id}")


def _reply(state: ConversationState, command: Reply, now: datetime) -> Outcome:
    if not command.text.strip() and command.media_url is None:
        return Refused(EMPTY_REPLY)
    if not state.open:
        return Refused(CLOSED)
    if state.mode is not Mode.HUMAN:
        return Refused(NOT_CLAIMED)
    if state.operator_id != command.operator_id:
        return Refused(NOT_YOUR_CONVERSATION)
    if state.opted_out:
        return Refused(OPTED_OUT)
    window_ends_at = state.window_ends_at()
    if window_ends_at is None or now >= window_ends_at:
        return Refused(OUTSIDE_WINDOW)
    return outbound(state, f"OutboundMessageRequested:{command.command_id}", kind="operator",
                    purpose="operator_reply", text=command.text, media_url=command.media_url,
                    operator_id=command.operator_id, command_id=command.command_id)


def _send_template(state: ConversationState, command: SendTemplate,
                   policy: TenantPolicy) -> Outcome:
    """A template, inside or outside the window; to a user who never wrote, business
    initiated: the conversation starts with it (the tenant's account, the command's or the
    tenant's first number)."""
    exists = _exists_for(state, command.tenant_id)
    if command.conversation_id is not None and not exists:
        return Refused(UNKNOWN_CONVERSATION)
    template = policy.template(command.template)
    if template is None:
        return Refused(UNKNOWN_TEMPLATE)
    if any(name not in command.variables for name in template.variables):
        return Refused(MISSING_VARIABLES)
    if state.opted_out:
        return Refused(OPTED_OUT)
    if not state.open:
        user = state.user_address or command.user_address
        business = state.business_address or command.business_address or policy.first_number
        account = state.account_sid or policy.account_sid
        if not (user and business and account):
            return Refused(INVALID_COMMAND)
        session = state.session + 1
        return Step(ConversationStarted(user_address=user, business_address=business,
                                        account_sid=account, session=session),
                    f"ConversationStarted:{session}")
    return outbound(state, f"OutboundMessageRequested:{command.command_id}", kind="template",
                    purpose="template", content_sid=template.content_sid,
                    content_variables=dict(command.variables), template_name=template.name,
                    operator_id=command.operator_id, command_id=command.command_id)
