from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from e2e_helpers import ACCOUNT, NUMBER, Stack, publish_tenant, running_stack, simulator_config
from llm_sim.testing import RunningLLMSim, run_llm_sim
from nats.js import JetStreamContext
from switchboard_tenants import TokenCipher, generate_key
from twilio_sim.client import SimClient
from twilio_sim.testing import RunningSimulator, run_simulator


@pytest.fixture
def cipher(monkeypatch: pytest.MonkeyPatch) -> TokenCipher:
    monkeypatch.setenv("SB_TENANT_KEYS", generate_key())
    return TokenCipher.from_env()


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    with run_simulator(simulator_config()) as sim:
        yield sim


@pytest.fixture
def llm() -> Iterator[RunningLLMSim]:
    with run_llm_sim() as server:
        yield server


@pytest.fixture
async def stack(nats_url: str, js: JetStreamContext, cipher: TokenCipher,
                simulator: RunningSimulator, llm: RunningLLMSim) -> AsyncIterator[Stack]:
    await publish_tenant(js, cipher)
    async with running_stack(nats_url, simulator.url, llm) as running:
        async with simulator.client() as sim:
            await sim.add_number(NUMBER, ACCOUNT,
                                 webhook_url=f"{running.gateway_url}/twilio/whatsapp/inbound"
                                             "#rc=3&rp=5xx,ct")
        yield running


@pytest.fixture
async def sim(simulator: RunningSimulator) -> AsyncIterator[SimClient]:
    async with simulator.client() as client:
        yield client


@pytest.fixture
async def voice_stack(nats_url: str, js: JetStreamContext, cipher: TokenCipher,
                      simulator: RunningSimulator, llm: RunningLLMSim) -> AsyncIterator[Stack]:
    """``stack`` plus the transcription service, for voice notes."""
    await publish_tenant(js, cipher)
    async with running_stack(nats_url, simulator.url, llm, transcription=True) as running:
        async with simulator.client() as sim:
            await sim.add_number(NUMBER, ACCOUNT,
                                 webhook_url=f"{running.gateway_url}/twilio/whatsapp/inbound"
                                             "#rc=3&rp=5xx,ct")
        yield running
