"""How long each handoff waited for a person: ``switchboard_handoff_wait_seconds``, observed
once per handoff.

In the batch's transaction, after its rows are written, each request of the conversations the
batch touched that has no end yet is paired with the step that follows it
(``readmodels/handoffs.py``); the pairing marks the request ended (``ended_seq``) and returns
it. Only those are observed, once the transaction has committed. So the table decides, not the
delivery: a redelivered, duplicated or replayed event (a rebuild keeps ``handoff_steps``)
finds its request ended already and observes nothing; a transaction that fails observes
nothing and its retry pairs again. Transactions are serialised by the writers' lock
(``checkpoint.py``), so two replicas never both see a request as not ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from . import metrics
from .readmodels.handoffs import HANDOFF_STEPS
from .writes import Writes

# A request's end is the first step after it, if that step is not another request (then its
# end was never recorded: it is left unpaired rather than given the next handoff's end).
_END_WAITS = """
WITH ended AS (
    SELECT w.event_id, e.seq AS ended_seq, w.source, e.step AS outcome,
           GREATEST(EXTRACT(EPOCH FROM e.at - w.at), 0)::float8 AS waited_s
    FROM handoff_steps w
    CROSS JOIN LATERAL (
        SELECT x.seq, x.step, x.at FROM handoff_steps x
        WHERE x.conversation_id = w.conversation_id AND x.seq > w.seq
        ORDER BY x.seq LIMIT 1
    ) e
    WHERE w.conversation_id = ANY($1::text[]) AND w.step = 'requested'
      AND w.ended_seq IS NULL AND e.step <> 'requested'
)
UPDATE handoff_steps w SET ended_seq = ended.ended_seq
FROM ended WHERE w.event_id = ended.event_id
RETURNING ended.source, ended.outcome, ended.waited_s
"""


@dataclass(frozen=True, slots=True)
class EndedWait:
    source: str | None
    outcome: str
    waited_s: float


async def end_waits(conn: asyncpg.Connection, batches: Sequence[Writes]) -> list[EndedWait]:
    """In the transaction, after the batches are written: the waits they ended, each the
    first time it is seen ended."""
    conversations = sorted({row["conversation_id"] for writes in batches
                            for row in writes.rows(HANDOFF_STEPS)})
    if not conversations:
        return []
    ended = await conn.fetch(_END_WAITS, conversations)
    return [EndedWait(r["source"], r["outcome"], r["waited_s"]) for r in ended]


def observe_waits(waits: Sequence[EndedWait]) -> None:
    """Once committed."""
    for wait in waits:
        metrics.HANDOFF_WAIT_SECONDS.labels(wait.source or "unknown", wait.outcome).observe(
            wait.waited_s)
