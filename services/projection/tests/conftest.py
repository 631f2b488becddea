from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from nats.js import JetStreamContext
from projection.main import build
from projection.schema import apply_migrations
from projection_helpers import settings_for
from switchboard_contracts.topology import ALL_STREAMS
from switchboard_runtime import Service
from switchboard_runtime.bus import ensure_streams

ServiceFactory = Callable[..., AbstractAsyncContextManager[Service]]


@pytest.fixture
async def streams(js: JetStreamContext) -> None:
    """Every stream, declared as its owner declares it (the real topology)."""
    await ensure_streams(js, ALL_STREAMS)


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """The tenants' and the projection's schemas."""
    await asyncio.to_thread(apply_migrations, database_url)
    return database_url


@pytest.fixture
def start_projection(nats_url: str, migrated_url: str, streams: None) -> ServiceFactory:
    """``async with start_projection(**settings) as service``."""

    @asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[Service]:
        async with build(settings_for(nats_url, migrated_url, **overrides)).running() as svc:
            yield svc

    return start


@pytest.fixture
async def projection(start_projection: ServiceFactory) -> AsyncIterator[Service]:
    async with start_projection() as service:
        yield service
