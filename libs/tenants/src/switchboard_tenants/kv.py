"""The replicated tenant directory: a JetStream key-value bucket every replica watches.

Keys:
- ``tenant.<tenant_id>``: the tenant's public record as JSON (auth token encrypted only);
- ``route.num.<account_sid>.<digits>``: the tenant owning that WhatsApp number in that account;
- ``route.msvc.<MG sid>``: the tenant owning that Messaging Service.

Postgres is the source of truth; the bucket is its published projection, rewritten after
every write and reconcilable as a whole (``publish_all``).
"""

from __future__ import annotations

from collections.abc import Iterable

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic_settings import BaseSettings, SettingsConfigDict
from switchboard_runtime.bus.kv import kv_replicas
from switchboard_runtime.telemetry import get_logger

from .models import TenantRecord, number_digits

BUCKET = "tenants"
TENANT_PREFIX = "tenant."
NUMBER_PREFIX = "route.num."
MSVC_PREFIX = "route.msvc."

log = get_logger(__name__)


class BucketSettings(BaseSettings):
    """SRE overrides: ``SB_KV_TENANTS_REPLICAS``, ``SB_KV_TENANTS_STORAGE``."""

    model_config = SettingsConfigDict(env_prefix="SB_KV_TENANTS_", extra="ignore")

    replicas: int | None = None  # unset: SB_KV_REPLICAS
    storage: StorageType = StorageType.FILE


async def open_bucket(js: JetStreamContext) -> KeyValue:
    """Bind to the bucket, creating it (history 1) when missing; safe to race."""
    try:
        return await js.key_value(BUCKET)
    except BucketNotFoundError:
        settings = BucketSettings()
        config = KeyValueConfig(
            bucket=BUCKET,
            description="Tenant directory: records and routing keys, published from Postgres",
            history=1,
            replicas=kv_replicas(settings.replicas),
            storage=settings.storage,
        )
        kv = await js.create_key_value(config)
        log.info("kv bucket created", bucket=BUCKET)
        return kv


def tenant_key(tenant_id: str) -> str:
    return f"{TENANT_PREFIX}{tenant_id}"


def number_key(account_sid: str, address: str) -> str | None:
    digits = number_digits(address)
    return f"{NUMBER_PREFIX}{account_sid}.{digits}" if digits else None


def msvc_key(sid: str) -> str:
    return f"{MSVC_PREFIX}{sid}"


def entries_for(record: TenantRecord) -> dict[str, bytes]:
    """Every key the record owns; the tenant record first so it exists before its routes."""
    owner = record.tenant_id.encode()
    entries = {tenant_key(record.tenant_id): record.model_dump_json().encode()}
    for address in record.numbers:
        key = number_key(record.account_sid, address)
        if key:
            entries[key] = owner
    for sid in record.messaging_services:
        entries[msvc_key(sid)] = owner
    return entries


async def read_all(kv: KeyValue) -> dict[str, bytes]:
    """The bucket's current content (deleted keys excluded)."""
    watcher = await kv.watch(">", ignore_deletes=True)
    content: dict[str, bytes] = {}
    try:
        async for entry in watcher:
            if entry is None:  # the marker: the initial content has been delivered
                break
            content[entry.key] = entry.value or b""
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return content


class DirectoryPublisher:
    """Writes tenant records and their routing keys to the bucket and removes stale ones."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def publish(self, record: TenantRecord) -> None:
        previous = await self._current(record.tenant_id)
        wanted = entries_for(record)
        for key, value in wanted.items():
            await self._kv.put(key, value)
        if previous is not None:
            stale = [k for k in entries_for(previous) if k not in wanted]
            await self._delete_routes(record.tenant_id, stale)

    async def unpublish(self, tenant_id: str) -> None:
        previous = await self._current(tenant_id)
        if previous is not None:
            routes = [k for k in entries_for(previous) if k != tenant_key(tenant_id)]
            await self._delete_routes(tenant_id, routes)
        await self._kv.delete(tenant_key(tenant_id))

    async def publish_all(self, records: Iterable[TenantRecord]) -> int:
        """Make the bucket equal to ``records``: write what differs, delete everything else."""
        wanted: dict[str, bytes] = {}
        for record in records:
            wanted.update(entries_for(record))
        current = await read_all(self._kv)
        changed = 0
        for key, value in wanted.items():
            if current.get(key) != value:
                await self._kv.put(key, value)
                changed += 1
        # Routes go before records so that no route ever points at a missing tenant.
        for key in sorted(set(current) - set(wanted), key=lambda k: k.startswith(TENANT_PREFIX)):
            await self._kv.delete(key)
            changed += 1
        log.info("tenant directory reconciled", keys=len(wanted), changed=changed)
        return changed

    async def _current(self, tenant_id: str) -> TenantRecord | None:
        try:
            entry = await self._kv.get(tenant_key(tenant_id))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return TenantRecord.model_validate_json(entry.value or b"")

    async def _delete_routes(self, tenant_id: str, keys: Iterable[str]) -> None:
        # A route that meanwhile moved to another tenant is that tenant's now: leave it.
        for key in keys:
            try:
                entry = await self._kv.get(key)
            except (KeyNotFoundError, KeyDeletedError):
                continue
            if entry.value == tenant_id.encode():
                await self._kv.delete(key)
