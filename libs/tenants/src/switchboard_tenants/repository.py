"""Tenants in Postgres, the source of truth; every committed write is published to the KV.

Publishing follows the commit: if it fails, Postgres already holds the change and
``publish_all`` (``switchboard-tenants sync``) brings the directory back in line.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from typing import Any

import asyncpg
from switchboard_runtime.telemetry import get_logger

from .crypto import TokenCipher
from .kv import DirectoryPublisher
from .models import (
    NewTenant,
    TenantRecord,
    TenantUpdate,
    parse_address,
    parse_messaging_service,
)

log = get_logger(__name__)

API_KEY_PREFIX = "sbk_"

_SELECT = """
SELECT t.*,
       COALESCE((SELECT array_agg(n.address ORDER BY n.address) FROM tenant_numbers n
                 WHERE n.tenant_id = t.tenant_id), '{}') AS numbers,
       COALESCE((SELECT array_agg(m.sid ORDER BY m.sid) FROM tenant_messaging_services m
                 WHERE m.tenant_id = t.tenant_id), '{}') AS messaging_services
FROM tenants t
WHERE $1::text IS NULL OR t.tenant_id = $1
ORDER BY t.tenant_id
"""

# NULL keeps a column; llm_base_url may be cleared, so $9 tells whether $8 was given.
_UPDATE = """
UPDATE tenants SET
    name = COALESCE($2, name),
    account_sid = COALESCE($3, account_sid),
    auth_token_encrypted = COALESCE($4, auth_token_encrypted),
    system_prompt = COALESCE($5, system_prompt),
    model = COALESCE($6, model),
    language = COALESCE($7, language),
    llm_base_url = CASE WHEN $9 THEN $8 ELSE llm_base_url END,
    updated_at = now()
