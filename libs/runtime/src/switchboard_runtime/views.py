"""Reading the conversation's public view (``switchboard_contracts.conversation_view``).

The conversation service alone writes the views, to the KV bucket ``VIEW_BUCKET``, and
creates that bucket; a reader that starts first finds no bucket and sees no view until it
exists, so the bucket is looked up again on each read until it is found.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue
from switchboard_contracts.conversation_view import VIEW_BUCKET, ConversationView, view_key


class ConversationViews:
    """``view_of(conversation_id)``: the latest view, or None when none is written yet."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._bucket: KeyValue | None = None

    async def view_of(self, conversation_id: str) -> ConversationView | None:
        bucket = await self._open()
        if bucket is None:
            return None
        try:
            entry = await bucket.get(view_key(conversation_id))
        except KeyNotFoundError:  # also raised for a deleted key
            return None
        return ConversationView.from_bytes(entry.value) if entry.value else None

    async def _open(self) -> KeyValue | None:
        if self._bucket is None:
            try:
                self._bucket = await self._js.key_value(VIEW_BUCKET)
            except BucketNotFoundError:
                return None
        return self._bucket
