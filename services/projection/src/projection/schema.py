"""The read-model schema: plain SQL files under ``migrations/``, applied by yoyo.

The tenants' migrations are applied first: the read API checks API keys in their
``tenant_api_keys`` table, in the same database. Migration ids are prefixed ``projection_``
because every service's migrations share yoyo's bookkeeping table.
"""

from __future__ import annotations

from pathlib import Path

from switchboard_tenants import apply_migrations as apply_tenant_migrations
from switchboard_tenants.schema import apply_sql_migrations

MIGRATIONS = Path(__file__).parent / "migrations"


def apply_migrations(database_url: str) -> int:
    """Apply pending tenants and projection migrations (under yoyo's lock); how many ran."""
    return (apply_tenant_migrations(database_url)
            + apply_sql_migrations(database_url, MIGRATIONS, "projection"))
