from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator
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


@pytest.fixture(autouse=True)
def gc_threshold_restored() -> Iterator[None]:
    """A projection sets the young GC threshold for the whole process (GC_YOUNG_THRESHOLD):
    each test gives back the one it found, so later tests (other services') run as usual."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


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
