from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from nats.js import JetStreamContext
from switchboard_tenants import (
    TenantConflict,
    TenantDirectory,
    TenantNotFound,
    TenantRepository,
    TenantUpdate,
    TokenCipher,
    apply_migrations,
    generate_key,
    open_bucket,
)
from switchboard_tenants.kv import read_all

from .conftest import NUMBER, new_tenant


async def test_migrations_are_idempotent(migrated_url: str) -> None:
    assert await asyncio.to_thread(apply_migrations, migrated_url) == 0


async def test_token_is_encrypted_in_postgres_and_kv(
    repo: TenantRepository, pool: asyncpg.Pool, js: JetStreamContext, cipher: TokenCipher
) -> None:
    tenant = new_tenant()
    plaintext = tenant.auth_token.get_secret_value()
    await repo.add(tenant)

    for table in ("tenants", "tenant_numbers", "tenant_messaging_services", "tenant_api_keys"):
        dump = await pool.fetchval(f"SELECT coalesce(string_agg(t::text, ''), '') FROM {table} t")  # noqa: S608
        assert plaintext not in dump
    stored = await pool.fetchval("SELECT auth_token_encrypted FROM tenants")
    assert cipher.decrypt(stored) == plaintext

    kv = await read_all(await open_bucket(js))
    assert kv  # something was published
    assert all(plaintext.encode() not in value for value in kv.values())


async def test_rotate_all_tokens_moves_every_token_to_the_new_key(
    make_repo: Callable[[TokenCipher], Awaitable[TenantRepository]],
    pool: asyncpg.Pool, js: JetStreamContext,
    replica: Callable[[TokenCipher], Awaitable[TenantDirectory]],
) -> None:
    old, new = generate_key(), generate_key()
    tenant = new_tenant()
    await (await make_repo(TokenCipher([old]))).add(tenant)

    both = await make_repo(TokenCipher([new, old]))
    assert await both.rotate_all_tokens() == 1

    stored = await pool.fetchval("SELECT auth_token_encrypted FROM tenants")
    assert TokenCipher([new]).decrypt(stored) == tenant.auth_token.get_secret_value()
    # The directory was republished: a replica holding only the new key can route.
    directory = await replica(TokenCipher([new]))
    found = directory.credentials("acme")
    assert found is not None
    assert found.auth_token == tenant.auth_token.get_secret_value()


async def test_api_key_is_stored_as_hash_and_found_by_it(
    repo: TenantRepository, pool: asyncpg.Pool
) -> None:
    await repo.add(new_tenant("acme"))
    await repo.add(new_tenant("globex", numbers=()))
    key = await repo.add_api_key("acme", label="dashboard")
    other = await repo.add_api_key("globex")

    assert await pool.fetchval("SELECT count(*) FROM tenant_api_keys WHERE key_hash = $1", key) == 0
    assert await repo.tenant_for_api_key(key) == "acme"
    assert await repo.tenant_for_api_key(other) == "globex"
    assert await repo.tenant_for_api_key(key + "x") is None
    assert await repo.tenant_for_api_key("") is None


async def test_a_number_belongs_to_one_tenant(repo: TenantRepository) -> None:
    await repo.add(new_tenant("acme"))
    with pytest.raises(TenantConflict, match="number"):
        await repo.add(new_tenant("globex"))
    assert await repo.get("globex") is None  # the whole add was rolled back
    with pytest.raises(TenantConflict):
        await repo.add(new_tenant("acme", numbers=()))


async def test_update_and_numbers(repo: TenantRepository) -> None:
    await repo.add(new_tenant(llm_base_url="http://llm.local/v1"))
    record = await repo.update(
        "acme", TenantUpdate(model="gpt-4.1", language="es", llm_base_url=None)
    )
    assert (record.model, record.language, record.llm_base_url) == ("gpt-4.1", "es", None)
    assert record.system_prompt == "You answer for Acme."  # untouched

    record = await repo.add_number("acme", "+14155550111")
    assert record.numbers == (NUMBER, "whatsapp:+14155550111")
    record = await repo.remove_number("acme", NUMBER)
    assert record.numbers == ("whatsapp:+14155550111",)

    with pytest.raises(TenantNotFound):
        await repo.update("nobody", TenantUpdate(model="x"))
    with pytest.raises(TenantNotFound):
        await repo.add_number("nobody", "+14155550122")
    with pytest.raises(ValueError, match="whatsapp"):
        await repo.add_number("acme", "not a number")
