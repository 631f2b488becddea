"""The read-model schema: plain SQL files under ``migrations/``, applied by yoyo.

The tenants' migrations are applied first: the read API checks API keys in their
``tenant_api_keys`` table, in the same database. Migration ids are prefixed ``projection_``
because every service's migrations share yoyo's bookkeeping table.
"""

from __future__ import annotations

from pathlib import Path

from switchboard_runtime.telemetry import get_logger
from switchboard_tenants import apply_migrations as apply_tenant_migrations
from switchboard_tenants.schema import yoyo_url
from yoyo import get_backend, read_migrations

MIGRATIONS = Path(__file__).parent / "migrations"

log = get_logger(__name__)


def apply_migrations(database_url: str) -> int:
    """Apply pending tenants and projection migrations (under yoyo's lock); how many ran."""
    count = apply_tenant_migrations(database_url)
    backend = get_backend(yoyo_url(database_url))
    try:
        with backend.lock():
            pending = backend.to_apply(read_migrations(str(MIGRATIONS)))
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    log.info("projection migrations applied", count=len(pending))
    return count + len(pending)
