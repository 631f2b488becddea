"""Tenants in Postgres, the source of truth; every committed write is published to the KV.

Publishing follows the commit: if it fails, Postgres already holds the change and
``publish_all`` (``switchboard-tenants sync``) brings the directory back in line.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import SecretStr, TypeAdapter
from switchboard_runtime.telemetry import get_logger

from .crypto import TokenCipher
from .kv import DirectoryPublisher
from .models import (
    ApiKeyRole,
    NewTenant,
    OperatorLabel,
    Template,
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
                 WHERE m.tenant_id = t.tenant_id), '{}') AS messaging_services,
       COALESCE((SELECT json_agg(json_build_object(
                     'name', p.name, 'content_sid', p.content_sid, 'language', p.language,
                     'variables', p.variables) ORDER BY p.name)
                 FROM tenant_templates p WHERE p.tenant_id = t.tenant_id), '[]') AS templates
FROM tenants t
WHERE $1::text IS NULL OR t.tenant_id = $1
ORDER BY t.tenant_id
"""

_SECRET_FIELDS = ("auth_token", "llm_api_key", "webhook_secret")
_SECRET_COLUMNS = tuple(f"{name}_encrypted" for name in _SECRET_FIELDS)

_OPERATOR_LABEL: TypeAdapter[str] = TypeAdapter(OperatorLabel)


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What is known of a key without the key: its role and label (the operator's name)."""

    tenant_id: str
    role: ApiKeyRole
    label: str
    created_at: datetime


class TenantNotFound(LookupError):
    pass


class TenantConflict(ValueError):
    """The tenant id, number, Messaging Service or key is already taken."""


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _record(row: asyncpg.Record) -> TenantRecord:
    data: dict[str, Any] = dict(row)
    data["templates"] = json.loads(data["templates"])
    return TenantRecord.model_validate(data)


async def fetch_tenants(
    db: asyncpg.Pool | asyncpg.Connection, tenant_id: str | None = None
) -> builtins.list[TenantRecord]:
    """Read tenants straight from Postgres (no key, no NATS needed: the CLI's ``list``)."""
    return [_record(row) for row in await db.fetch(_SELECT, tenant_id)]


async def fetch_api_keys(
    db: asyncpg.Pool | asyncpg.Connection, tenant_id: str | None = None
) -> builtins.list[ApiKeyInfo]:
    """Every key's tenant, role and label (never the key: only its hash is stored)."""
    rows = await db.fetch(
        "SELECT tenant_id, role, label, created_at FROM tenant_api_keys "
        "WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY tenant_id, role, label, created_at",
        tenant_id,
    )
    return [ApiKeyInfo(**dict(row)) for row in rows]


def _conflict(exc: asyncpg.UniqueViolationError) -> TenantConflict:
    # The constraint tells what clashed; the value (a phone number, a key hash) is left out.
    what = {
        "tenants_pkey": "that tenant id is taken",
        "tenant_numbers_pkey": "that WhatsApp number already belongs to a tenant",
        "tenant_messaging_services_pkey": "that Messaging Service already belongs to a tenant",
        "tenant_templates_pkey": "the tenant already has a template by that name",
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
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    """INSERT INTO tenants (tenant_id, name, account_sid, auth_token_encrypted,
                           system_prompt, model, language, llm_base_url, llm_api_key_encrypted,
                           handoff_keywords, opt_out_keywords, opt_in_keywords,
                           handoff_deadline_s, handoff_unclaimed, webhook_url,
                           webhook_secret_encrypted)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                               $16)""",
                    tenant.tenant_id, tenant.name, tenant.account_sid,
                    self._encrypt(tenant.auth_token), tenant.system_prompt, tenant.model,
                    tenant.language, tenant.llm_base_url, self._encrypt(tenant.llm_api_key),
                    tenant.handoff_keywords, tenant.opt_out_keywords, tenant.opt_in_keywords,
                    tenant.handoff_deadline_s, tenant.handoff_unclaimed, tenant.webhook_url,
                    self._encrypt(tenant.webhook_secret),
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
        columns = self._columns(changes)
        if not columns:
            raise ValueError("nothing to update")
        # Column names come from _columns' fixed mapping, never from the caller.
        assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(columns, 2))
        try:
            status = await self._pool.execute(
                f"UPDATE tenants SET {assignments}, updated_at = now() WHERE tenant_id = $1",  # noqa: S608
                tenant_id, *columns.values(),
            )
        except asyncpg.CheckViolationError as exc:
            if exc.constraint_name == "tenants_webhook_has_secret":
                raise ValueError("a webhook URL needs a webhook secret") from None
            raise
        if status.endswith(" 0"):
            raise TenantNotFound(tenant_id)
        log.info("tenant updated", tenant_id=tenant_id, fields=sorted(changes.changed()))
        return await self._publish(tenant_id)

    def _columns(self, changes: TenantUpdate) -> dict[str, object]:
        """The columns an update writes: secrets encrypted; no URL, no webhook secret."""
        columns: dict[str, object] = {}
        for name, value in changes.changed().items():
            if isinstance(value, SecretStr) or name in _SECRET_FIELDS:  # SecretStr or None
                columns[f"{name}_encrypted"] = self._encrypt(value)  # type: ignore[arg-type]
            else:
                columns[name] = value
        if "webhook_url" in columns and columns["webhook_url"] is None:
            columns["webhook_secret_encrypted"] = None
        return columns

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

    async def add_api_key(
        self, tenant_id: str, label: str = "", role: ApiKeyRole = "reader"
    ) -> str:
        """A new API key for the tenant: the plaintext is returned here, and only here.

        An operator key's label is the operator's name (``operator_id`` in events), so it is
        required; several keys may carry one name (a laptop and a phone): one operator.
        """
        if role == "operator":
            label = _OPERATOR_LABEL.validate_python(label)
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        await self._insert_child(
            "INSERT INTO tenant_api_keys (key_hash, tenant_id, label, role) "
            "VALUES ($1, $2, $3, $4)",
            hash_api_key(key), tenant_id, label, role,
        )
        log.info("api key added", tenant_id=tenant_id, role=role)
        return key

    async def tenant_for_api_key(self, key: str) -> str | None:
        found = await self.api_key(key)
        return found.tenant_id if found else None

    async def api_key(self, key: str) -> ApiKeyInfo | None:
        """The key's tenant, role and label, or None for an unknown key."""
        row = await self._pool.fetchrow(
            "SELECT tenant_id, role, label, created_at FROM tenant_api_keys WHERE key_hash = $1",
            hash_api_key(key),
        )
        return ApiKeyInfo(**dict(row)) if row else None

    async def api_keys(self, tenant_id: str) -> builtins.list[ApiKeyInfo]:
        return await fetch_api_keys(self._pool, tenant_id)

    async def add_template(self, tenant_id: str, template: Template) -> TenantRecord:
        await self._insert_child(
            "INSERT INTO tenant_templates (tenant_id, name, content_sid, language, variables) "
            "VALUES ($2, $1, $3, $4, $5)",
            template.name, tenant_id, template.content_sid, template.language,
            template.variables,
        )
        log.info("template added", tenant_id=tenant_id, template=template.name)
        return await self._publish(tenant_id)

    async def remove_template(self, tenant_id: str, name: str) -> TenantRecord:
        await self._delete_child(
            "DELETE FROM tenant_templates WHERE name = $1 AND tenant_id = $2", name, tenant_id,
            missing="the tenant has no template by that name",
        )
        log.info("template removed", tenant_id=tenant_id, template=name)
        return await self._publish(tenant_id)

    async def rotate_all_tokens(self) -> int:
        """Re-encrypt every secret (auth token, LLM key, webhook secret) with the primary key;
        returns how many were rewritten."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT tenant_id, {', '.join(_SECRET_COLUMNS)} FROM tenants FOR UPDATE"  # noqa: S608
            )
            await conn.executemany(
                "UPDATE tenants SET auth_token_encrypted = $2, llm_api_key_encrypted = $3, "
                "webhook_secret_encrypted = $4, updated_at = now() WHERE tenant_id = $1",
                [(r["tenant_id"], *(self._rotate(r[c]) for c in _SECRET_COLUMNS)) for r in rows],
            )
        count = sum(r[c] is not None for r in rows for c in _SECRET_COLUMNS)
        log.info("tenant secrets re-encrypted", count=count)
        await self.publish_all()
        return count

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

    async def _delete_child(
        self, sql: str, *args: object,
        missing: str = "the tenant has no such number or Messaging Service",
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._touch(conn, args[1])
            if (await conn.execute(sql, *args)).endswith(" 0"):
                raise LookupError(missing)

    def _encrypt(self, secret: SecretStr | None) -> str | None:
        return None if secret is None else self._cipher.encrypt(secret.get_secret_value())

    def _rotate(self, encrypted: str | None) -> str | None:
        return None if encrypted is None else self._cipher.rotate(encrypted)

    @staticmethod
    async def _touch(conn: asyncpg.Connection, tenant_id: object) -> None:
        status = await conn.execute(
            "UPDATE tenants SET updated_at = now() WHERE tenant_id = $1", tenant_id
        )
        if status.endswith(" 0"):
            raise TenantNotFound(str(tenant_id))
