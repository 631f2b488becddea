"""The public view of each conversation: this service alone writes it, after each append.

One KV entry per conversation in ``VIEW_BUCKET`` (history 1). Replicas write concurrently, so
each write is a compare-and-set on the entry's revision, and a view never replaces a newer one
(higher ``version``, the stream sequence of the last event it reflects).
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from switchboard_contracts.conversation_view import VIEW_BUCKET, ConversationView, view_key
from switchboard_runtime.bus.kv import kv_replicas
from switchboard_runtime.eventsourcing import LruCache

from .state import ConversationState

MAX_WRITE_ATTEMPTS = 10


def view_of(state: ConversationState) -> ConversationView | None:
    if state.conversation_id is None or state.tenant_id is None:
        return None
    return ConversationView(
        conversation_id=state.conversation_id, tenant_id=state.tenant_id, version=state.version,
        turn=state.turn, turn_superseded=state.turn in state.superseded_turns,
        answered_turn=max(state.answered_turns, default=0),
        open=state.open, window_ends_at=state.window_ends_at(),
        mode=state.mode, opted_out=state.opted_out, operator_id=state.operator_id,
        accepted_replies=tuple(state.accepted_replies),
    )


async def open_view_bucket(js: JetStreamContext, replicas: int | None) -> KeyValue:
    try:
        return await js.key_value(VIEW_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(
            bucket=VIEW_BUCKET, history=1, replicas=kv_replicas(replicas),
            description="Conversation: the public view of each conversation (its service "
                        "alone writes it)",
        ))


class ViewWriter:
    def __init__(self, bucket: KeyValue, remembered: int) -> None:
        self._bucket = bucket
        # Per conversation, the entry's revision and the view's version this process last
        # wrote or read: usually still current, so a write is one compare-and-set without
        # reading the entry first, and a view already written is not written again.
        self._known: LruCache[str, tuple[int, int]] = LruCache(remembered)

    async def write(self, state: ConversationState) -> None:
        """Write the state's view unless a view at least as new is there (a failed write is
        retried by the event's redelivery, which comes here again)."""
        view = view_of(state)
        if view is None:
            return
        key = view_key(view.conversation_id)
        known = self._known.get(key)
        if known is not None and known[1] >= view.version:
            return
        revision = known[0] if known is not None else None
        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                if revision is None:
                    written = await self._bucket.create(key, view.to_bytes())
                else:
                    written = await self._bucket.update(key, view.to_bytes(), last=revision)
            except KeyWrongLastSequenceError:
                revision, stored = await self._current(key)
                if stored is not None and revision is not None and stored.version >= view.version:
                    self._known.put(key, (revision, stored.version))
                    return  # a newer (or the same) view is there already
                continue
            self._known.put(key, (written, view.version))
            return
        raise KeyWrongLastSequenceError(description=f"view of {key}: too many concurrent writers")

    async def _current(self, key: str) -> tuple[int | None, ConversationView | None]:
        try:
            entry = await self._bucket.get(key)
        except KeyNotFoundError:
            return None, None
        if entry.value is None:
            return entry.revision, None
        return entry.revision, ConversationView.from_bytes(entry.value)
