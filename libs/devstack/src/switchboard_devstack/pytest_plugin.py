"""pytest fixtures: a real NATS JetStream and a real Postgres, started by the test run.

Each test gets its own NATS server (it starts in well under a second, and a clean server is
the only real isolation for streams and consumers) and its own Postgres database in a
session-wide cluster. ``NATS_URL`` / ``DATABASE_URL`` point the run at external servers
instead; then each test starts by deleting every stream, and databases are created there.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from switchboard_tenants.schema import apply_migrations

from .embedded import NatsCluster, NatsServer, PostgresServer


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A fresh single-node JetStream server for this test (a test may stop and restart it)."""
    server = NatsServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def nats_cluster() -> Iterator[NatsCluster]:
    """A fresh 3-node JetStream cluster for this test (a test may kill and restart its nodes)."""
    cluster = NatsCluster(size=3).start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
async def nats_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    external = os.environ.get("NATS_URL")
    if not external:
        yield request.getfixturevalue("nats_server").url
        return
    nc = await nats.connect(external)
    js = nc.jetstream()
    for info in await js.streams_info():
        if info.config.name:
            await js.delete_stream(info.config.name)
    await nc.close()
    yield external


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    yield client
    if not client.is_closed:
        await client.close()


@pytest.fixture
def js(nc: NATS) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
async def database_url(postgres_server: PostgresServer | None) -> AsyncIterator[str]:
    """A new empty database for this test, dropped afterwards."""
    admin_url = os.environ.get("DATABASE_URL") or (postgres_server.url if postgres_server else "")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """``database_url`` with the tenants' schema; a service's conftest overrides it to add its
    own migrations."""
    await asyncio.to_thread(apply_migrations, database_url)
    return database_url


@pytest.fixture
async def pool(migrated_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(migrated_url, min_size=1, max_size=4)
    yield pool
    await pool.close()
