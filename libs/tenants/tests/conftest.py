from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from pydantic import SecretStr
from switchboard_devstack.waiting import eventually as eventually
from switchboard_tenants import (
    DirectoryPublisher,
    NewTenant,
    TenantDirectory,
    TenantRepository,
    TokenCipher,
    generate_key,
    open_bucket,
)

ACCOUNT = "AC" + "a1" * 16
OTHER_ACCOUNT = "AC" + "b2" * 16
MSVC = "MG" + "c3" * 16
NUMBER = "whatsapp:+14155550100"


def new_tenant(tenant_id: str = "acme", **overrides: object) -> NewTenant:
    fields: dict[str, object] = {
        "tenant_id": tenant_id,
        "name": tenant_id.title(),
        "account_sid": ACCOUNT,
        "auth_token": SecretStr(secrets.token_hex(16)),
        "numbers": (NUMBER,),
        "system_prompt": "You answer for Acme.",
        **overrides,
    }
    return NewTenant.model_validate(fields)


@pytest.fixture
def key() -> str:
    return generate_key()


@pytest.fixture
def cipher(key: str) -> TokenCipher:
    return TokenCipher([key])


@pytest.fixture
def make_repo(
    pool: asyncpg.Pool, js: JetStreamContext
) -> Callable[[TokenCipher], Awaitable[TenantRepository]]:
    async def make(cipher: TokenCipher) -> TenantRepository:
        return TenantRepository(pool, cipher, DirectoryPublisher(await open_bucket(js)))

    return make


@pytest.fixture
async def repo(
    make_repo: Callable[[TokenCipher], Awaitable[TenantRepository]], cipher: TokenCipher
) -> TenantRepository:
    return await make_repo(cipher)


@pytest.fixture
async def replica(
    nats_url: str,
) -> AsyncIterator[Callable[[TokenCipher], Awaitable[TenantDirectory]]]:
    """Starts directories on their own NATS connections, as other gateway replicas would."""
    started: list[tuple[TenantDirectory, NATS]] = []

    async def start(cipher: TokenCipher) -> TenantDirectory:
        nc = await nats.connect(nats_url)
        directory = TenantDirectory(nc.jetstream(), cipher)
        await directory.start()
        started.append((directory, nc))
        return directory

    yield start
    for directory, nc in started:
        await directory.stop()
        await nc.close()
