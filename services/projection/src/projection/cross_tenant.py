"""Delivery statuses of one tenant naming another tenant's message (invariant 10).

Such a status is stored under the tenant that reported it, and every read joins parts to
statuses by tenant: it never becomes the other tenant's status. This module finds the ones a
batch wrote, so that an SRE hears of them (a metric and a log line naming the tenants only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import asyncpg
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .readmodels.parts import PARTS, STATUSES
from .writes import Writes

log = get_logger(__name__)

# Statuses of one tenant naming the Twilio sid of another tenant's part: found whichever of
# the two is written last, once. The batch's statuses ($1 tenants, $2 sids) against every part
# (the batch's included: written already); the batch's parts ($3, $4) against the statuses
# written before.
_FOREIGN = """
SELECT b.tenant_id AS reported_by, p.tenant_id AS owner
FROM unnest($1::text[], $2::text[]) AS b(tenant_id, sid)
JOIN message_parts p ON p.twilio_sid = b.sid AND p.tenant_id IS DISTINCT FROM b.tenant_id
UNION ALL
SELECT s.tenant_id, b.tenant_id
FROM unnest($3::text[], $4::text[]) AS b(tenant_id, sid)
JOIN delivery_statuses s ON s.message_sid = b.sid AND s.tenant_id IS DISTINCT FROM b.tenant_id
WHERE (s.tenant_id, s.message_sid) NOT IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""


async def foreign_statuses(conn: asyncpg.Connection, batches: Sequence[Writes]
                           ) -> Counter[tuple[str, str | None]]:
    """After the batches are written, in their transaction: (reporting tenant, owner) of each
    status that names another tenant's part (stored under its own tenant, so not applied)."""
    statuses = [(r["tenant_id"], r["message_sid"]) for w in batches for r in w.rows(STATUSES)]
    parts = [(r.get("tenant_id"), r["twilio_sid"]) for w in batches for r in w.rows(PARTS)
             if r.get("twilio_sid")]
    if not statuses and not parts:
        return Counter()
    found = await conn.fetch(_FOREIGN, [t for t, _ in statuses], [s for _, s in statuses],
                             [t for t, _ in parts], [s for _, s in parts])
    return Counter((r["reported_by"], r["owner"]) for r in found)


def report_foreign_statuses(found: Counter[tuple[str, str | None]]) -> None:
    """Once committed: an SRE hears of a tenant's callback naming someone else's message
    (tenants only: the sid and the numbers stay out of the log)."""
    for (reported_by, owner), count in found.items():
        log.warning("status naming another tenant's message not applied", tenant_id=reported_by,
                    owner_tenant_id=owner, statuses=count)
        metrics.FOREIGN_STATUSES.inc(count)
