"""The tenants schema: plain SQL files under ``migrations/``, applied by yoyo.

yoyo drives a synchronous driver (psycopg 3), so the asyncpg-style ``postgresql://`` URL is
rewritten to ``postgresql+psycopg://``. Migration ids are prefixed ``tenants_`` because every
service's migrations share yoyo's bookkeeping table in one database.
"""

from __future__ import annotations

from pathlib import Path

from switchboard_runtime.telemetry import get_logger
from yoyo import get_backend, read_migrations

MIGRATIONS = Path(__file__).parent / "migrations"

log = get_logger(__name__)


def yoyo_url(database_url: str) -> str:
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError("DATABASE_URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


def apply_sql_migrations(database_url: str, folder: Path, name: str) -> int:
    """Apply the pending migrations of ``folder`` (under yoyo's lock); returns how many ran."""
    backend = get_backend(yoyo_url(database_url))
    try:
        with backend.lock():
            pending = backend.to_apply(read_migrations(str(folder)))
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    log.info(f"{name} migrations applied", count=len(pending))
    return len(pending)


def apply_migrations(database_url: str) -> int:
    """Apply the pending tenants migrations; returns how many ran."""
    return apply_sql_migrations(database_url, MIGRATIONS, "tenants")