WHERE tenant_id = $1
"""


class TenantNotFound(LookupError):
    pass


class TenantConflict(ValueError):
    """The tenant id, number, Messaging Service or key is already taken."""


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _record(row: asyncpg.Record) -> TenantRecord:
    data: dict[str, Any] = dict(row)
    return TenantRecord.model_validate(data)


async def fetch_tenants(
    db: asyncpg.Pool | asyncpg.Connection, tenant_id: str | None = None
) -> builtins.list[TenantRecord]:
    """Read tenants straight from Postgres (no key, no NATS needed: the CLI's ``list``)."""
    return [_record(row) for row in await db.fetch(_SELECT, tenant_id)]


def _conflict(exc: asyncpg.UniqueViolationError) -> TenantConflict:
    # The constraint tells what clashed; the value (a phone number, a key hash) is left out.
    what = {
        "tenants_pkey": "that tenant id is taken",
        "tenant_numbers_pkey": "that WhatsApp number already belongs to a tenant",
        "tenant_messaging_services_pkey": "that Messaging Service already belongs to a tenant",
    }.get(exc.constraint_name or "", "that value is already taken")
    return TenantConflict(what)


class TenantRepository:
    def __init__(
        self, pool: asyncpg.Pool, cipher: TokenCipher, publisher: DirectoryPublisher
    ) -> None:
        self._pool = pool
        self._cipher = cipher
        self._publisher = publisher

    async def add(self, tenant: NewTenant) -> TenantRecord:
        encrypted = self._cipher.encrypt(tenant.auth_token.get_secret_value())
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    """INSERT INTO tenants (tenant_id, name, account_sid, auth_token_encrypted,
                           system_prompt, model, language, llm_base_url)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                    tenant.tenant_id, tenant.name, tenant.account_sid, encrypted,
                    tenant.system_prompt, tenant.model, tenant.language, tenant.llm_base_url,
                )
                await conn.executemany(
                    "INSERT INTO tenant_numbers (address, tenant_id) VALUES ($1, $2)",
                    [(address, tenant.tenant_id) for address in tenant.numbers],
                )
                await conn.executemany(
                    "INSERT INTO tenant_messaging_services (sid, tenant_id) VALUES ($1, $2)",
                    [(sid, tenant.tenant_id) for sid in tenant.messaging_services],
                )
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc) from None
        log.info("tenant added", tenant_id=tenant.tenant_id)
        return await self._publish(tenant.tenant_id)

    async def get(self, tenant_id: str) -> TenantRecord | None:
        found = await fetch_tenants(self._pool, tenant_id)
        return found[0] if found else None

    async def list(self) -> builtins.list[TenantRecord]:
        return await fetch_tenants(self._pool)

    async def update(self, tenant_id: str, changes: TenantUpdate) -> TenantRecord:
        token = changes.auth_token
        status = await self._pool.execute(
            _UPDATE, tenant_id, changes.name, changes.account_sid,
            self._cipher.encrypt(token.get_secret_value()) if token else None,
            changes.system_prompt, changes.model, changes.language, changes.llm_base_url,
            "llm_base_url" in changes.model_fields_set,
        )
        if status.endswith(" 0"):
            raise TenantNotFound(tenant_id)
        log.info("tenant updated", tenant_id=tenant_id, fields=sorted(changes.model_fields_set))
        return await self._publish(tenant_id)

    async def remove(self, tenant_id: str) -> None:
        status = await self._pool.execute("DELETE FROM tenants WHERE tenant_id = $1", tenant_id)
        if status.endswith(" 0"):
            raise TenantNotFound(tenant_id)
        await self._publisher.unpublish(tenant_id)
        log.info("tenant removed", tenant_id=tenant_id)

    async def add_number(self, tenant_id: str, address: str) -> TenantRecord:
        await self._insert_child(
            "INSERT INTO tenant_numbers (address, tenant_id) VALUES ($1, $2)",
            parse_address(address), tenant_id,
        )
        return await self._publish(tenant_id)

    async def remove_number(self, tenant_id: str, address: str) -> TenantRecord:
        await self._delete_child(
            "DELETE FROM tenant_numbers WHERE address = $1 AND tenant_id = $2",
            parse_address(address), tenant_id,
        )
        return await self._publish(tenant_id)

    async def add_messaging_service(self, tenant_id: str, sid: str) -> TenantRecord:
        await self._insert_child(
            "INSERT INTO tenant_messaging_services (sid, tenant_id) VALUES ($1, $2)",
            parse_messaging_service(sid), tenant_id,
        )
        return await self._publish(tenant_id)

    async def remove_messaging_service(self, tenant_id: str, sid: str) -> TenantRecord:
        await self._delete_child(
            "DELETE FROM tenant_messaging_services WHERE sid = $1 AND tenant_id = $2",
            parse_messaging_service(sid), tenant_id,
        )
        return await self._publish(tenant_id)

    async def add_api_key(self, tenant_id: str, label: str = "") -> str:
        """A new read-API key for the tenant: the plaintext is returned here, and only here."""
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        await self._insert_child(
            "INSERT INTO tenant_api_keys (key_hash, tenant_id, label) VALUES ($1, $2, $3)",
            hash_api_key(key), tenant_id, label,
        )
        log.info("api key added", tenant_id=tenant_id)
        return key

    async def tenant_for_api_key(self, key: str) -> str | None:
        tenant_id: str | None = await self._pool.fetchval(
            "SELECT tenant_id FROM tenant_api_keys WHERE key_hash = $1", hash_api_key(key)
        )
        return tenant_id

    async def rotate_all_tokens(self) -> int:
        """Re-encrypt every auth token with the primary key; returns how many were rewritten."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT tenant_id, auth_token_encrypted FROM tenants FOR UPDATE"
            )
            await conn.executemany(
                "UPDATE tenants SET auth_token_encrypted = $2, updated_at = now() "
                "WHERE tenant_id = $1",
                [(r["tenant_id"], self._cipher.rotate(r["auth_token_encrypted"])) for r in rows],
            )
        log.info("tenant tokens re-encrypted", count=len(rows))
        await self.publish_all()
        return len(rows)

    async def publish_all(self) -> int:
        """Rewrite the whole KV directory from Postgres; returns how many keys changed."""
        return await self._publisher.publish_all(await self.list())

    async def _publish(self, tenant_id: str) -> TenantRecord:
        record = await self.get(tenant_id)
        if record is None:  # removed concurrently
            await self._publisher.unpublish(tenant_id)
            raise TenantNotFound(tenant_id)
        await self._publisher.publish(record)
        return record

    async def _insert_child(self, sql: str, *args: object) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._touch(conn, args[1])
                await conn.execute(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc) from None

    async def _delete_child(self, sql: str, *args: object) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._touch(conn, args[1])
            if (await conn.execute(sql, *args)).endswith(" 0"):
                raise LookupError("the tenant has no such number or Messaging Service")

    @staticmethod
    async def _touch(conn: asyncpg.Connection, tenant_id: object) -> None:
        status = await conn.execute(
            "UPDATE tenants SET updated_at = now() WHERE tenant_id = $1", tenant_id
        )
        if status.endswith(" 0"):
            raise TenantNotFound(str(tenant_id))
