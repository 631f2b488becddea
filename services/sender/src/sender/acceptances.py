"""Whether the conversation accepted a reply, from its own stream (ADR 0014, update).

The view says which turn's reply was accepted last; once a later turn's reply is accepted,
an earlier accepted reply looks like a superseded one there. The conversation's
``AssistantMessageAppended`` events (public for this: catalogue) name every reply it accepted
(``reply_event_id``), for good. Read only in that case (a reply whose first part has not gone
out when the view has moved past its turn), from the stream's leader (a lagging replica could
miss it), by subject: one request per accepted reply of the conversation.
"""

from __future__ import annotations

import json

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from switchboard_contracts.events.conversation import AssistantMessageAppended
from switchboard_contracts.topology import CONVERSATION


async def accepted_by_conversation(js: JetStreamContext, conversation_id: str,
                                   reply_id: str) -> bool:
    subject = f"conversation.{conversation_id}.{AssistantMessageAppended.TYPE}"
    seq = 1
    while True:
        try:
            found = await js.get_msg(CONVERSATION.name, seq=seq, subject=subject, next=True)
        except NotFoundError:
            return False
        if json.loads(found.data or b"{}").get("data", {}).get("reply_event_id") == reply_id:
            return True
        seq = (found.seq or seq) + 1
