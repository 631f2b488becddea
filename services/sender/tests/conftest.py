from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from gateway.main import build as build_gateway
from gateway.settings import GatewaySettings
from nats.js import JetStreamContext
from sender.main import build
from sender.settings import SenderSettings
from sender_helpers import ACCOUNT, NUMBER, TOKEN, record
from switchboard_contracts.topology import AGENT, CONVERSATION, GATEWAY
from switchboard_devstack.serving import serve_here
from switchboard_runtime import Service
from switchboard_runtime.bus import ensure_streams
from switchboard_tenants import DirectoryPublisher, TokenCipher, generate_key
from switchboard_tenants.kv import open_bucket
from twilio_sim import Account, Number, SimConfig
from twilio_sim.client import SimClient
from twilio_sim.config import StatusDelays
from twilio_sim.testing import RunningSimulator, run_simulator

SenderFactory = Callable[..., AbstractAsyncContextManager[Service]]


@pytest.fixture
def cipher(monkeypatch: pytest.MonkeyPatch) -> TokenCipher:
    monkeypatch.setenv("SB_TENANT_KEYS", generate_key())
    return TokenCipher.from_env()


@pytest.fixture
async def streams(js: JetStreamContext) -> None:
    await ensure_streams(js, (GATEWAY, AGENT, CONVERSATION))


@pytest.fixture
async def tenant(js: JetStreamContext, cipher: TokenCipher) -> None:
    await DirectoryPublisher(await open_bucket(js)).publish(record(cipher))


@pytest.fixture
def status_delays() -> StatusDelays:
    return StatusDelays()


@pytest.fixture
def simulator(status_delays: StatusDelays) -> Iterator[RunningSimulator]:
    config = SimConfig(accounts=[Account(sid=ACCOUNT, auth_token=TOKEN)],
                       numbers=[Number(address=NUMBER, account_sid=ACCOUNT)],
                       status_delays=status_delays)
    with run_simulator(config) as sim:
        yield sim


@pytest.fixture
async def sim(simulator: RunningSimulator) -> AsyncIterator[SimClient]:
    async with simulator.client() as client:
        yield client


@pytest.fixture
async def gateway_url(nats_url: str, tenant: None, streams: None) -> AsyncIterator[str]:
    """A real gateway: the simulator's signed status callbacks become DeliveryStatusReported."""
    service = build_gateway(GatewaySettings(
        nats_url=nats_url, ip_rate_limit="100000/second", sender_rate_limit="100000/minute",
    ))
    async with service.running(), serve_here(service.app) as url:
        yield url


@pytest.fixture
def start_sender(nats_url: str, simulator: RunningSimulator, gateway_url: str, tenant: None,
                 streams: None) -> SenderFactory:
    """``async with start_sender(**settings) as service``: a sender against the stack."""

    @asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[Service]:
        values: dict[str, object] = {
            "nats_url": nats_url, "gateway_public_url": gateway_url,
            "twilio_api_base_url": simulator.url, "retry_base_s": 0.05, "retry_max_s": 0.5,
            "part_timeout_s": 5.0,
        }
        values.update(overrides)
        async with build(SenderSettings(**values)).running() as service:
            yield service

    return start


@pytest.fixture
async def sender(start_sender: SenderFactory) -> AsyncIterator[Service]:
    async with start_sender() as service:
        yield service
