"""What must hold before a part goes out (docs/adr/0014, 0022), in order:

- a first part comes after the outbound message it names (``after``) has gone out or failed;
- the reply holds its conversation's lease (``claims.py``): one reply going out at a time;
- the conversation's public view allows it (``rules.refusal``), read at least as new as the
  request (``request_seq``) and, before an agent reply's first part, once the conversation
  decided on its turn: it consumes the same ``ReplyGenerated`` in parallel and may supersede
  it. An acceptance is final: a reply accepted before a later turn's reply was is named by
  the view (``accepted_replies``), and its later parts go on whatever newer turn begins.

The view is waited for while the lease is claimed (the conversation writes it in parallel
with us); what time will settle waits on a timer (``waits.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from switchboard_contracts import Envelope
from switchboard_contracts.conversation_view import ConversationView
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .claims import Claims
from .outcomes import Outcomes
from .rules import refusal
from .settings import SenderSettings
from .state import ReplyState, gone_out
from .store import ReplyStore
from .view_watch import ViewWatch
from .waits import AFTER, LEASE_HELD, UNDECIDED, VIEW_BEHIND, Waits

log = get_logger(__name__)


class ViewNotWritten(Exception):
    """The conversation service has not written the conversation's view yet: try again soon
    (nothing is sent without knowing the window, the mode and the opt-out)."""


async def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel a task whose result is not needed any more, and wait for it to end."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # it ended before the cancel; what it raised is not needed either


class BeforePart:
    def __init__(self, settings: SenderSettings, store: ReplyStore, views: ViewWatch,
                 claims: Claims, waits: Waits, outcomes: Outcomes,
                 clock: Callable[[], datetime]) -> None:
        self._settings = settings
        self._store = store
        self._views = views
        self._claims = claims
        self._waits = waits
        self._outcomes = outcomes
        self._clock = clock
        self._part_timeout = timedelta(seconds=settings.part_timeout_s)
        self._acceptance_wait = timedelta(seconds=settings.acceptance_wait_s)
        self._after_wait = timedelta(seconds=settings.after_wait_s)

    async def clear(self, state: ReplyState, cause: Envelope, number: int) -> int | None:
        """The lease's revision when part ``number`` may go now; None when not: a timer will
        look again, or the part is recorded as not sent."""
        assert state.accepted is not None
        first_part = number == 1
        if (first_part and state.after and not state.part(number).attempts
                and not await self._after_gone_out(state, cause)):
            return None
        conversation_id = state.accepted.conversation_id or ""
        # The agent's reply waits for the conversation's decision on its turn; what the
        # conversation asked for is decided already.
        needs_decision = first_part and state.kind is None
        viewing = asyncio.ensure_future(
            self._settled_view(conversation_id, state.turn, needs_decision, state.request_seq))
        try:
            claim = await self._claims.claim(state, conversation_id)
        except BaseException:
            await _abandon(viewing)
            raise
        if not isinstance(claim, int):  # waits or is stale: no use for the view
            await _abandon(viewing)
        if claim == "wait":  # an earlier reply of the conversation is still going out
            await self._waits.look_again(state, cause, number - 1, LEASE_HELD, part=number,
                                         turn=state.turn)
            return None
        if claim == "stale":  # a reply for a newer turn holds the conversation
            await self._outcomes.failed(state, cause, number, "stale", None)
            return None
        view = await viewing
        if view is None:
            raise ViewNotWritten("no view of the conversation yet")
        if needs_decision and view.reply_pending(state.turn):
            if not await self._waits.look_again(state, cause, 0, UNDECIDED,
                                                self._acceptance_wait, turn=state.turn,
                                                view_turn=view.turn):
                await self._outcomes.failed(state, cause, number, "not_accepted", None)
            return None
        # The view that reflects the request (and what came before it, e.g. an opt-in before
        # its confirmation) not written yet: an older one could refuse wrongly.
        if view.version < state.request_seq:
            if await self._waits.look_again(state, cause, number - 1, VIEW_BEHIND,
                                            self._acceptance_wait, purpose=state.purpose,
                                            part=number):
                return None
            log.warning("the conversation's view never reached the request; checking the "
                        "one in hand", purpose=state.purpose, part=number)
        # Accepted before a later turn's reply was: the view names it (ADR 0014).
        accepted = not first_part or view.reply_accepted_id(state.reply_id)
        refused = refusal(view, state.turn, self._clock(), accepted=accepted,
                          kind=state.kind, purpose=state.purpose)
        if refused is not None:
            await self._outcomes.failed(state, cause, number, refused.reason,
                                        refused.error_code)
            return None
        return claim

    async def _after_gone_out(self, state: ReplyState, cause: Envelope) -> bool:
        """Whether the outbound message this one comes after has gone out or failed (then this
        one may go); if not, a timer looks again. Past ``after_wait_s`` from this one's
        arrival it goes anyway: the earlier one never reached the sender or stopped halfway."""
        assert state.after is not None
        before = await self._store.load(state.after)
        if gone_out(before, self._clock(), self._part_timeout):
            return True
        if await self._waits.look_again(state, cause, 0, AFTER, self._after_wait,
                                        purpose=state.purpose):
            return False
        why = "missing" if before.accepted is None else "unfinished"
        metrics.AFTER_GIVEN_UP.labels(why).inc()
        log.warning("the message this one comes after has not gone out in time; sending",
                    why=why, purpose=state.purpose)
        return True

    async def _settled_view(self, conversation_id: str, turn: int, needs_decision: bool,
                            min_version: int) -> ConversationView | None:
        """The conversation's view, waited for up to ``view_settle_s`` while it is missing,
        older than ``min_version`` (a request's stream sequence) or, before a reply's first
        part, undecided on ``turn``: the conversation usually writes within milliseconds, far
        sooner than a redelivery or a timer would look again; the write is pushed to the
        waiting handler (``view_watch.py``)."""
        started = time.monotonic()

        def settled(view: ConversationView | None) -> bool:
            return view is not None and view.version >= min_version and not (
                needs_decision and view.reply_pending(turn))

        view = await self._views.settled(conversation_id, settled, self._settings.view_settle_s)
        metrics.VIEW_SETTLE_SECONDS.observe(time.monotonic() - started)
        return view
