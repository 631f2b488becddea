"""The CLI end to end, as an operator runs it: a subprocess against the real servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from switchboard_tenants import TenantDirectory, TokenCipher, generate_key

from .conftest import ACCOUNT, MSVC, NUMBER, OTHER_ACCOUNT, eventually

CLI = str(Path(sys.executable).parent / "switchboard-tenants")
TOKEN = "0123456789abcdef0123456789abcdef"


async def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [CLI, *args], env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )


async def test_add_then_list_without_tokens(
    database_url: str, nats_url: str, key: str,
    replica: Callable[[TokenCipher], Awaitable[TenantDirectory]],
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats_url,
           "SB_TENANT_KEYS": key, "COLUMNS": "250"}
    assert (await run("migrate", env=env)).returncode == 0

    added = await run(
        "add", "Acme Dental", "--account-sid", ACCOUNT, "--number", "+14155550100",
        "--messaging-service", MSVC, "--system-prompt", "You answer for Acme.",
        "--language", "es", env={**env, "TWILIO_AUTH_TOKEN": TOKEN},
    )
    assert added.returncode == 0, added.stderr
    assert "acme-dental" in added.stdout

    listed = await run("list", env={k: v for k, v in env.items() if k != "SB_TENANT_KEYS"})
    assert listed.returncode == 0, listed.stderr
    assert "acme-dental" in listed.stdout and ACCOUNT in listed.stdout
    assert TOKEN not in listed.stdout + listed.stderr
    assert "gAAAA" not in listed.stdout  # nor the Fernet ciphertext

    # The add was published: a replica routes the number with the token.
    directory = await replica(TokenCipher([key]))
    route = directory.route(account_sid=ACCOUNT, to=NUMBER)
    assert route is not None and route.tenant_id == "acme-dental"
    assert route.auth_token == TOKEN and route.tenant.language == "es"

    api_key = await run("add-api-key", "acme-dental", "--label", "dashboard", env=env)
    assert api_key.returncode == 0 and api_key.stdout.strip().startswith("sbk_")

    invalid = await run("add", "Globex", "--account-sid", OTHER_ACCOUNT, "--number", "555",
                        env={**env, "TWILIO_AUTH_TOKEN": TOKEN})
    assert invalid.returncode == 2 and "numbers" in invalid.stderr
    assert TOKEN not in invalid.stderr

    taken = await run("add", "Globex", "--account-sid", OTHER_ACCOUNT, "--number", NUMBER,
                      env={**env, "TWILIO_AUTH_TOKEN": TOKEN})
    assert taken.returncode == 1 and "already belongs" in taken.stderr


async def test_write_without_a_key_names_the_variable(database_url: str, nats_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SB_TENANT_KEYS")}
    env |= {"DATABASE_URL": database_url, "NATS_URL": nats_url, "TWILIO_AUTH_TOKEN": TOKEN}
    result = await run("add", "Acme", "--account-sid", ACCOUNT, env=env)
    assert result.returncode == 1
    assert "SB_TENANT_KEYS" in result.stderr


async def test_rotate_keys_update_and_sync(
    database_url: str, nats_url: str,
    replica: Callable[[TokenCipher], Awaitable[TenantDirectory]],
) -> None:
    old, new = generate_key(), generate_key()
    env = {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats_url, "SB_TENANT_KEYS": old}
    assert (await run("migrate", env=env)).returncode == 0
    added = await run("add", "Acme", "--account-sid", ACCOUNT, "--number", NUMBER,
                      "--llm-base-url", "http://llm.local/v1",
                      env={**env, "TWILIO_AUTH_TOKEN": TOKEN})
    assert added.returncode == 0, added.stderr

    rotated = await run("rotate-keys", env={**env, "SB_TENANT_KEYS": f"{new},{old}"})
    assert rotated.returncode == 0, rotated.stderr
    assert "1 secret" in rotated.stdout

    only_new = {**env, "SB_TENANT_KEYS": new}
    updated = await run("update", "acme", "--model", "gpt-4.1", "--llm-base-url", "",
                        env=only_new)
    assert updated.returncode == 0, updated.stderr

    directory = await replica(TokenCipher([new]))  # the old key is gone everywhere
    route = directory.route(account_sid=ACCOUNT, to=NUMBER)
    assert route is not None and route.auth_token == TOKEN
    assert (route.tenant.model, route.tenant.llm_base_url) == ("gpt-4.1", None)

    synced = await run("sync", env=only_new)
    assert synced.returncode == 0, synced.stderr
    assert "0 key(s) changed" in synced.stdout  # every write was already published


async def test_people_in_the_loop_settings_templates_and_operator_keys(
    database_url: str, nats_url: str, key: str,
    replica: Callable[[TokenCipher], Awaitable[TenantDirectory]],
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats_url,
           "SB_TENANT_KEYS": key, "COLUMNS": "250"}
    assert (await run("migrate", env=env)).returncode == 0
    added = await run("add", "Acme", "--account-sid", ACCOUNT, "--number", NUMBER,
                      env={**env, "TWILIO_AUTH_TOKEN": TOKEN})
    assert added.returncode == 0, added.stderr

    llm_key, secret = "sk-acme-0123456789", "whsec-acme-0123456789"
    updated = await run(
        "update", "acme", "--llm-api-key", "--webhook-url", "http://127.0.0.1:8099/hook",
        "--webhook-secret", "--handoff-deadline", "600", "--handoff-unclaimed", "wait",
        "--handoff-keywords", "humano, atendente", "--opt-out-keywords", "basta",
        env={**env, "TENANT_LLM_API_KEY": llm_key, "TENANT_WEBHOOK_SECRET": secret},
    )
    assert updated.returncode == 0, updated.stderr
    assert llm_key not in updated.stdout + updated.stderr
    assert secret not in updated.stdout + updated.stderr

    refused = await run("update", "acme", "--webhook-url", "http://hooks.example.com/x", env=env)
    assert refused.returncode == 2 and "https" in refused.stderr

    template = await run("add-template", "acme", "reminder", "--content-sid", "HX" + "0a" * 16,
                         "--language", "es", "--variables", "1,2", env=env)
    assert template.returncode == 0, template.stderr
    bad = await run("add-template", "acme", "x", "--content-sid", "HX123", env=env)
    assert bad.returncode == 2 and "content_sid" in bad.stderr
    assert "reminder" in (await run("list-templates", "acme", env=env)).stdout

    operator = await run("add-api-key", "acme", "--role", "operator", "--label", "ann", env=env)
    assert operator.returncode == 0 and operator.stdout.strip().startswith("sbk_")
    nameless = await run("add-api-key", "acme", "--role", "operator", env=env)
    assert nameless.returncode == 2
    assert (await run("add-api-key", "acme", "--role", "admin", env=env)).returncode == 2

    listed = await run("list", env={k: v for k, v in env.items() if k != "SB_TENANT_KEYS"})
    assert listed.returncode == 0, listed.stderr
    assert "operator: ann" in listed.stdout and "600s, then wait" in listed.stdout
    assert not any(s in listed.stdout for s in (llm_key, secret, TOKEN, "gAAAA"))

    directory = await replica(TokenCipher([key]))
    record = directory.tenant("acme")
    assert record is not None and record.handoff_keywords == ("humano", "atendente")
    assert record.opt_out_keywords == ("basta",) and record.handoff_unclaimed == "wait"
    assert record.template("reminder") is not None
    assert directory.llm_api_key("acme") == llm_key
    assert directory.webhook("acme") == ("http://127.0.0.1:8099/hook", secret)

    cleared = await run("update", "acme", "--clear-llm-api-key", "--webhook-url", "", env=env)
    assert cleared.returncode == 0, cleared.stderr
    removed = await run("remove-template", "acme", "reminder", env=env)
    assert removed.returncode == 0 and "0 template" in removed.stdout
    await eventually(lambda: directory.webhook("acme") is None
                     and directory.llm_api_key("acme") is None)
