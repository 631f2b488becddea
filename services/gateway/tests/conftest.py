from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from gateway.main import build
from gateway.settings import GatewaySettings
from gateway_helpers import (
    ACCOUNT,
    NUMBER,
    OTHER_ACCOUNT,
    OTHER_NUMBER,
    OTHER_TOKEN,
    PUBLIC,
    TOKEN,
    record,
)
from nats.js import JetStreamContext
from switchboard_runtime import Service
from switchboard_tenants import DirectoryPublisher, TokenCipher, generate_key
from switchboard_tenants.kv import open_bucket


@pytest.fixture
def cipher(monkeypatch) -> TokenCipher:
    monkeypatch.setenv("SB_TENANT_KEYS", generate_key())
    return TokenCipher.from_env()


@pytest.fixture
async def tenants(js: JetStreamContext, cipher: TokenCipher) -> None:
    publisher = DirectoryPublisher(await open_bucket(js))
    await publisher.publish(record("clinic", ACCOUNT, TOKEN, (NUMBER,), cipher))
    await publisher.publish(record("bakery", OTHER_ACCOUNT, OTHER_TOKEN, (OTHER_NUMBER,), cipher))


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {}


@pytest.fixture
async def gateway(nats_url: str, tenants: None, settings_overrides) -> AsyncIterator[Service]:
    values: dict[str, object] = {"nats_url": nats_url, "public_base_url": PUBLIC,
                                 "ip_rate_limit": "100000/second",
                                 "sender_rate_limit": "100000/minute"}
    values.update(settings_overrides)
    service = build(GatewaySettings(**values))
    async with service.running():
        yield service


@pytest.fixture
async def client(gateway: Service) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.app, client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.internal:8080"
                                 ) as http:
        yield http
