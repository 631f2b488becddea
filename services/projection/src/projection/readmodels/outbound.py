"""What the conversation itself asked the sender to send (``OutboundMessageRequested``): a
notice to the user, an operator's message, an approved template. Each is a message of the
conversation beside the bot's replies, keyed by the request's event id: the sender's tree for
it (``sender.<that id>.>``) gives its parts and delivery state, as for a reply (``parts.py``).
"""

from __future__ import annotations

from switchboard_contracts import Envelope
from switchboard_contracts.events.conversation import OutboundMessageRequested

from ..writes import Writes
from .base import Applier
from .messages import OUTBOUND, upsert_message


def requested(envelope: Envelope, data: OutboundMessageRequested, _subject: str,
              writes: Writes) -> None:
    media = [{"url": data.media_url}] if data.media_url else None
    upsert_message(envelope, writes, str(envelope.event_id), OUTBOUND, turn=data.turn,
                   text=data.text or None, media=media, kind=data.kind, purpose=data.purpose,
                   operator_id=data.operator_id, template_name=data.template_name,
                   content_sid=data.content_sid, content_variables=data.content_variables or None,
                   from_address=data.business_address, to_address=data.user_address,
                   account_sid=data.account_sid)


APPLIERS: dict[str, Applier] = {OutboundMessageRequested.TYPE: requested}
