from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from conversation.main import build
from conversation.settings import ConversationSettings
from conversation_helpers import tenant_record
from nats.js import JetStreamContext
from switchboard_contracts.topology import AGENT, GATEWAY, TRANSCRIPTION
from switchboard_runtime import Service
from switchboard_runtime.bus import ensure_streams
from switchboard_tenants import DirectoryPublisher, TokenCipher, generate_key
from switchboard_tenants.kv import open_bucket


@pytest.fixture
def cipher(monkeypatch) -> TokenCipher:
    monkeypatch.setenv("SB_TENANT_KEYS", generate_key())
    return TokenCipher.from_env()


@pytest.fixture
def tenant_settings() -> dict[str, object]:
    """The tenant's settings beyond the helpers' defaults (a test module overrides it)."""
    return {}


@pytest.fixture
async def world(js: JetStreamContext, cipher: TokenCipher,
                tenant_settings: dict[str, object]) -> None:
    """What the other services would have created: their streams, and the tenant."""
    await ensure_streams(js, (GATEWAY, AGENT, TRANSCRIPTION))
    await DirectoryPublisher(await open_bucket(js)).publish(
        tenant_record(cipher, **tenant_settings))


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {}


@pytest.fixture
def make_service(nats_url: str, world: None, settings_overrides
                 ) -> Callable[..., Service]:
    def make(**overrides: object) -> Service:
        values: dict[str, object] = {"nats_url": nats_url, **settings_overrides, **overrides}
        return build(ConversationSettings(**values))
    return make


@pytest.fixture
async def conversation(make_service: Callable[..., Service]) -> AsyncIterator[Service]:
    async with make_service().running() as service:
        yield service

