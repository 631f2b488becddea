"""Claiming a conversation's lease for a reply (``leases.py``; docs/adr/0014): free or its
own, the reply writes itself; held by a newer turn's agent reply, it is ``stale``; held by
an earlier reply, it takes over once that one is done or its lease expired, else it waits.

A claim starts from the key as this process last saw it (usually still current: one
compare-and-set); the decision that another reply holds it is only ever taken on a fresh
read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from switchboard_runtime.telemetry import get_logger

from . import metrics
from .leases import Holder, Leases
from .state import ReplyState, gone_out
from .store import MAX_CONFLICTS, ReplyStore

log = get_logger(__name__)


class Claims:
    def __init__(self, leases: Leases, store: ReplyStore, clock: Callable[[], datetime],
                 lease: timedelta, part_timeout: timedelta) -> None:
        self._leases = leases
        self._store = store
        self._clock = clock
        self._lease = lease
        self._part_timeout = part_timeout

    async def claim(self, state: ReplyState, conversation_id: str
                    ) -> int | Literal["wait", "stale"]:
        """Hold the conversation's lease for this reply: the lease's revision, or why not."""
        lease = self._leases.known(conversation_id)
        for _ in range(MAX_CONFLICTS):
            holder = lease.holder
            if holder is not None and holder.reply_id != state.reply_id:
                if not lease.fresh:
                    lease = await self._leases.read(conversation_id)
                    continue
                # An agent's reply behind a newer turn is stale: that turn's reply, which comes
                # after it, stopped waiting for it (AFTER_WAIT_S) or names none (stored before
                # ReplyGenerated 1.4); order over completeness then. What the conversation
                # asked for is never dropped for it: it waits its turn.
                if holder.turn > state.turn and state.kind is None:
                    return "stale"
                how = await self._takeover(holder)
                if how is None:
                    return "wait"
                metrics.LEASE_TAKEOVERS.labels(how).inc()
            revision = await self._leases.write(
                conversation_id, Holder(state.reply_id, state.turn, self._clock()),
                lease.revision)
            if revision is not None:
                return revision
            lease = await self._leases.read(conversation_id)
        raise RuntimeError("too many concurrent writers on one conversation's lease")

    async def renew(self, state: ReplyState, conversation_id: str, revision: int
                    ) -> int | None:
        """Renew the lease held at ``revision``; None when another reply holds it now."""
        renewed = await self._leases.write(
            conversation_id, Holder(state.reply_id, state.turn, self._clock()), revision)
        if renewed is not None:
            return renewed
        claim = await self.claim(state, conversation_id)
        return claim if isinstance(claim, int) else None

    async def _takeover(self, holder: Holder) -> str | None:
        """Why another reply's lease may be taken over (it is done, or expired), or None."""
        now = self._clock()
        if now - holder.renewed_at > self._lease:
            log.warning("a reply's lease expired without it being done; taking over",
                        turn=holder.turn)
            return "expired"
        if gone_out(await self._store.load(holder.reply_id), now, self._part_timeout):
            return "gone_out"
        return None
