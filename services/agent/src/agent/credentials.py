"""Which endpoint and key a tenant's completions go to.

The rule (issue 12): a tenant may have its own key (stored encrypted in the tenant directory)
and its own base URL; the agent has a global key and base URL (``OPENAI_API_KEY`` /
``OPENAI_BASE_URL``).

- A tenant with its own base URL: its own key there, or ``NO_KEY`` when it has none. The
  global key is never sent to a tenant's own base URL (it is not the tenant's to receive),
  even if that URL is the global one too.
- A tenant with its own key only: the global base URL (OpenAI's when unset) with its key.
- Otherwise the global endpoint: the global key, or ``NO_KEY`` for a keyless compatible
  server; with neither a global key nor a base URL, no endpoint (the development responder).
"""

from __future__ import annotations

from .llm import Endpoint
from .settings import AgentSettings

# The SDK needs some key; keyless OpenAI-compatible servers (vLLM, Ollama) ignore it.
NO_KEY = "no-key"


def global_endpoint(settings: AgentSettings) -> Endpoint | None:
    if settings.dev_responder:
        return None
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return Endpoint(settings.openai_base_url, key or NO_KEY)


def endpoint_for(base_url: str | None, api_key: str | None, settings: AgentSettings
                 ) -> Endpoint | None:
    """The endpoint of a tenant with this base URL and key (either may be None)."""
    if base_url:
        return Endpoint(base_url, api_key or NO_KEY)
    if api_key:
        return Endpoint(settings.openai_base_url, api_key)
    return global_endpoint(settings)
