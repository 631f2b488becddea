"""Test tiers, assigned at collection so no test can forget its marker.

- ``e2e``: everything under ``tests/`` (the whole stack, several processes).
- ``integration``: a test that needs a real server: it uses (directly or through another
  fixture) one of the devstack fixtures that start nats-server or Postgres.
- ``unit``: the rest, which run in-process in seconds (``pytest -m unit``).

A test (or module, with ``pytestmark``) that starts a server on its own declares its tier
explicitly; an explicit tier is kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e")
E2E_ROOT = Path(__file__).resolve().parent / "tests"
# The fixtures that start real servers; ``item.fixturenames`` already includes every fixture
# a test depends on indirectly (nc, js, pool, database_url, stack...).
SERVER_FIXTURES = frozenset({"nats_server", "nats_cluster", "nats_url", "postgres_server",
                             "database_url"})


def tier_of(item: pytest.Item) -> str:
    if item.path.is_relative_to(E2E_ROOT):
        return "e2e"
    if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return "integration"
    return "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(tier_of(item))
