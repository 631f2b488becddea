from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import anyio.to_thread
import pytest
from fastapi import FastAPI, Request, Response
from switchboard_devstack.serving import serve_in_thread
from twilio.rest import Client
from twilio_sim import Account, Number, SimConfig
from twilio_sim.config import StatusDelays
from twilio_sim.sdk import simulator_http_client
from twilio_sim.testing import RunningSimulator, run_simulator

ACCOUNT = "AC" + "1" * 32
TOKEN = "secret-token-of-account-one"
SERVICE = "MG" + "2" * 32
BUSINESS = "whatsapp:+14155238886"
USER = "whatsapp:+4915112345678"


@dataclass
class Received:
    url: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]


@dataclass
class Receiver:
    """A local HTTP endpoint standing in for the gateway: records every request it gets."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    on_webhook: Callable[[dict[str, str]], None] | None = None

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout_s: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.at(path)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        found = self.at(path)
        assert len(found) >= count, f"{len(found)} requests to {path}, wanted {count}"
        return found


def receiver_app(receiver: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def record(path: str, request: Request) -> Response:
        params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        receiver.requests.append(
            Received(str(request.url), "/" + path, dict(request.headers), params))
        if receiver.on_webhook is not None and receiver.status < 300:
            # In a worker thread, so the hook may call the synchronous SDK.
            await anyio.to_thread.run_sync(receiver.on_webhook, params)
        return Response("<Response/>", status_code=receiver.status, media_type="text/xml")

    return app


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with serve_in_thread(receiver_app(receiver)) as url:
        receiver.url = url
        yield receiver


def sim_config(webhook_url: str | None) -> SimConfig:
    return SimConfig(
        accounts=[Account(sid=ACCOUNT, auth_token=TOKEN)],
        numbers=[Number(address=BUSINESS, account_sid=ACCOUNT, webhook_url=webhook_url,
                        messaging_service_sid=SERVICE)],
        status_delays=StatusDelays(sent=0.02, delivered=0.02, read=0.02),
    )


@pytest.fixture
def make_sim_config() -> Callable[[str | None], SimConfig]:
    """One account (token ``TOKEN``) owning the business number, webhook as given."""
    return sim_config


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[RunningSimulator]:
    with run_simulator(sim_config(f"{receiver.url}/webhook")) as running:
        yield running


@dataclass(frozen=True)
class Ids:
    account: str = ACCOUNT
    token: str = TOKEN
    service: str = SERVICE
    business: str = BUSINESS
    user: str = USER


@pytest.fixture
def ids() -> Ids:
    """The configured account, number and user (test modules cannot import conftest)."""
    return Ids()


@pytest.fixture
def twilio(sim: RunningSimulator) -> Client:
    return Client(ACCOUNT, TOKEN, http_client=simulator_http_client(sim.url))
