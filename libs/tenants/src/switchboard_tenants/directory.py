"""Each replica's in-memory view of the tenant directory, kept fresh by a KV watcher.

The gateway looks a tenant up on every webhook, so lookups are plain dict reads: no database,
no network. Every replica watches the same bucket, so a write published once reaches all of
them (deletes included). Tokens are decrypted once, when an entry arrives.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.js import JetStreamContext
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import ValidationError
from switchboard_runtime import Service
from switchboard_runtime.telemetry import get_logger

from .crypto import TokenCipher, TokenDecryptError
from .kv import MSVC_PREFIX, NUMBER_PREFIX, TENANT_PREFIX, number_key, open_bucket
from .models import TenantRecord, TenantRoute

log = get_logger(__name__)


class TenantDirectory:
    def __init__(self, js: JetStreamContext, cipher: TokenCipher) -> None:
        self._js = js
        self._cipher = cipher
        self._tenants: dict[str, TenantRoute] = {}
        self._routes: dict[str, str] = {}  # route.* key -> tenant_id
        self._synced = asyncio.Event()
        self._watcher: KeyValue.KeyWatcher | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 30.0) -> None:
        """Load the whole directory, then keep following it; returns once loaded."""
        kv = await open_bucket(self._js)
        self._watcher = await kv.watch(">")
        self._task = asyncio.create_task(self._follow(self._watcher), name="tenant-directory")
        await self.wait_synced(timeout_s)

    async def wait_synced(self, timeout_s: float = 30.0) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout_s)

    @property
    def synced(self) -> bool:
        """True once the initial load is done (for readiness checks)."""
        return self._synced.is_set()

    async def stop(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(Exception):  # the connection may be closed already
                await self._watcher.stop()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._watcher = self._task = None

    # -- lookups (in memory) -----------------------------------------------------------------
    def route(
        self, *, account_sid: str, to: str, messaging_service_sid: str | None = None
    ) -> TenantRoute | None:
        """The tenant an inbound webhook belongs to, or None (orphaned: no default tenant).

        A registered Messaging Service decides; otherwise the number within the account. The
        tenant's account must be the request's: a number registered under another account
        is not a match.
        """
        tenant_id = None
        if messaging_service_sid:
            tenant_id = self._routes.get(f"{MSVC_PREFIX}{messaging_service_sid}")
        if tenant_id is None:
            key = number_key(account_sid, to)
            tenant_id = self._routes.get(key) if key else None
        found = self._tenants.get(tenant_id) if tenant_id else None
        if found is None or found.account_sid != account_sid:
            return None
        return found

    def for_account(self, account_sid: str) -> TenantRoute | None:
        """A tenant of this Twilio account. Its token signs every webhook of the account,
        also for numbers nobody registered, so those can be verified and then orphaned."""
        for found in self._tenants.values():
            if found.account_sid == account_sid:
                return found
        return None

    def tenant(self, tenant_id: str) -> TenantRecord | None:
        found = self._tenants.get(tenant_id)
        return found.tenant if found else None

    def credentials(self, tenant_id: str) -> TenantRoute | None:
        """The tenant's account and decrypted token (for services that call Twilio)."""
        return self._tenants.get(tenant_id)

    def llm_api_key(self, tenant_id: str) -> str | None:
        """The tenant's own LLM API key, decrypted; None when it has none."""
        found = self._tenants.get(tenant_id)
        return found.llm_api_key if found else None

    def webhook(self, tenant_id: str) -> tuple[str, str] | None:
        """The tenant's webhook (URL, decrypted signing secret); None when it has none."""
        found = self._tenants.get(tenant_id)
        if found is None or not found.tenant.webhook_url or found.webhook_secret is None:
            return None
        return found.tenant.webhook_url, found.webhook_secret

    # -- following the bucket ----------------------------------------------------------------
    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:  # the initial content has been delivered
                self._synced.set()
                log.info("tenant directory loaded", tenants=len(self._tenants))
                continue
            deleted = entry.operation in (KV_DEL, KV_PURGE)
            try:
                self._apply(entry.key, None if deleted else entry.value or b"")
            except (ValidationError, TokenDecryptError, UnicodeDecodeError) as exc:
                # One bad entry must not stop the replica from following the others.
                log.error("tenant directory entry ignored", kind=entry.key.split(".")[0],
                          error=type(exc).__name__)

    def _apply(self, key: str, value: bytes | None) -> None:
        if key.startswith(TENANT_PREFIX):
            tenant_id = key.removeprefix(TENANT_PREFIX)
            self._tenants.pop(tenant_id, None)  # an undecryptable update must not keep the old
            if value is not None:
                self._tenants[tenant_id] = self._decrypted(value)
        elif key.startswith((NUMBER_PREFIX, MSVC_PREFIX)):
            if value is None:
                self._routes.pop(key, None)
            else:
                self._routes[key] = value.decode()

    def _decrypted(self, value: bytes) -> TenantRoute:
        record = TenantRecord.model_validate_json(value)
        try:
            return TenantRoute(
                record.tenant_id, record.account_sid,
                self._cipher.decrypt(record.auth_token_encrypted), record,
                llm_api_key=self._decrypt_optional(record.llm_api_key_encrypted),
                webhook_secret=self._decrypt_optional(record.webhook_secret_encrypted),
            )
        except TokenDecryptError:
            log.error("tenant secrets not decryptable: check SB_TENANT_KEYS",
                      tenant_id=record.tenant_id)
            raise

    def _decrypt_optional(self, encrypted: str | None) -> str | None:
        return None if encrypted is None else self._cipher.decrypt(encrypted)


async def attach_directory(service: Service, cipher: TokenCipher) -> TenantDirectory:
    """Start a directory for a running service: loaded before it is ready, stopped with it."""
    directory = TenantDirectory(service.js, cipher)
    await directory.start()
    service.add_check("tenants", lambda: directory.synced)

    async def stop(_: Service) -> None:
        await directory.stop()

    service.on_stop(stop)
    return directory
