"""Read-model tables as upserts whose merge does not depend on the order rows arrive in.

Each table declares, per column, how a new fact merges into what is stored. Every rule is
commutative, associative and idempotent, so a duplicate or an out-of-order event leaves the
same row:

- ``first``: a fact that never changes once known (every source that knows it agrees);
- ``least`` / ``greatest``: timestamps, numbers that only grow;
- ``latest_by(col)`` / ``earliest_by(col)``: the value that came with the greatest (least)
  ``col``, e.g. a status by its rank.

A row carries only the columns its event knows; the others are None/NULL, which every rule
ignores. Each rule exists twice, with the same meaning: in SQL (``ON CONFLICT DO UPDATE``, the
merge with what is stored) and in Python (rows of one batch with the same key merged before
they are sent: a batch writes each row once, and one statement cannot update a row twice).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Row = Mapping[str, Any]


class Rule(Protocol):
    def sql(self, table: str, column: str) -> str:
        """The merged value of ``column``: ``table.col`` is stored, ``EXCLUDED.col`` new."""
        ...

    def merge(self, column: str, old: Row, new: Row) -> Any:
        """The same merge, of two rows not yet stored (a missing column is None)."""
        ...


class _First:
    def sql(self, table: str, column: str) -> str:
        return f"COALESCE({table}.{column}, EXCLUDED.{column})"

    def merge(self, column: str, old: Row, new: Row) -> Any:
        stored = old.get(column)
        return stored if stored is not None else new.get(column)


class _Extreme:
    def __init__(self, function: str) -> None:
        self._function = function  # LEAST / GREATEST, which skip NULLs

    def sql(self, table: str, column: str) -> str:
        return f"{self._function}({table}.{column}, EXCLUDED.{column})"

    def merge(self, column: str, old: Row, new: Row) -> Any:
        values = [v for v in (old.get(column), new.get(column)) if v is not None]
        if not values:
            return None
        return min(values) if self._function == "LEAST" else max(values)


class _ValueBy:
    """The value that came with the greatest (or least) ``by``; ties keep the stored one."""

    def __init__(self, by: str, latest: bool) -> None:
        self._by = by
        self._op = ">" if latest else "<"

    def sql(self, table: str, column: str) -> str:
        by = self._by
        return (f"CASE WHEN EXCLUDED.{by} {self._op} {table}.{by} OR ({table}.{by} IS NULL "
                f"AND EXCLUDED.{by} IS NOT NULL) THEN EXCLUDED.{column} ELSE {table}.{column} END")

    def merge(self, column: str, old: Row, new: Row) -> Any:
        before, after = old.get(self._by), new.get(self._by)
        wins = after is not None and (
            before is None or (after > before if self._op == ">" else after < before))
        return new.get(column) if wins else old.get(column)


first: Rule = _First()
least: Rule = _Extreme("LEAST")
greatest: Rule = _Extreme("GREATEST")


def latest_by(by: str) -> Rule:
    return _ValueBy(by, latest=True)


def earliest_by(by: str) -> Rule:
    return _ValueBy(by, latest=False)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per table
class Table:
    name: str
    key: tuple[str, ...]
    rules: Mapping[str, Rule]
    columns: tuple[str, ...] = field(init=False)
    upsert_sql: str = field(init=False)
    _known: frozenset[str] = field(init=False, repr=False)
    _key_set: frozenset[str] = field(init=False, repr=False)
    _key_of: Callable[[Row], Any] = field(init=False, repr=False)
    _updates: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        columns = (*self.key, *self.rules)
        names = ", ".join(columns)
        updates = ",\n    ".join(f"{c} = {rule.sql(self.name, c)}"
                                 for c, rule in self.rules.items())
        # One statement per table and batch, set-based: the rows travel as one JSON array of
        # objects and Postgres types them by the table's own row type (a missing key is NULL).
        # Names come from the table definitions in code, never from input.
        source = f"json_populate_recordset(NULL::{self.name}, $1::json)"
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "_known", frozenset(columns))
        object.__setattr__(self, "_key_set", frozenset(self.key))
        object.__setattr__(self, "_key_of", operator.itemgetter(*self.key))
        object.__setattr__(self, "_updates", updates)
        object.__setattr__(self, "upsert_sql", self.upsert_from(
            f"SELECT {names} FROM {source}"))  # noqa: S608

    def upsert_from(self, select: str) -> str:
        """The upsert of the rows ``select`` yields (the table's columns, in order, each key
        once), merged by the table's rules."""
        return (f"INSERT INTO {self.name} ({', '.join(self.columns)}) {select}\n"
                f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET\n    {self._updates}")

    def check(self, columns: Iterable[str]) -> None:
        unknown = set(columns) - self._known
        if unknown:
            raise KeyError(f"{self.name} has no column(s) {sorted(unknown)}")

    def key_of(self, row: Row) -> Any:
        return self._key_of(row)

    def merge(self, old: Row, new: Row) -> dict[str, Any]:
        """Two rows with the same key (each with the columns its facts know), merged as the
        upsert would merge them."""
        merged = {column: old[column] for column in self.key}
        for column in (old.keys() | new.keys()) - self._key_set:
            merged[column] = self.rules[column].merge(column, old, new)
        return merged
