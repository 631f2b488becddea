from __future__ import annotations

from collections.abc import Iterator

import pytest
from llm_sim import RunningLLMSim, run_llm_sim


@pytest.fixture(scope="module")
def sim_server() -> Iterator[RunningLLMSim]:
    with run_llm_sim() as running:
        yield running


@pytest.fixture
def sim(sim_server: RunningLLMSim) -> RunningLLMSim:
    sim_server.reset()
    return sim_server
