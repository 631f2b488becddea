"""The CLI end to end, as an operator runs it: a subprocess against the real servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from switchboard_tenants import TenantDirectory, TokenCipher, generate_key

from .conftest import ACCOUNT, MSVC, NUMBER, OTHER_ACCOUNT

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
