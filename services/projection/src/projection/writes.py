"""The rows a batch writes: merged per table and key, then sent with one statement per table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import asyncpg
import orjson

from .tables import Table

# Counts derived from the rows themselves (not incremented), so a duplicate cannot inflate
# them; run once per transaction for the conversations its batches touched. Transactions are
# serialised (checkpoint.py), so the count sees every committed row.
RECOUNT = """
UPDATE conversations c
SET user_messages = s.user_messages, assistant_messages = s.assistant_messages
FROM (
    SELECT id AS conversation_id,
           (SELECT count(*) FROM messages m
             WHERE m.conversation_id = id AND m.direction = 'inbound') AS user_messages,
           (SELECT count(*) FROM messages m
             WHERE m.conversation_id = id AND m.direction = 'outbound') AS assistant_messages
    FROM unnest($1::text[]) AS id
) s
WHERE c.conversation_id = s.conversation_id
  AND (c.user_messages, c.assistant_messages)
      IS DISTINCT FROM (s.user_messages, s.assistant_messages)
"""


class Writes:
    def __init__(self) -> None:
        # Per table, one row per key: the batch's facts about it merged by the table's rules
        # (as the database would merge them), so each row is sent once per batch.
        self._rows: dict[Table, dict[Any, dict[str, Any]]] = defaultdict(dict)
        # Per statement, the events whose rows Postgres builds from their stored JSON.
        self._events: dict[str, tuple[list[bytes], list[str]]] = defaultdict(lambda: ([], []))
        self.conversations: set[str] = set()

    def upsert(self, table: Table, **values: Any) -> None:
        self._add(table, values)

    def _add(self, table: Table, row: dict[str, Any]) -> None:
        rows = self._rows[table]
        key = table.key_of(row)
        held = rows.get(key)
        rows[key] = row if held is None else table.merge(held, row)

    def rows(self, table: Table) -> Iterable[dict[str, Any]]:
        """The batch's rows of ``table``, one per key."""
        return self._rows.get(table, {}).values()

    def from_event(self, statement: str, data: bytes, subject: str) -> None:
        """Rows ``statement`` builds in SQL from the events' JSON as stored ($1: a JSON array
        of them) and their subjects ($2, in the same order): no Python row, no encoding."""
        events, subjects = self._events[statement]
        events.append(data)
        subjects.append(subject)

    def touch(self, conversation_id: str | None) -> None:
        """The conversation's counts may have changed."""
        if conversation_id:
            self.conversations.add(conversation_id)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """The rows; then ``recount`` the conversations touched (once per transaction)."""
        # Tables in a fixed order (by name), so concurrent writers could never deadlock.
        for table in sorted(self._rows, key=lambda t: t.name):
            rows = list(self._rows[table].values())
            # Postgres ignores a key its table lacks: a typo must fail here instead.
            table.check(set().union(*rows))
            # orjson: datetimes natively, and a tenth of the json module's CPU here.
            await conn.execute(table.upsert_sql, orjson.dumps(rows).decode())
        for statement, (events, subjects) in self._events.items():
            # Each was valid UTF-8 JSON to be decoded at all.
            await conn.execute(statement, (b"[" + b",".join(events) + b"]").decode(), subjects)


async def recount(conn: asyncpg.Connection, conversations: set[str]) -> None:
    if conversations:
        await conn.execute(RECOUNT, sorted(conversations))

