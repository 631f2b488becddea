"""Point the real ``twilio`` SDK at the simulator by swapping only its HTTP client.

    from twilio.rest import Client
    from twilio_sim.sdk import simulator_http_client

    client = Client(account_sid, auth_token, http_client=simulator_http_client(sim_url))
    client.messages.create(to=..., from_=..., body=...)

Every request keeps the SDK's own code path (serialization, auth, error parsing); only
``https://api.twilio.com`` (Messages) or ``https://content.twilio.com`` (Content API) in the
URL becomes the simulator's base URL.
"""

from __future__ import annotations

from typing import Any

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

# The simulator serves each host's paths as they are (/2010-04-01/..., /v1/Content...).
TWILIO_HOSTS = ("https://api.twilio.com", "https://content.twilio.com")


def _rewrite(url: str, base_url: str) -> str:
    for host in TWILIO_HOSTS:
        if url.startswith(host):
            return base_url.rstrip("/") + url[len(host):]
    return url


class SimulatorHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, _rewrite(url, self.base_url), *args, **kwargs)


class AsyncSimulatorHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return await super().request(method, _rewrite(url, self.base_url), *args, **kwargs)


def simulator_http_client(base_url: str, **kwargs: Any) -> SimulatorHttpClient:
    """A ``TwilioHttpClient`` that sends API calls to the simulator (kwargs: timeout, ...)."""
    return SimulatorHttpClient(base_url, **kwargs)


def simulator_async_http_client(base_url: str, **kwargs: Any) -> AsyncSimulatorHttpClient:
    """The same for ``AsyncTwilioHttpClient`` (the SDK's ``*_async`` methods)."""
    return AsyncSimulatorHttpClient(base_url, **kwargs)
