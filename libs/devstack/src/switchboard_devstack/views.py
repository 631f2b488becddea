"""Test support: write a conversation's public view as the conversation service does."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError
from switchboard_contracts.conversation_view import VIEW_BUCKET, ConversationView, view_key


async def put_view(js: JetStreamContext, view: ConversationView) -> None:
    """Store ``view`` under its conversation's key (the bucket is created if missing)."""
    try:
        bucket = await js.key_value(VIEW_BUCKET)
    except BucketNotFoundError:
        bucket = await js.create_key_value(KeyValueConfig(bucket=VIEW_BUCKET, history=1))
    await bucket.put(view_key(view.conversation_id), view.to_bytes())
