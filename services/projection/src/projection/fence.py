"""The writer lease's lock, and the fence every write transaction checks.

One replica writes at a time: the one whose dedicated connection holds the session-level
advisory lock ``LEASE_LOCK`` (``lease.py``). Postgres releases that lock when the connection
ends (the process killed, the network or the database gone), and another replica takes it.
The writes themselves go through the pool's connections, so each transaction checks that the
lock is still held by the lease's session: the same backend pid, started at the same time (a
pid can be reused). A replica that lost the lease cannot commit, even before it notices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

LEASE_LOCK = 0x5342_5052_4C53  # "SBPRLS": held for a writer's lifetime (not WRITER_LOCK)

# pg_locks shows a bigint advisory key as two oids (high and low 32 bits), objsubid 1.
_HOLDER = """
SELECT a.pid, a.backend_start, a.application_name, host(a.client_addr) AS client_addr
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = $1 AND l.objid::bigint = $2
"""
_HELD_BY = f"SELECT EXISTS ({_HOLDER} AND a.pid = $3 AND a.backend_start = $4)"
_KEY = (LEASE_LOCK >> 32, LEASE_LOCK & 0xFFFF_FFFF)


@dataclass(frozen=True, slots=True)
class Fence:
    """The session that holds the lease."""

    pid: int
    backend_start: datetime

    @classmethod
    async def of(cls, conn: asyncpg.Connection) -> Fence:
        row = await conn.fetchrow("SELECT pid, backend_start FROM pg_stat_activity "
                                  "WHERE pid = pg_backend_pid()")
        return cls(row["pid"], row["backend_start"])

    async def held(self, conn: asyncpg.Connection) -> bool:
        """Whether that session still holds the lease (asked on any connection)."""
        held: bool = await conn.fetchval(_HELD_BY, *_KEY, self.pid, self.backend_start)
        return held


async def take(conn: asyncpg.Connection) -> bool:
    """Take the lease on ``conn`` if no session holds it (never waits)."""
    taken: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEASE_LOCK)
    return taken


async def holder(conn: asyncpg.Connection | asyncpg.Pool) -> asyncpg.Record | None:
    """The session holding the lease (pid, backend_start, application_name, client_addr)."""
    return await conn.fetchrow(_HOLDER, *_KEY)
