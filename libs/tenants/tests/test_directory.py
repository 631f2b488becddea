from __future__ import annotations

from collections.abc import Awaitable, Callable

from nats.js import JetStreamContext
from pydantic import SecretStr
from switchboard_tenants import (
    TenantDirectory,
    TenantRepository,
    TenantUpdate,
    TokenCipher,
    generate_key,
    open_bucket,
)
from switchboard_tenants.kv import read_all

from .conftest import ACCOUNT, MSVC, NUMBER, OTHER_ACCOUNT, eventually, new_tenant

Replica = Callable[[TokenCipher], Awaitable[TenantDirectory]]


async def test_every_replica_sees_adds_updates_and_removals(
    repo: TenantRepository, replica: Replica, cipher: TokenCipher
) -> None:
    first, second = await replica(cipher), await replica(cipher)
    assert first.synced and first.route(account_sid=ACCOUNT, to=NUMBER) is None

    tenant = new_tenant()
    await repo.add(tenant)
    for directory in (first, second):
        await eventually(lambda d=directory: d.route(account_sid=ACCOUNT, to=NUMBER) is not None)
        route = directory.route(account_sid=ACCOUNT, to=NUMBER)
        assert route is not None
        assert route.tenant_id == "acme"
        assert route.auth_token == tenant.auth_token.get_secret_value()
        assert route.tenant.system_prompt == "You answer for Acme."

    await repo.update("acme", TenantUpdate(system_prompt="Now in Spanish.", language="es"))
    await eventually(lambda: second.tenant("acme") is not None
                     and second.tenant("acme").language == "es")  # type: ignore[union-attr]

    await repo.remove_number("acme", NUMBER)
    await eventually(lambda: second.route(account_sid=ACCOUNT, to=NUMBER) is None)
    assert second.tenant("acme") is not None

    await repo.remove("acme")
    for directory in (first, second):
        await eventually(lambda d=directory: d.tenant("acme") is None)


async def test_a_replica_started_later_loads_everything(
    repo: TenantRepository, replica: Replica, cipher: TokenCipher
) -> None:
    await repo.add(new_tenant("acme"))
    await repo.add(new_tenant("globex", numbers=("+14155550199",)))
    directory = await replica(cipher)  # start() returns after the initial load
    assert directory.route(account_sid=ACCOUNT, to="whatsapp:+14155550199") is not None
    assert directory.tenant("acme") is not None


async def test_routing_rules(repo: TenantRepository, replica: Replica, cipher: TokenCipher) -> None:
    await repo.add(new_tenant("acme", messaging_services=(MSVC,)))
    await repo.add(new_tenant("globex", account_sid=OTHER_ACCOUNT,
                              numbers=("whatsapp:+14155550177",)))
    d = await replica(cipher)

    by_msvc = d.route(account_sid=ACCOUNT, to="whatsapp:+19999999999", messaging_service_sid=MSVC)
    assert by_msvc is not None and by_msvc.tenant_id == "acme"
    by_number = d.route(account_sid=ACCOUNT, to=NUMBER, messaging_service_sid=None)
    assert by_number is not None and by_number.tenant_id == "acme"
    # An unregistered Messaging Service does not hide a registered number in the same account.
    unregistered = "MG" + "d4" * 16
    assert d.route(account_sid=ACCOUNT, to=NUMBER, messaging_service_sid=unregistered) is not None

    assert d.route(account_sid=ACCOUNT, to="whatsapp:+14155550999") is None  # unknown number
    assert d.route(account_sid=OTHER_ACCOUNT, to=NUMBER) is None  # right number, other account
    assert d.route(account_sid=ACCOUNT, to="whatsapp:+14155550177") is None  # globex's, not ours
    assert d.route(account_sid=OTHER_ACCOUNT, to="whatsapp:+14155550177") is not None
    assert d.route(account_sid=OTHER_ACCOUNT, to="x", messaging_service_sid=MSVC) is None
    assert d.route(account_sid=ACCOUNT, to="not-an-address") is None
    assert d.tenant("nobody") is None


async def test_sync_removes_stale_keys(
    repo: TenantRepository, js: JetStreamContext, replica: Replica, cipher: TokenCipher
) -> None:
    await repo.add(new_tenant())
    kv = await open_bucket(js)
    stale = f"route.num.{ACCOUNT}.14155550888"
    await kv.put(stale, b"acme")
    directory = await replica(cipher)
    assert directory.route(account_sid=ACCOUNT, to="whatsapp:+14155550888") is not None

    changed = await repo.publish_all()
    assert changed == 1
    assert stale not in await read_all(kv)
    await eventually(
        lambda: directory.route(account_sid=ACCOUNT, to="whatsapp:+14155550888") is None
    )
    assert directory.route(account_sid=ACCOUNT, to=NUMBER) is not None


async def test_an_undecryptable_entry_is_skipped_not_fatal(
    repo: TenantRepository, make_repo: Callable[[TokenCipher], Awaitable[TenantRepository]],
    replica: Replica,
) -> None:
    await repo.add(new_tenant())
    own_key = TokenCipher([generate_key()])
    stranger = await replica(own_key)  # cannot decrypt acme's token
    assert stranger.route(account_sid=ACCOUNT, to=NUMBER) is None
    assert stranger.tenant("acme") is None
    # It keeps following the bucket: a tenant under its own key arrives.
    await (await make_repo(own_key)).add(new_tenant("globex", numbers=("+14155550166",)))
    await eventually(
        lambda: stranger.route(account_sid=ACCOUNT, to="whatsapp:+14155550166") is not None
    )


async def test_replicas_carry_the_tenant_llm_key_and_webhook_decrypted(
    repo: TenantRepository, replica: Replica, cipher: TokenCipher
) -> None:
    await repo.add(new_tenant())
    directory = await replica(cipher)
    assert directory.llm_api_key("acme") is None and directory.webhook("acme") is None

    url = "https://hooks.example.com/h"
    await repo.update("acme", TenantUpdate(
        llm_api_key=SecretStr("sk-acme-own"), webhook_url=url,
        webhook_secret=SecretStr("acme-signing-secret")))
    await eventually(lambda: directory.webhook("acme") == (url, "acme-signing-secret"))
    assert directory.llm_api_key("acme") == "sk-acme-own"
    assert "sk-acme-own" not in repr(directory.credentials("acme"))  # nor in logs of the route

    await repo.update("acme", TenantUpdate(webhook_url=None, llm_api_key=None))
    await eventually(lambda: directory.webhook("acme") is None)
    assert directory.llm_api_key("acme") is None
    assert directory.webhook("nobody") is None and directory.llm_api_key("nobody") is None
