"""A gateway takes webhooks whatever Postgres does, and a starting one asks Twilio to retry.

Reliability finding 6: every process of the fault suite gets a DATABASE_URL, so the gateway
opened a pool it never used and failed its /readyz during the Postgres stop; the balancer
(like a Kubernetes Service) then routed Twilio's webhooks nowhere: 503 for 10 s.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from gateway.main import build
from gateway.settings import GatewaySettings
from gateway_helpers import PUBLIC, inbound_params, post, signed, stored


def closed_port() -> int:
    """A port nothing listens on: Postgres is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Without the fix start-up waits for this Postgres and gives up after 3 s.
    return {"database_url": f"postgresql://sb@127.0.0.1:{closed_port()}/sb",
            "startup_timeout_s": 3.0}


async def test_a_gateway_given_a_database_url_is_ready_and_stores_while_postgres_is_down(
        client: httpx.AsyncClient, js) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert "postgres" not in ready.json()
    params = inbound_params()
    assert (await post(client, params, signed(params))).status_code == 200
    [event] = await stored(js)
    assert event.correlation_id == params["MessageSid"]


async def test_a_gateway_still_starting_answers_webhooks_503_so_twilio_retries(cipher) -> None:
    service = build(GatewaySettings(public_base_url=PUBLIC))  # not started: waits on NATS
    transport = httpx.ASGITransport(app=service.app, client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as http:
        for path in ("/twilio/whatsapp/inbound", "/twilio/whatsapp/status"):
            params = inbound_params()
            response = await post(http, params, signed(params), path=path)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
