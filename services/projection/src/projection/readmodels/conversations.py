"""Conversations: tenant, user, status, the WhatsApp window, timestamps and counts.

The status is derived from the latest session started and the latest closed (a generated
column), the timestamps by least/greatest, and the message counts are recounted from the
``messages`` rows, so none depends on the order the events were projected in.
"""

from __future__ import annotations

from typing import Any

from switchboard_contracts import Envelope
from switchboard_contracts.conversation_view import WHATSAPP_WINDOW
from switchboard_contracts.events.conversation import (
    AssistantMessageAppended,
    ConversationClosed,
    ConversationStarted,
    OutboundMessageRequested,
    ReplyRequested,
    ReplySuperseded,
    TranscriptAppended,
    TranscriptionRequested,
    UserMessageAppended,
)

from ..tables import Table, first, greatest, latest_by, least
from ..writes import Writes
from .base import Applier

CONVERSATIONS = Table("conversations", ("conversation_id",), {
    "tenant_id": first, "user_address": first, "business_address": first, "account_sid": first,
    "session": greatest, "closed_session": greatest, "started_at": least,
    "closed_at": latest_by("closed_session"), "close_reason": latest_by("closed_session"),
    "last_user_message_at": greatest, "window_expires_at": greatest, "turns": greatest,
    "created_at": least, "updated_at": greatest,
    # People in the loop (``modes.py``): each group is the latest by the CONVERSATION stream
    # sequence of the event that set it (the aggregate's own order).
    "mode": latest_by("mode_seq"), "operator_id": latest_by("mode_seq"), "mode_seq": greatest,
    "waiting_since": latest_by("handoff_seq"), "handoff_source": latest_by("handoff_seq"),
    "handoff_reason": latest_by("handoff_seq"), "handoff_seq": greatest,
    "handoff_expired_at": greatest,
    "opted_out": latest_by("opt_seq"), "opted_out_at": latest_by("opt_seq"), "opt_seq": greatest,
})


def upsert_conversation(envelope: Envelope, writes: Writes, **values: Any) -> None:
    """A fact about the conversation of ``envelope``; shared with ``modes.py``."""
    conversation_id = envelope.conversation_id
    if not conversation_id:
        return
    writes.upsert(CONVERSATIONS, conversation_id=conversation_id,
                  tenant_id=envelope.tenant_id or None, created_at=envelope.occurred_at,
                  updated_at=envelope.occurred_at, **values)
    writes.touch(conversation_id)


def activity(envelope: Envelope, writes: Writes) -> None:
    """An event of the conversation: its last activity (needs no payload)."""
    upsert_conversation(envelope, writes)


def started(envelope: Envelope, data: ConversationStarted, _subject: str, writes: Writes) -> None:
    upsert_conversation(envelope, writes, user_address=data.user_address,
                        business_address=data.business_address, account_sid=data.account_sid,
                        session=data.session, started_at=envelope.occurred_at)


def user_message(envelope: Envelope, data: UserMessageAppended, _subject: str, writes: Writes
                 ) -> None:
    upsert_conversation(envelope, writes, last_user_message_at=data.received_at,
                        window_expires_at=data.received_at + WHATSAPP_WINDOW, turns=data.turn)


def closed(envelope: Envelope, data: ConversationClosed, _subject: str, writes: Writes) -> None:
    upsert_conversation(envelope, writes, closed_session=data.session,
                        closed_at=envelope.occurred_at, close_reason=data.reason)


APPLIERS: dict[str, Applier] = {
    ConversationStarted.TYPE: started,
    UserMessageAppended.TYPE: user_message,  # its turn is the turn that answers it
    ConversationClosed.TYPE: closed,
}
# Events that only mean "the conversation was active" (IdleCheckDue is a timer firing, not
# activity: it stays in the timeline only).
ACTIVITY = frozenset({
    TranscriptionRequested.TYPE, TranscriptAppended.TYPE, ReplyRequested.TYPE,
    AssistantMessageAppended.TYPE, ReplySuperseded.TYPE, OutboundMessageRequested.TYPE,
})
