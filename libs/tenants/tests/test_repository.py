from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from nats.js import JetStreamContext
from pydantic import SecretStr, ValidationError
from switchboard_tenants import (
    NewTenant,
    Template,
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

from .conftest import NUMBER, eventually, new_tenant

WEBHOOK = "https://hooks.example.com/switchboard"
CONTENT_SID = "HX" + "0a" * 16


async def test_migrations_are_idempotent(migrated_url: str) -> None:
    assert await asyncio.to_thread(apply_migrations, migrated_url) == 0


SECRET_COLUMNS = ("auth_token_encrypted", "llm_api_key_encrypted", "webhook_secret_encrypted")
TABLES = ("tenants", "tenant_numbers", "tenant_messaging_services", "tenant_api_keys",
          "tenant_templates")


def with_every_secret(tenant_id: str = "acme", **overrides: object) -> NewTenant:
    return new_tenant(tenant_id, llm_api_key=SecretStr("sk-" + secrets.token_hex(16)),
                      webhook_url=WEBHOOK, webhook_secret=SecretStr(secrets.token_hex(16)),
                      **overrides)


def plaintexts(tenant: NewTenant) -> tuple[str, ...]:
    found = (tenant.auth_token, tenant.llm_api_key, tenant.webhook_secret)
    return tuple(secret.get_secret_value() for secret in found if secret is not None)


async def test_secrets_are_encrypted_in_postgres_and_kv(
    repo: TenantRepository, pool: asyncpg.Pool, js: JetStreamContext, cipher: TokenCipher
) -> None:
    tenant = with_every_secret()
    await repo.add(tenant)
    await repo.update("acme", TenantUpdate(llm_api_key=SecretStr("sk-changed-later")))
    secrets_held = (*plaintexts(tenant), "sk-changed-later")

    for table in TABLES:
        dump = await pool.fetchval(f"SELECT coalesce(string_agg(t::text, ''), '') FROM {table} t")  # noqa: S608
        assert not any(plaintext in dump for plaintext in secrets_held)
    stored = await pool.fetchrow(f"SELECT {', '.join(SECRET_COLUMNS)} FROM tenants")  # noqa: S608
    assert [cipher.decrypt(stored[c]) for c in SECRET_COLUMNS] == [
        tenant.auth_token.get_secret_value(), "sk-changed-later",
        tenant.webhook_secret.get_secret_value(),  # type: ignore[union-attr]
    ]

    kv = await read_all(await open_bucket(js))
    assert kv  # something was published
    assert all(p.encode() not in value for value in kv.values() for p in secrets_held)


async def test_rotate_all_tokens_moves_every_token_to_the_new_key(
    make_repo: Callable[[TokenCipher], Awaitable[TenantRepository]],
    pool: asyncpg.Pool, js: JetStreamContext,
    replica: Callable[[TokenCipher], Awaitable[TenantDirectory]],
) -> None:
    old, new = generate_key(), generate_key()
    tenant = with_every_secret()
    await (await make_repo(TokenCipher([old]))).add(tenant)
    await (await make_repo(TokenCipher([old]))).add(new_tenant("globex", numbers=()))

    both = await make_repo(TokenCipher([new, old]))
    assert await both.rotate_all_tokens() == 4  # acme's three secrets, globex's token

    stored = await pool.fetchrow(
        f"SELECT {', '.join(SECRET_COLUMNS)} FROM tenants WHERE tenant_id = 'acme'"  # noqa: S608
    )
    assert tuple(TokenCipher([new]).decrypt(stored[c]) for c in SECRET_COLUMNS) == plaintexts(
        tenant)
    # The directory was republished: a replica holding only the new key has every secret.
    directory = await replica(TokenCipher([new]))
    found = directory.credentials("acme")
    assert found is not None
    assert found.auth_token == tenant.auth_token.get_secret_value()
    assert directory.llm_api_key("acme") == tenant.llm_api_key.get_secret_value()  # type: ignore[union-attr]
    assert directory.webhook("acme") == (WEBHOOK, tenant.webhook_secret.get_secret_value())  # type: ignore[union-attr]
    assert directory.webhook("globex") is None and directory.llm_api_key("globex") is None


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


async def test_api_keys_have_a_role_and_operator_keys_name_the_operator(
    repo: TenantRepository,
) -> None:
    await repo.add(new_tenant("acme"))
    reader = await repo.add_api_key("acme", label="dashboard")
    operator = await repo.add_api_key("acme", label=" ann ", role="operator")

    found = await repo.api_key(operator)
    assert found is not None and (found.tenant_id, found.role, found.label) == (
        "acme", "operator", "ann")
    found = await repo.api_key(reader)
    assert found is not None and found.role == "reader"
    assert await repo.api_key(operator + "x") is None
    assert [(k.role, k.label) for k in await repo.api_keys("acme")] == [
        ("operator", "ann"), ("reader", "dashboard")]

    with pytest.raises(ValidationError):  # an operator key without the operator's name
        await repo.add_api_key("acme", label=" ", role="operator")
    with pytest.raises(TenantNotFound):
        await repo.add_api_key("nobody", label="bob", role="operator")


async def test_templates_are_added_published_and_removed(
    repo: TenantRepository, replica: Callable[[TokenCipher], Awaitable[TenantDirectory]],
    cipher: TokenCipher,
) -> None:
    await repo.add(new_tenant("acme"))
    await repo.add(new_tenant("globex", numbers=()))
    reminder = Template(name="reminder", content_sid=CONTENT_SID, language="es",
                        variables=("1", "2"))
    record = await repo.add_template("acme", reminder)
    record = await repo.add_template(
        "acme", Template(name="another", content_sid=CONTENT_SID, language="en"))
    assert record.template("reminder") == reminder
    assert [t.name for t in record.templates] == ["another", "reminder"]

    directory = await replica(cipher)
    acme = directory.tenant("acme")
    assert acme is not None and acme.template("reminder") == reminder
    globex = directory.tenant("globex")
    assert globex is not None and globex.template("reminder") is None  # per tenant

    with pytest.raises(TenantConflict, match="template"):
        await repo.add_template("acme", reminder)
    await repo.add_template("globex", reminder)  # the same name in another tenant is fine

    record = await repo.remove_template("acme", "reminder")
    assert record.template("reminder") is None
    await eventually(lambda: directory.tenant("acme").template("reminder") is None)  # type: ignore[union-attr]
    with pytest.raises(LookupError, match="template"):
        await repo.remove_template("acme", "reminder")
    with pytest.raises(TenantNotFound):
        await repo.add_template("nobody", reminder)


async def test_handoff_and_webhook_settings(repo: TenantRepository) -> None:
    record = await repo.add(new_tenant("acme"))
    assert (record.handoff_deadline_s, record.handoff_unclaimed, record.webhook_url) == (
        900, "bot", None)

    record = await repo.update("acme", TenantUpdate(
        handoff_keywords=("humano", "atendente"), opt_out_keywords=("basta",),
        opt_in_keywords=("volver",), handoff_deadline_s=0, handoff_unclaimed="wait",
        webhook_url=WEBHOOK, webhook_secret=SecretStr("s" * 32),
        llm_api_key=SecretStr("sk-tenant"),
    ))
    assert record.handoff_keywords == ("humano", "atendente")
    assert (record.opt_out_keywords, record.opt_in_keywords) == (("basta",), ("volver",))
    assert (record.handoff_deadline_s, record.handoff_unclaimed) == (0, "wait")
    assert record.webhook_url == WEBHOOK and record.webhook_secret_encrypted
    assert record.llm_api_key_encrypted

    # Another URL keeps the secret; removing the URL drops the secret with it.
    record = await repo.update("acme", TenantUpdate(webhook_url="https://other.example.com/h"))
    assert record.webhook_secret_encrypted
    record = await repo.update("acme", TenantUpdate(webhook_url=None, llm_api_key=None))
    assert (record.webhook_url, record.webhook_secret_encrypted) == (None, None)
    assert record.llm_api_key_encrypted is None
    assert record.handoff_keywords == ("humano", "atendente")  # untouched

    with pytest.raises(ValueError, match="webhook secret"):  # nothing to sign it with
        await repo.update("acme", TenantUpdate(webhook_url=WEBHOOK))


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
