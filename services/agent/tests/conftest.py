from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from agent.main import build
from agent.settings import AgentSettings
from agent_helpers import tenant_record
from llm_sim import RunningLLMSim, run_llm_sim
from nats.js import JetStreamContext
from switchboard_contracts.topology import CONVERSATION
from switchboard_runtime import Service
from switchboard_runtime.bus import ensure_streams
from switchboard_tenants import DirectoryPublisher, TokenCipher, generate_key
from switchboard_tenants.kv import open_bucket


@pytest.fixture
def cipher(monkeypatch: pytest.MonkeyPatch) -> TokenCipher:
    monkeypatch.setenv("SB_TENANT_KEYS", generate_key())
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SWITCHBOARD_ENV"):
        monkeypatch.delenv(name, raising=False)
    return TokenCipher.from_env()


@pytest.fixture
def llm() -> Iterator[RunningLLMSim]:
    with run_llm_sim() as sim:
        yield sim


@pytest.fixture
async def streams(js: JetStreamContext) -> None:
    """The conversation service's stream, which the agent reads."""
    await ensure_streams(js, (CONVERSATION,))


@pytest.fixture
async def tenants(js: JetStreamContext, cipher: TokenCipher) -> DirectoryPublisher:
    publisher = DirectoryPublisher(await open_bucket(js))
    await publisher.publish(tenant_record(cipher))
    return publisher


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {}


@pytest.fixture
def make_settings(nats_url: str, llm: RunningLLMSim, settings_overrides: dict[str, object]
                  ) -> Callable[..., AgentSettings]:
    def make(**overrides: object) -> AgentSettings:
        values: dict[str, object] = {
            "nats_url": nats_url, "openai_base_url": llm.base_url, "openai_api_key": "sk-test",
            "llm_timeout_s": 5.0, "llm_max_attempts": 3, "llm_backoff_base_s": 0.01,
            "llm_backoff_max_s": 0.05,
        }
        values.update(settings_overrides)
        values.update(overrides)
        return AgentSettings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def agent(streams: None, tenants: DirectoryPublisher,
                make_settings: Callable[..., AgentSettings]) -> AsyncIterator[Service]:
    service = build(make_settings())
    async with service.running():
        yield service
