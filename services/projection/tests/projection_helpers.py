"""Helpers for the projection's tests: waiting for the read models, reading them whole."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from nats.js import JetStreamContext
from projection.consumer import caught_up
from projection.readmodels import TABLES
from projection.settings import ProjectionSettings
from projection_scripts import Published
from pydantic import SecretStr
from switchboard_tenants import (
    DirectoryPublisher,
    NewTenant,
    TenantRepository,
    TokenCipher,
    generate_key,
    open_bucket,
)

Snapshot = dict[str, list[dict[str, Any]]]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def settings_for(nats_url: str, database_url: str, **overrides: object) -> ProjectionSettings:
    values: dict[str, object] = {
        "nats_url": nats_url, "database_url": database_url, "http_port": 0,
        "poll_interval_s": 0.05, "retry_base_s": 0.05, "retry_max_s": 0.3,
    }
    values.update(overrides)
    return ProjectionSettings(**values)  # type: ignore[arg-type]


async def tenants(db: asyncpg.Pool, js: JetStreamContext) -> TenantRepository:
    return TenantRepository(db, TokenCipher([generate_key()]),
                            DirectoryPublisher(await open_bucket(js)))


async def add_tenant(db: asyncpg.Pool, js: JetStreamContext, tenant_id: str, n: int = 0) -> str:
    """The tenant (its account AC<n...>, its number +1415555010<n>) and a read-API key."""
    repo = await tenants(db, js)
    await repo.add(NewTenant(tenant_id=tenant_id, name=tenant_id, account_sid="AC" + f"{n}" * 32,
                             auth_token=SecretStr("t" * 32),
                             numbers=(f"whatsapp:+1415555010{n}",)))
    return await repo.add_api_key(tenant_id)


async def add_operator_key(db: asyncpg.Pool, js: JetStreamContext, tenant_id: str,
                           operator: str) -> str:
    """An operator key of the tenant, labelled with the operator's name."""
    return await (await tenants(db, js)).add_api_key(tenant_id, operator, role="operator")


async def wait_caught_up(js: JetStreamContext, timeout_s: float = 20.0) -> None:
    """Every stream's events are written and acknowledged by the projection."""
    deadline = time.monotonic() + timeout_s
    while not await caught_up(js):
        if time.monotonic() > deadline:
            raise AssertionError("the projection did not catch up in time")
        await asyncio.sleep(0.05)


async def snapshot(db: asyncpg.Pool | asyncpg.Connection) -> Snapshot:
    """Every read model's full content, in key order."""
    return {
        table.name: [dict(row) for row in await db.fetch(
            f"SELECT * FROM {table.name} ORDER BY {', '.join(table.key)}")]  # noqa: S608
        for table in TABLES
    }


async def rows(db: asyncpg.Pool, sql: str, *args: object) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch(sql, *args)]


async def stream_messages(js: JetStreamContext, streams: list[str]) -> int:
    return sum((await js.stream_info(name)).state.messages for name in streams)


async def publish_steadily(js: JetStreamContext, events: list[Published],
                           sent: list[Published]) -> None:
    """About 300 events a second, as a busy stack would produce them; ``sent`` grows as they
    are published."""
    for start in range(0, len(events), 15):
        for event in events[start:start + 15]:
            await event.publish(js)
            sent.append(event)
        await asyncio.sleep(0.05)
