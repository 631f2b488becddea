"""A local server speaking the OpenAI chat-completions wire format, scriptable for tests."""

from .app import MARKER, create_app
from .state import SimState
from .testing import RunningLLMSim, run_llm_sim

__all__ = ["MARKER", "RunningLLMSim", "SimState", "create_app", "run_llm_sim"]
